/**
 * An operator's purge of a title a prefill job is filling wins: the job stops filling it and
 * reports it `purged`, never complete, and fetches none of it again; its other titles go on.
 * (That the purge does not wait for the title's fills at the job's pace: paced-fill.test.ts.)
 */
import t from 'tap'
import type { PrefillJobs } from '../../../edge/prefill/jobs.js'
import { until } from '../../helpers/wait.js'
import { admin, edge, originGets, setup, storeObjects, waitJob } from './edge-setup.js'
import { finished, fixture, gets, manualSleep } from './setup.js'

t.test(
  'a title purged while the job fills it, or before, is reported purged and not fetched again',
  async (t) => {
    const f = await fixture(t, ['alpha', 'beta', 'gamma'])
    const target = f.target()
    let id = ''
    let purgedAt = -1
    const jobs: PrefillJobs = await f.jobs(target, {
      // The limiter's waits are points in the fill: the purge comes at one of them, mid-title.
      sleep: manualSleep(f.clock, () => {
        const alpha = jobs.get(id)?.titles.find((x) => x.title === 'alpha')
        if (purgedAt < 0 && alpha?.state === 'filling' && alpha.objectsDone >= 2) {
          purgedAt = target.requestedPaths.length
          jobs.titlePurged('alpha')
        }
      }),
    })
    ;({ id } = await jobs.submit({
      titles: ['alpha', 'beta', 'gamma'].map((title, rank) => ({ title, rank })),
      source: 'titles',
      concurrency: 1,
      maxBytesPerSecond: 200_000,
    }))
    // The job is planning: a purge now reaches gamma before any of its objects is filled.
    jobs.titlePurged('gamma')
    jobs.titlePurged('not-in-the-job')
    const v = await finished(jobs, id)
    t.equal(v.state, 'completed')
    t.equal(v.reason, '1 complete, 0 failed, 0 left out, 2 purged')
    const [alpha, beta, gamma] = v.titles
    t.match(alpha, { state: 'purged', reason: /^purged by operator while filling: \d+ of \d+ objects/ })
    t.ok(
      alpha!.objectsDone < alpha!.objectsTotal,
      `alpha not counted done (${alpha!.objectsDone} of ${alpha!.objectsTotal})`,
    )
    t.match(gamma, { state: 'purged', reason: /^purged by operator before its fill began/, objectsDone: 0 })
    t.equal(beta!.state, 'complete', 'the other title filled')
    t.ok(purgedAt > 0, 'alpha was purged in the middle of its fill')
    const after = target.requestedPaths.slice(purgedAt).filter((p) => /\/vod\/(alpha|gamma)\//.test(p))
    t.same(after, [], 'nothing of a purged title fetched after the purge')
    t.notOk(
      gets(target).some((p) => p.startsWith('GET /vod/gamma/') && p.endsWith('.m4s')),
      'no segment of the title purged before its fill',
    )
    t.same(
      target.requestedPaths
        .filter((p) => p.startsWith('GET /vod/alpha/'))
        .filter((p) => target.isProtected(p.slice(4))),
      [],
      'what alpha had pinned is released',
    )
  },
)

t.test(
  'on an edge, a purge lifts the pace of a capped prefill of the title and the job says purged',
  async (t) => {
    const origin = await setup(t, ['alpha'])
    const e = await edge(t, origin)
    // 1 byte/s: the bucket's first 64 KiB start the first fills, then each is held a second per
    // chunk and no further object may start for hours. Only the purge can end this job.
    const r = await admin(e.url, 'POST', '/admin/prefill', {
      titles: ['alpha'],
      maxBytesPerSecond: 1,
      concurrency: 2,
    })
    t.equal(r.status, 202)
    await waitJob(e.url, r.json.id, (v) => v.state === 'running' && v.titles[0]?.state === 'filling')
    await until(() => e.app.edge.flights.size > 0)
    // Before, the job went on after the purge, at its pace, and fetched the title again.
    const d = await admin(e.url, 'DELETE', '/admin/cache/vod/alpha')
    t.equal(d.status, 200, 'the purge answered')
    // The fetches running when the purge came end at the upstream's pace (the purge does not wait
    // for them, and they store nothing); from then on nothing of the title is fetched.
    await until(() => e.app.edge.flights.size === 0)
    const gets = await originGets(origin)
    const v = await waitJob(e.url, r.json.id)
    t.equal(v.state, 'completed')
    t.match(v.titles[0], { title: 'alpha', state: 'purged', reason: /^purged by operator/ })
    t.ok(v.objects.done < v.objects.total, `not counted done (${v.objects.done} of ${v.objects.total})`)
    t.equal(await originGets(origin), gets, 'nothing fetched after the purge')
    const held = (await storeObjects(origin.store, 'alpha')).filter((p) => e.app.edge.store.has(p))
    t.same(held, [], 'the cache holds none of the purged title')
    t.notOk((await admin(e.url, 'GET', '/status')).json.titlesComplete.includes('alpha'))
  },
)

t.test(
  'a title purged while the job planned stays purged when the job resumes after a restart',
  async (t) => {
    const f = await fixture(t, ['alpha', 'beta'])
    const jobs = await f.jobs(f.target())
    const { id } = await jobs.submit({
      titles: ['alpha', 'beta'].map((title, rank) => ({ title, rank })),
      source: 'titles',
      concurrency: 1,
    })
    // The job is planning: the purge reaches alpha, then the edge stops before the plan is saved.
    jobs.titlePurged('alpha')
    await jobs.close()
    const stopped = jobs.get(id)!
    t.notOk(['completed', 'failed', 'cancelled'].includes(stopped.state), `left ${stopped.state} to resume`)
    t.match(stopped.titles[0], { title: 'alpha', state: 'purged' })

    const target = f.target()
    const v = await finished(await f.jobs(target), id)
    t.equal(v.state, 'completed', v.reason ?? '')
    t.match(v.titles, [
      { title: 'alpha', state: 'purged' },
      { title: 'beta', state: 'complete' },
    ])
    t.same(
      gets(target).filter((p) => p.startsWith('GET /vod/alpha/') && /\.(m4s|mp4)$/.test(p)),
      [],
      'nothing of the purged title filled after the restart',
    )
  },
)
