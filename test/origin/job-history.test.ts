/**
 * The job history of an origin on a directory store (held in memory: no records are written
 * there): finished jobs beyond --job-history are forgotten once --job-history-min-age past their
 * end, and GET /jobs/ID then answers 404 CDN_ERR_NOT_FOUND, as for an id never seen.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { buildOriginApp } from '../../origin/app.js'
import { JobQueue } from '../../origin/transcode/jobs.js'
import { ContentStore } from '../../origin/store/content-store.js'
import { tempDir } from '../helpers/origin.js'
import { until } from '../helpers/wait.js'

const HOUR = 3_600_000

t.test('finished jobs past the history and the minimum age are forgotten; GET answers 404', async (t) => {
  const dir = await tempDir(t)
  const ingestDir = join(dir, 'ingest')
  const store = await new ContentStore(join(dir, 'store')).init()
  await mkdir(ingestDir)
  await writeFile(join(ingestDir, 'in.mp4'), 'x')
  const clock = new ManualClock()
  // No ffmpeg: each job fails at once (CDN_ERR_FFMPEG_MISSING), a finished job all the same.
  const app = buildOriginApp({
    config: { adminToken: 'tok', ingestDir, jobHistory: 1, jobHistoryMinAgeMs: HOUR, logLevel: 'silent' },
    store,
    clock,
  })
  t.teardown(() => app.close())
  const auth = { authorization: 'Bearer tok' }
  const submit = async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/jobs',
      headers: auth,
      payload: { source: 'in.mp4', title: 'a' },
    })
    t.equal(res.statusCode, 202)
    const id = (res.json() as { id: string }).id
    await until(async () => (await get(id)).json().state === 'failed')
    return id
  }
  const get = (id: string) => app.inject({ url: `/jobs/${id}`, headers: auth })

  const first = await submit()
  const second = await submit()
  clock.advance(HOUR / 2)
  const third = await submit()
  t.equal((await get(first)).statusCode, 200, 'beyond the history, but finished 30 min ago: kept')

  clock.advance(HOUR)
  await submit()
  const gone = await get(first)
  t.equal(gone.statusCode, 404, 'beyond the history and finished over an hour ago: forgotten')
  t.equal(gone.json().error.code, 'CDN_ERR_NOT_FOUND', 'the stable code of an unknown job')
  t.equal((await get(second)).statusCode, 404, 'and so is the second')
  t.equal((await get(third)).json().state, 'failed', 'the newest finished job is kept')
  t.equal((await get('job-never')).json().error.code, 'CDN_ERR_NOT_FOUND', 'as an id never seen answers')
})

t.test(
  'memory stays bounded: past the ceiling the oldest finished jobs go, even within the minimum age',
  async (t) => {
    const clock = new ManualClock()
    const queue = new JobQueue({
      clock,
      maxQueued: 10,
      concurrency: 1,
      maxHistory: 2,
      minAgeMs: HOUR,
      historyCeiling: 4,
      run: async () => ({ version: 'v1' }),
    })
    const ids: string[] = []
    for (let i = 0; i < 7; i++) {
      const { id } = queue.submit({ source: 'in.mp4', title: 'a' })
      t.equal((await queue.wait(id))?.state, 'succeeded')
      ids.push(id)
    }
    // The 7th submit trimmed the six before it (all within the hour) down to the ceiling of 4.
    t.same(
      ids.map((id) => queue.get(id) !== undefined),
      [false, false, true, true, true, true, true],
      'the two oldest are forgotten, the newest four (and the last, finished after the trim) stay',
    )
  },
)
