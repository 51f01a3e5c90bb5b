/**
 * Prefill on a real edge under faults: restart in the middle, cancel, precise per-title errors,
 * the upstream going down. (The byte-rate cap over a whole job is checked against the job's
 * clock in jobs-faults.test.ts.)
 */
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { JobView } from '../../../edge/prefill/model.js'
import { tempDir } from '../../helpers/origin.js'
import { admin, edge, gate, originGets, setup, storeObjects, waitJob } from './edge-setup.js'

t.test('an edge restarted in the middle of a job resumes it without refetching', async (t) => {
  const origin = await setup(t, ['alpha', 'beta'])
  // After four segments the gate refuses: the job pauses to retry there, and the edge is closed.
  const g = await gate(t, origin, 4)
  const first = await edge(t, origin, { upstream: g.url, prefillRetryDelay: 3_600_000 })
  const r = await admin(first.url, 'POST', '/admin/prefill', {
    titles: ['alpha', 'beta'],
    concurrency: 1,
  })
  const mid = await waitJob(first.url, r.json.id, (v) => v.state === 'paused')
  t.ok(
    mid.objects.done >= 4 && mid.objects.done < mid.objects.total,
    `stopped half-way (${mid.objects.done})`,
  )
  await first.app.close()

  const second = await edge(t, origin, { cacheDir: first.cacheDir })
  const v = await waitJob(second.url, r.json.id)
  t.equal(v.state, 'completed', v.reason ?? '')
  t.same(
    v.titles.map((x) => x.state),
    ['complete', 'complete'],
  )
  const gets = await originGets(origin)
  // Every object once, plus the master once; one object may have been in flight at the stop.
  t.ok(
    gets <= v.objects.total + 2,
    `${gets} GETs for ${v.objects.total} objects: nothing done was fetched again`,
  )
  t.same((await admin(second.url, 'GET', '/status')).json.titlesComplete, ['alpha', 'beta'])
})

t.test('cancel stops the job; a half-filled title is not complete', async (t) => {
  const origin = await setup(t, ['alpha'])
  const g = await gate(t, origin, 2)
  const e = await edge(t, origin, { upstream: g.url, prefillRetryDelay: 3_600_000 })
  const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'], concurrency: 1 })
  const mid = await waitJob(e.url, r.json.id, (v) => v.state === 'paused')
  t.ok(
    mid.objects.done >= 2 && mid.objects.done < mid.objects.total,
    `half-way when cancelled (${mid.objects.done})`,
  )
  const d = await admin(e.url, 'DELETE', `/admin/prefill/${r.json.id}`)
  t.equal(d.status, 200)
  t.equal(d.json.state, 'cancelled')
  t.match(d.json.titles, [{ title: 'alpha', state: 'cancelled' }])
  t.same((await admin(e.url, 'GET', '/status')).json.titlesComplete, [])
})

t.test(
  'unknown title, a playlist that does not parse, a 404 segment: precise errors, others fill',
  async (t) => {
    const origin = await setup(t, ['alpha', 'beta', 'gamma'])
    const beta = await storeObjects(origin.store, 'beta')
    const missing = beta.find((p) => p.endsWith('/360p/seg-00002.m4s'))!
    await rm(join(origin.store, 'titles', missing.slice('/vod/'.length)))
    const gamma = (await storeObjects(origin.store, 'gamma')).find((p) => p.endsWith('/240p/index.m3u8'))!
    await writeFile(
      join(origin.store, 'titles', gamma.slice('/vod/'.length)),
      '#EXTM3U\n#EXT-X-TARGETDURATION:4\n',
    )
    const e = await edge(t, origin)
    const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['ghost', 'beta', 'gamma', 'alpha'] })
    const v = await waitJob(e.url, r.json.id)
    t.equal(v.state, 'completed')
    const by = Object.fromEntries(v.titles.map((x) => [x.title, x]))
    t.match(by.ghost, { state: 'failed', error: { code: 'CDN_ERR_UNKNOWN_TITLE', status: 404 } })
    t.match(by.beta, {
      state: 'failed',
      error: { code: 'CDN_ERR_UPSTREAM_NOT_FOUND', path: missing, status: 404 },
    })
    t.match(by.gamma, { state: 'failed', error: { code: 'CDN_ERR_PLAYLIST', path: gamma } })
    t.match(by.alpha, { state: 'complete' })
    t.same((await admin(e.url, 'GET', '/status')).json.titlesComplete, ['alpha'])
  },
)

t.test(
  'the upstream going down pauses the job, retries with backoff, then fails with a reason',
  async (t) => {
    const origin = await setup(t, ['alpha'])
    // Retries 1 s then 2 s apart: the job is paused for seconds, seen by any poll.
    const e = await edge(t, origin, { prefillRetryAttempts: 3, prefillRetryDelay: 1000 })
    await origin.app.close()
    const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
    const final = (v: JobView) => ['completed', 'failed', 'cancelled'].includes(v.state)
    const paused = await waitJob(e.url, r.json.id, (x) => x.state === 'paused' || final(x))
    t.equal(paused.state, 'paused', 'paused while retrying')
    const v: JobView = await waitJob(e.url, r.json.id)
    t.equal(v.state, 'failed')
    t.match(v.reason, /^upstream unavailable after 3 attempts/)
    t.match(v.titles, [{ title: 'alpha', state: 'failed', error: { code: 'CDN_ERR_UPSTREAM_DOWN' } }])
  },
)

t.test('an unusable cache dir disables prefill (503 with the reason) and the edge serves on', async (t) => {
  const origin = await setup(t, ['alpha'])
  const file = join(await tempDir(t), 'a-file')
  await writeFile(file, 'not a directory')
  const e = await edge(t, origin, { cacheDir: file })
  const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
  t.equal(r.status, 503)
  t.match(r.json.error, {
    code: 'CDN_ERR_DISK',
    message: /prefill unavailable: cannot use .*a-file\/prefill \(ENOTDIR\)/,
  })
  const master = await fetch(`${e.url}/vod/alpha/master.m3u8`)
  t.equal(master.status, 200, 'content is still served')
  await master.arrayBuffer()
})
