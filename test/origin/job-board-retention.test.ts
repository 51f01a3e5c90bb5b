/**
 * Retention of the shared job records on the object store (real Swift): a job-running origin
 * deletes settled records beyond the newest --job-history, once finished --job-history-min-age
 * ago, a bounded batch a poll; queued and running records and their claims stay; GET /jobs/ID of
 * a pruned job answers 404 CDN_ERR_NOT_FOUND; with the catalogue in etcd the claim goes from etcd.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { buildOriginApp } from '../../origin/app.js'
import { mapBounded } from '../../origin/store/map-bounded.js'
import type { S3Store } from '../../origin/store/s3-store.js'
import { JobBoard, type JobRecord, type RecordStore } from '../../origin/transcode/job-board.js'
import type { JobState } from '../../origin/transcode/jobs.js'
import { JobQueue } from '../../origin/transcode/jobs.js'
import { requireEtcd } from '../helpers/etcd.js'
import { openS3Store, requireS3 } from '../helpers/object-store.js'
import { until } from '../helpers/wait.js'

const DIR = '_cdn/jobs/'
const HOUR = 3_600_000

function record(id: string, state: JobState, at: string, finishedAt: string | undefined = at): JobRecord {
  return {
    view: {
      id,
      state,
      progress: state === 'succeeded' ? 1 : 0,
      phase: state,
      title: 'old',
      source: 'a.mp4',
      createdAt: at,
      ...(finishedAt && !['queued', 'running'].includes(state) ? { finishedAt } : {}),
    },
    spec: { title: 'old', sourceName: 'a.mp4' },
    owner: 'elsewhere',
  }
}

/** Writes the record and its claim, as a submit and a claim would. */
async function seed(store: S3Store, records: JobRecord[]): Promise<void> {
  await mapBounded(records, 32, async (r) => {
    await store.writeJson(`${DIR}${r.view.id}.json`, r)
    await store.writeJson(`${DIR}${r.view.id}.claim`, { owner: 'elsewhere' }, { create: true })
  })
}

async function keys(store: S3Store): Promise<string[]> {
  const out: string[] = []
  for await (const page of store.keyPages(DIR)) out.push(...page)
  return out.map((k) => k.slice(DIR.length)).sort()
}

function runner(t: Test, store: RecordStore, clock: ManualClock, o: { history: number }): JobBoard {
  const queue = new JobQueue({ clock, maxQueued: 4, concurrency: 1, run: async () => ({ version: 'v1' }) })
  t.teardown(() => queue.close())
  return new JobBoard({
    store,
    queue,
    owner: 'writer',
    runner: true,
    resolveSource: async (name) => name,
    clock,
    pollMs: 60_000,
    history: o.history,
    minAgeMs: 24 * HOUR,
  })
}

t.test('settled records past the history and the minimum age are pruned, a batch a poll', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const s3 = await openS3Store(t, env)
  const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'))
  const states: JobState[] = ['succeeded', 'failed', 'cancelled']
  // 230 settled jobs of January, some failed at their claim (no finishedAt); one of January that
  // waited and finished 12 h ago; one queued and one running on another origin; then 5 of February.
  const old = Array.from({ length: 230 }, (_, i) =>
    record(
      `job-20260101T000000-${String(i).padStart(4, '0')}`,
      states[i % 3]!,
      '2026-01-01T00:00:00.000Z',
      i % 7 === 0 ? undefined : '2026-01-01T00:10:00.000Z',
    ),
  )
  const late = record(
    'job-20260101T000001-late',
    'succeeded',
    '2026-01-01T00:00:01.000Z',
    '2026-05-31T12:00:00.000Z',
  )
  const queued = record('job-20260101T000001-queued', 'queued', '2026-01-01T00:00:01.000Z')
  const running = record('job-20260101T000001-running', 'running', '2026-01-01T00:00:01.000Z')
  const newest = Array.from({ length: 5 }, (_, i) =>
    record(`job-20260201T000000-${i}`, 'succeeded', '2026-02-01T00:00:00.000Z'),
  )
  await seed(s3, [...old, late, queued, running, ...newest])

  // The real store, its record deletes counted.
  const deleted: string[] = []
  const store: RecordStore = {
    casMode: s3.casMode,
    readJson: (rel) => s3.readJson(rel),
    writeJson: (rel, value, opts) => s3.writeJson(rel, value, opts),
    keyPages: (rel) => s3.keyPages(rel),
    deleteJson: async (rel, opts) => {
      await s3.deleteJson(rel, opts)
      if (rel.endsWith('.json')) deleted.push(rel)
    },
  }
  const board = runner(t, store, clock, { history: 5 })
  await board.poll()
  await board.flush()
  t.equal(deleted.length, 100, 'one poll deletes one batch (100 records), the oldest')
  t.equal((await keys(s3)).length, 2 * (238 - 100), 'and their claims')

  // Until a poll deletes nothing more: 230 old records, 100 a poll, need three polls and one more.
  let polls = 1
  for (let before = -1; before !== deleted.length; polls++) {
    before = deleted.length
    await board.poll()
    await board.flush()
  }
  t.equal(polls, 4, 'three polls delete (100, 100, 30), a fourth finds nothing more')
  const kept = [late, queued, running, ...newest].map((r) => r.view.id)
  t.same(
    await keys(s3),
    kept.flatMap((id) => [`${id}.claim`, `${id}.json`]).sort(),
    'kept: the newest 5, the queued and the running ones and the one that finished 12 h ago, each with its claim',
  )
  t.equal(new Set(deleted).size, 230, 'every old settled record deleted once')
  t.equal(await board.get(old[0]!.view.id), undefined, 'a pruned job is unknown')
  t.equal((await board.get(late.view.id))?.state, 'succeeded', 'a recent one is found')

  clock.advance(12 * HOUR)
  await board.poll()
  await board.flush()
  t.equal(await board.get(late.view.id), undefined, 'once 24 h past its end, it is pruned too')
  t.equal((await board.get(running.view.id))?.state, 'running', 'the running record stays, whatever its age')
  t.same(
    (await keys(s3)).filter((k) => !k.startsWith('job-20260201')),
    [
      `${queued.view.id}.claim`,
      `${queued.view.id}.json`,
      `${running.view.id}.claim`,
      `${running.view.id}.json`,
    ],
    'and so do the queued one and both claims',
  )
})

