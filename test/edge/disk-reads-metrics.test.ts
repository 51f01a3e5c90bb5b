/**
 * What /metrics says of the event loop and of disk reads, on a real edge over a real upstream:
 * `cdn_edge_disk_reads_total{mode}` shows where each disk hit's body was read (sync on the
 * event loop only for small hot files, `--disk-sync-read-max`), and
 * `cdn_edge_event_loop_delay_seconds{stat}` shows a stall of the loop, then forgets it at the
 * next scrape.
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge, type TestEdge } from '../helpers/edge.js'
import { metricSum } from '../helpers/wait.js'
import { pattern, startUpstream } from './upstream-server.js'

const SMALL = '/vod/r/v1/720p/seg-00001.m4s'
const LARGE = '/vod/r/v1/720p/seg-00002.m4s'
const BODIES: Record<string, Buffer> = { [SMALL]: pattern(20_000, 1), [LARGE]: pattern(300_000, 2) }
const CC = 'public, max-age=600'

async function scrape(edge: TestEdge): Promise<string> {
  return (await request(`${edge.url}/metrics`)).body.text()
}

async function reads(
  edge: TestEdge,
): Promise<{ sync: number; async: number; sendfile: number; sendfileLoop: number }> {
  const text = await scrape(edge)
  return {
    sync: metricSum(text, 'cdn_edge_disk_reads_total', { mode: 'sync' }),
    async: metricSum(text, 'cdn_edge_disk_reads_total', { mode: 'async' }),
    sendfile: metricSum(text, 'cdn_edge_disk_reads_total', { mode: 'sendfile' }),
    sendfileLoop: metricSum(text, 'cdn_edge_disk_reads_total', { mode: 'sendfile_loop' }),
  }
}

/** A GET that must be a disk hit with the object's bytes; resolves with the reads it made, by mode. */
async function diskHit(t: Test, edge: TestEdge, path: string): Promise<string> {
  const before = await reads(edge)
  const res = await request(`${edge.url}${path}`)
  const body = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.headers['x-cache'], 'HIT-DISK', `${path}: a disk hit`)
  t.ok(body.equals(BODIES[path]!), `${path}: right bytes`)
  const after = await reads(edge)
  const sent = after.sendfile - before.sendfile
  const onLoop = after.sendfileLoop - before.sendfileLoop
  return (
    `sync ${after.sync - before.sync}, async ${after.async - before.async}` +
    `${sent ? `, sendfile ${sent}` : ''}${onLoop ? `, sendfile_loop ${onLoop}` : ''}`
  )
}

/** `sendfile` false unless asked: these tests are about reads (sendfile's own: sendfile.test.ts). */
async function diskEdge(t: Test, syncReadMax?: number, sendfile = false): Promise<TestEdge> {
  const up = await startUpstream(
    t,
    Object.fromEntries(
      Object.entries(BODIES).map(([path, body]) => [
        path,
        (_req, reply) => reply.header('cache-control', CC).header('etag', `"${body.length}"`).send(body),
      ]),
    ),
  )
  // Monotonic time stands still: a file read once stays hot. Wall time ahead: files are settled.
  const edge = await startEdge(t, {
    upstream: up.url,
    // Too small a memory tier for either object: every hit after the miss is a disk hit.
    memorySize: 64_000,
    clock: new ManualClock(Date.now() + 60_000),
    ...(syncReadMax !== undefined ? { diskSyncReadMax: syncReadMax } : {}),
    diskSendfile: sendfile,
  })
  for (const path of [SMALL, LARGE]) {
    t.equal((await request(`${edge.url}${path}`)).headers['x-cache'], 'MISS')
    await settled(edge)
  }
  return edge
}

t.test('cdn_edge_disk_reads_total: sync only for small hot files', async (t) => {
  const edge = await diskEdge(t)
  t.equal(await diskHit(t, edge, SMALL), 'sync 0, async 1', 'small, first read: the threadpool')
  t.equal(await diskHit(t, edge, SMALL), 'sync 1, async 0', 'small and hot: on the loop')
  t.equal(await diskHit(t, edge, LARGE), 'sync 0, async 1', 'over 64 KiB: the threadpool')
  t.equal(await diskHit(t, edge, LARGE), 'sync 0, async 1', 'over 64 KiB and hot: still the threadpool')
  // With sendfile (plain HTTP): the first 4 KiB through node, read as any small hot read is.
  const sends = await diskEdge(t, undefined, true)
  t.equal(await diskHit(t, sends, LARGE), 'sync 0, async 1', 'sendfile: the first read verifies the file')
  // (More sends and 4 KiB nudges only if the socket filled on the way: the count is the kernel's.)
  t.match(
    await diskHit(t, sends, LARGE),
    /^sync [1-9]\d*, async 0, sendfile_loop [1-9]\d*$/,
    'then 4 KiB read on the loop, and the rest sent on the loop: its pages are in the page cache',
  )
})

t.test('--disk-sync-read-max: 0 keeps every read off the loop, a larger bound lets more on', async (t) => {
  const none = await diskEdge(t, 0)
  for (let i = 0; i < 2; i++) t.equal(await diskHit(t, none, SMALL), 'sync 0, async 1', `0: small (${i})`)
  const more = await diskEdge(t, 512 * 1024)
  t.equal(await diskHit(t, more, LARGE), 'sync 0, async 1', '512 KiB: first read')
  t.equal(await diskHit(t, more, LARGE), 'sync 1, async 0', '512 KiB: a hot 300 kB file on the loop')
})

t.test('cdn_edge_event_loop_delay_seconds: a stall shows, then the next window forgets it', async (t) => {
  const edge = await diskEdge(t)
  const delay = (text: string, stat: string) => metricSum(text, 'cdn_edge_event_loop_delay_seconds', { stat })
  // The histogram's 10 ms timer starts a window at its first run after a scrape (its reset), and
  // records a stall at its first run after it: a 20 ms timer runs after each of those (libuv runs
  // due timers in order), so it is the event waited for here, not a guess at a duration.
  const tick = () => new Promise((resolve) => setTimeout(resolve, 20))
  await scrape(edge)
  await tick()
  // The stimulus: this process (the edge's too) blocked for 300 ms, as a slow synchronous read would.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
  await tick()
  const stalled = await scrape(edge)
  const max = delay(stalled, 'max')
  t.ok(max >= 0.25, `the window's max shows the stall (${max} s)`)
  t.ok(delay(stalled, 'p50') <= delay(stalled, 'p99'), 'p50 <= p99')
  t.ok(delay(stalled, 'p99') <= max, 'p99 <= max')
  const next = delay(await scrape(edge), 'max')
  t.ok(next < max, `reset at the scrape: the next window's max is lower (${next} s)`)
})
