/**
 * A bounded probe: ffprobe on a source whose read never ends (a FIFO nobody writes, so ffprobe
 * blocks opening it) is killed at the Ffmpeg's time limit, leaves no process behind, and the
 * call fails with CDN_ERR_PROBE_TIMEOUT. POST /jobs refuses a FIFO before it probes anything.
 */
import { execFile } from 'node:child_process'
import { mkdir, readdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { DEFAULT_PROBE_TIMEOUT_MS, Ffmpeg } from '../../origin/transcode/ffmpeg.js'
import { ingest } from '../../origin/transcode/ingest.js'
import { CdnError } from '../../src/errors.js'
import { startOrigin, tempDir } from '../helpers/origin.js'

const run = promisify(execFile)
const dir = await tempDir(t)
const ingestDir = join(dir, 'ingest')
await mkdir(ingestDir)
const fifo = join(ingestDir, 'stuck.mp4')
await run('mkfifo', [fifo])
await symlink('stuck.mp4', join(ingestDir, 'link.mp4'))

const tools = fixtureFfmpeg()
const short = new Ffmpeg({
  ffmpegPath: tools.ffmpegPath,
  ffprobePath: tools.ffprobePath,
  probeTimeoutMs: 300,
})

/** What `call` rejects with: a CdnError, or the test fails. */
async function rejection(call: Promise<unknown>): Promise<CdnError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!(err instanceof CdnError)) throw new Error(`expected a CdnError, got ${String(err)}`)
  return err
}

/** Whether no process has this pid (reaped, not a zombie). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/** Pids of processes whose command line names the FIFO (pgrep exits 1 when there is none). */
async function processesOnFifo(): Promise<string[]> {
  try {
    return (await run('pgrep', ['-f', fifo])).stdout.split('\n').filter(Boolean)
  } catch (err) {
    if ((err as { code?: unknown }).code === 1) return []
    throw err
  }
}

const TIMED_OUT = /^cannot read source stuck\.mp4: ffprobe timed out after 0\.3 s$/

t.test('the limit is 30 s unless the constructor sets it', async (t) => {
  t.equal(DEFAULT_PROBE_TIMEOUT_MS, 30_000)
  t.equal(new Ffmpeg({ ffmpegPath: tools.ffmpegPath, ffprobePath: tools.ffprobePath }).probeTimeoutMs, 30_000)
  t.equal(short.probeTimeoutMs, 300)
  t.throws(
    () => new Ffmpeg({ ffmpegPath: tools.ffmpegPath, ffprobePath: tools.ffprobePath, probeTimeoutMs: 0 }),
    {
      code: 'CDN_ERR_CONFIG',
    },
  )
})

for (const [name, call] of [
  ['probe', () => short.probe(fifo)],
  ['packets', () => short.packets(fifo)],
] as const) {
  t.test(`${name}() of a FIFO nobody writes times out, its ffprobe killed and reaped`, async (t) => {
    const err = await rejection(call())
    t.equal(err.code, 'CDN_ERR_PROBE_TIMEOUT')
    t.equal(err.status, 422, "the client's source, as CDN_ERR_BAD_SOURCE")
    t.match(err.message, TIMED_OUT)
    t.notMatch(err.message, dir, 'no directory in the message')
    t.same(
      err.toJSON(),
      { error: { code: 'CDN_ERR_PROBE_TIMEOUT', message: err.message } },
      'nothing else sent',
    )
    const pid = err.internal?.pid
    t.type(pid, 'number', 'the killed ffprobe is named for the log')
    t.ok(gone(pid as number), `ffprobe ${String(pid)} is gone`)
    t.same(await processesOnFifo(), [], 'no process has the FIFO open')
  })
}

t.test('an ingest of a FIFO (cdn ingest, a job) fails at its probe and publishes nothing', async (t) => {
  const store = join(dir, 'store')
  const err = await rejection(ingest(fifo, { title: 'stuck', store, ffmpeg: short }))
  t.equal(err.code, 'CDN_ERR_PROBE_TIMEOUT')
  t.match(err.message, TIMED_OUT)
  t.same(await readdir(join(store, 'titles')), [], 'nothing published')
  t.same(await readdir(join(store, 'staging')), [], 'no staging')
  t.same(await processesOnFifo(), [], 'no ffprobe left')
})

t.test('POST /jobs refuses a FIFO as its source before probing it: 400, no job', async (t) => {
  const origin = await startOrigin(t, { store: join(dir, 'origin-store'), ingestDir, adminToken: 'tok' })
  const post = (body: unknown) =>
    fetch(`${origin.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tok' },
      body: JSON.stringify(body),
    })
  // The route probes every source before it answers (with the origin's 30 s limit): the
  // refusal comes first, so the answer does not wait for it.
  for (const source of ['stuck.mp4', 'link.mp4']) {
    for (const ladder of [undefined, ['240p']]) {
      const r = await post({ source, title: 'stuck', ...(ladder ? { ladder } : {}) })
      t.equal(r.status, 400, `${source}${ladder ? ' with a ladder' : ''} refused`)
      const text = await r.text()
      t.same(JSON.parse(text), {
        error: { code: 'CDN_ERR_BAD_BODY', message: `source is not a file: ${source}` },
      })
      t.notMatch(text, dir, 'no local path')
    }
  }
  const list = await fetch(`${origin.url}/jobs`, { headers: { authorization: 'Bearer tok' } })
  t.same(((await list.json()) as { jobs: unknown[] }).jobs, [], 'no job created')
  t.same(await processesOnFifo(), [], 'nothing opened the FIFO')
})