t.test('GET /jobs/ID of a pruned job answers 404 CDN_ERR_NOT_FOUND', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const s3 = await openS3Store(t, env)
  const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'))
  const running = record('job-20260101T000000-a-running', 'running', '2026-01-01T00:00:00.000Z')
  const done = record(
    'job-20260101T000000-b-done',
    'succeeded',
    '2026-01-01T00:00:00.000Z',
    '2026-05-31T23:00:00.000Z',
  )
  await seed(s3, [running, done])
  const app = buildOriginApp({
    config: { adminToken: 'tok', jobPollMs: 20, jobHistory: 0, logLevel: 'silent' },
    store: s3,
    clock,
  })
  t.teardown(() => app.close())
  const get = async (id: string) => {
    const res = await app.inject({ url: `/jobs/${id}`, headers: { authorization: 'Bearer tok' } })
    return { status: res.statusCode, body: res.body }
  }
  await app.ready()
  // A pruning pass has run by then (this poll's, or the one in flight, which flush() waits for).
  await app.board!.poll()
  await app.board!.flush()
  t.equal((await get(done.view.id)).status, 200, 'finished an hour ago: found, though beyond --job-history 0')

  clock.advance(24 * HOUR)
  await until(async () => (await get(done.view.id)).status === 404)
  const gone = await get(done.view.id)
  t.equal(JSON.parse(gone.body).error.code, 'CDN_ERR_NOT_FOUND', 'the stable code of an unknown job')
  t.notMatch(gone.body, /cdn-test|_cdn|127\.0\.0\.1/, 'naming no bucket, key or address')
  t.equal(
    JSON.parse((await get(running.view.id)).body).state,
    'running',
    'the running job, older, is still found',
  )
})

t.test('with the catalogue in etcd, a pruned job’s claim is deleted from etcd', async (t) => {
  const env = requireS3(t)
  const etcd = env && requireEtcd(t)
  if (!env || !etcd) return
  const s3 = await openS3Store(t, env, { etcd })
  const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'))
  const done = record('job-20260101T000000-done', 'failed', '2026-01-01T00:00:00.000Z')
  const running = record('job-20260101T000000-running', 'running', '2026-01-01T00:00:00.000Z')
  await seed(s3, [done, running])
  t.same(await keys(s3), [`${done.view.id}.json`, `${running.view.id}.json`], 'claims are in etcd')
  const board = runner(t, s3, clock, { history: 0 })
  await board.poll()
  await board.flush()
  t.same(await keys(s3), [`${running.view.id}.json`], 'the failed record is deleted')
  const claim = (id: string) => s3.writeJson(`${DIR}${id}.claim`, { owner: 'again' }, { create: true })
  t.equal(await claim(done.view.id), true, 'its claim in etcd too: a new create wins')
  t.equal(await claim(running.view.id), false, "the running job's claim is still there")
})
