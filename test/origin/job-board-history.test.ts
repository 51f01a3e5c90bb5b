/**
 * The shared job records of an object store keep every finished job: a job submitted to a
 * follower must still be found, run and listed when thousands are recorded before it.
 */
import t from 'tap'
import { systemClock } from '../../src/clock.js'
import { mapBounded } from '../../origin/store/map-bounded.js'
import { JobBoard, type JobRecord } from '../../origin/transcode/job-board.js'
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
