/**
 * The shared job records of an object store keep every finished job: a job submitted to a
 * follower must still be found, run and listed when thousands are recorded before it, and a
 * settled record is not read again on every poll.
 */
import t from 'tap'
import { systemClock } from '../../src/clock.js'
import { mapBounded } from '../../origin/store/map-bounded.js'
import { JobBoard, type JobRecord, type RecordStore } from '../../origin/transcode/job-board.js'
import { JobQueue, type JobSpec } from '../../origin/transcode/jobs.js'
import { openS3Store, requireS3 } from '../helpers/object-store.js'

// 1,000 records fill the first listing page (S3's 1,000 keys): the new job is on the next one,
// which a listing that stops early never reads. (The bug listed the first 10,000 keys; shown with
// 10,000 records when it was fixed, kept smaller here: each record is a PUT to the store.)
t.test('a job recorded after pages of older jobs is claimed and listed', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const store = await openS3Store(t, env)
  // Finished jobs of an earlier day: their ids sort before any new one.
  const old = Array.from({ length: 1_000 }, (_, i) => `job-20260101T000000-${String(i).padStart(10, '0')}`)
  await mapBounded(old, 32, (id) => {
    const record: JobRecord = {
      view: {
        id,
        state: 'succeeded',
        progress: 1,
        phase: 'succeeded',
        title: 'old',
        source: 'a.mp4',
        createdAt: '2026-01-01T00:00:00.000Z',
      },
      spec: { title: 'old', sourceName: 'a.mp4' },
    }
    return store.writeJson(`_cdn/jobs/${id}.json`, record)
  })

  const ran: JobSpec[] = []
  let started = () => {}
  const running = new Promise<void>((resolve) => {
    started = resolve
  })
  const board = (runner: boolean, owner: string) => {
    const queue = new JobQueue({
      clock: systemClock,
      maxQueued: 4,
      concurrency: 1,
      run: async (spec) => {
        ran.push(spec)
        started()
        return { version: 'v1' }
      },
      onChange: (view) => b.onChange(view),
    })
    const b: JobBoard = new JobBoard({
      store,
      queue,
      owner,
      runner,
      resolveSource: async (name) => name,
      clock: systemClock,
      pollMs: 60_000,
    })
    t.teardown(() => queue.close())
    return b
  }
  const follower = board(false, 'follower')
  const writer = board(true, 'writer')

  const job = await follower.submit({ title: 'new', sourceName: 'new.mp4' }, 'new.mp4')
  t.equal(job.state, 'queued')
  t.ok(
    (await follower.list()).some((v) => v.id === job.id),
    'GET /jobs on the follower lists it',
  )
  t.equal(await writer.poll(), 1, 'the writer claims it')
  await running
  t.same(
    ran.map((s) => s.title),
    ['new'],
    'and runs it',
  )
})

t.test('a settled record is read from the store once, not on every poll or GET /jobs', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const s3 = await openS3Store(t, env)
  const reads = new Map<string, number>()
  // The real store, its reads counted.
  const store: RecordStore = {
    casMode: s3.casMode,
    readJson: <T>(rel: string) => {
      reads.set(rel, (reads.get(rel) ?? 0) + 1)
      return s3.readJson<T>(rel)
    },
    writeJson: (rel, value, opts) => s3.writeJson(rel, value, opts),
    keyPages: (rel) => s3.keyPages(rel),
    deleteJson: (rel, opts) => s3.deleteJson(rel, opts),
  }
  let finish = () => {}
  const finished = new Promise<void>((resolve) => {
    finish = resolve
  })
  const queue = new JobQueue({
    clock: systemClock,
    maxQueued: 4,
    concurrency: 1,
    run: async () => ({ version: 'v1' }),
    onChange: (view) => {
      board.onChange(view)
      if (view.state === 'succeeded') finish()
    },
  })
  t.teardown(() => queue.close())
  const board: JobBoard = new JobBoard({
    store,
    queue,
    owner: 'writer',
    runner: true,
    resolveSource: async (name) => name,
    clock: systemClock,
    pollMs: 60_000,
  })
  const done = await board.submit({ title: 'done', sourceName: 'done.mp4' }, 'done.mp4')
  await finished
  await board.flush()
  // A job recorded by another origin, waiting: its record may change, so it is read every time.
  const waiting = 'job-20991231T000000-waiting'
  await s3.writeJson(`_cdn/jobs/${waiting}.json`, {
    view: {
      id: waiting,
      state: 'running',
      progress: 0.5,
      phase: 'encoding',
      title: 'other',
      source: 'b.mp4',
      createdAt: '2099-12-31T00:00:00.000Z',
    },
    spec: { title: 'other', sourceName: 'b.mp4' },
    owner: 'elsewhere',
  } satisfies JobRecord)

  await board.poll()
  t.equal(reads.get(`_cdn/jobs/${done.id}.json`), 1, 'the succeeded record is read once')
  await board.poll()
  const listed = await board.list()
  t.equal(listed.find((v) => v.id === done.id)?.state, 'succeeded', 'and still listed, as it was')
  t.equal(reads.get(`_cdn/jobs/${done.id}.json`), 1, 'not read again by the next poll nor by GET /jobs')
  t.equal(reads.get(`_cdn/jobs/${waiting}.json`), 3, 'a running record is read each time')
})
