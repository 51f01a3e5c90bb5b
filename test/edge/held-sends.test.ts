/**
 * Large memory hits sent by sendfile from the disk copy's page cache (edge/cache/held-sends.ts):
 * a real edge over a real upstream, the addon `npm run build` compiled. The first memory hit is
 * written from memory and has the disk copy checked in the background; the next goes by sendfile
 * on the event loop, still told as the memory hit it is, with no disk read. A range that is not
 * resident goes through node from the memory buffer, never to the threadpool (no disk wait), and
 * TLS, HEAD, ranges and a disk copy of other bytes are answered from memory as before.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import type { CacheEntry } from '../../edge/cache/entry.js'
import { heldStream, sameBody } from '../../edge/cache/held-sends.js'
import type { DiskRecord } from '../../edge/cache/disk-index.js'
import type { BodyStream } from '../../edge/cache/store.js'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { pumpBody } from '../../edge/http/pump-body.js'
import { sendfile } from '../../edge/native/sendfile.js'
import type { Clock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { metricSum } from '../helpers/wait.js'
import { startUpstream } from './upstream-server.js'

/** Real time, wall clock ahead, so a file written now counts as settled (disk-reader `intact`). */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() }

function body(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * seed + (i >> 11)) & 0xff
  return b
}
const LARGE = body(1_300_000, 13)
const PATH = '/vod/held/v1/1080p/seg-00001.m4s'

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const r = await request(url, { headers, method })
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) }
}

t.test('a large memory hit goes by sendfile from the verified disk copy, told as a memory hit', async (t) => {
  t.ok(sendfile, 'the addon is built')
  const origin = await startUpstream(t, {
    [PATH]: (_req, reply) =>
      reply.header('cache-control', 'public, max-age=600').header('etag', '"held"').send(LARGE),
  })
  const edge = await startEdge(t, { upstream: origin.url, memorySize: 64_000_000, clock: aheadClock })
  const store = edge.app.edge.store as TieredStore
  const disk = store.disk
  const url = `${edge.url}${PATH}`
  t.equal((await get(url)).headers['x-cache'], 'MISS')
  await settled(edge)
  t.ok(store.memory.has(PATH) && disk.has(PATH), 'the miss went to both tiers')

  // First memory hit: the disk copy was never read, so it is written from memory and checked.
  const asyncBefore = disk.reads.async
  const first = await get(url)
  t.equal(first.headers['x-cache'], 'HIT-MEM')
  t.ok(first.body.equals(LARGE), 'the bytes, from memory')
  t.equal(store.verifier.started, 1, 'the disk copy is checked in the background')
  await store.verifier.settled()
  t.equal(disk.reads.async, asyncBefore + 1, 'by one read of the whole body on the threadpool')

  // Then by sendfile on the loop: no disk read, and still a memory hit (head, counters).
  const before = { ...disk.reads }
  for (let i = 0; i < 3; i++) {
    const r = await get(url)
    t.equal(r.status, 200)
    t.equal(r.headers['x-cache'], 'HIT-MEM', `hit ${i}: a memory hit`)
    t.equal(r.headers['content-length'], String(LARGE.length))
    t.ok(r.body.equals(LARGE), `hit ${i}: the object's bytes, in order`)
  }
  t.ok(disk.reads.sendfileLoop > before.sendfileLoop, 'sent on the event loop from the page cache')
  t.equal(disk.reads.async, before.async, 'no disk read on the threadpool')
  t.equal(disk.reads.sendfile, before.sendfile, 'no send on the threadpool (which may wait on the disk)')
  t.equal(store.verifier.started, 1, 'checked once')
  const metrics = await (await request(`${edge.url}/metrics`)).body.text()
  t.equal(metricSum(metrics, 'cdn_edge_requests_total', { result: 'hit-mem' }), 4, 'counted as memory hits')

  // What cannot go by sendfile is answered from memory as before: HEAD, a range.
  const loopSends = disk.reads.sendfileLoop
  const head = await get(url, {}, 'HEAD')
  t.equal(head.headers['x-cache'], 'HIT-MEM')
  t.equal(head.headers['content-length'], String(LARGE.length))
  const range = await get(url, { range: 'bytes=1000-1999' })
  t.equal(range.status, 206)
  t.ok(range.body.equals(LARGE.subarray(1000, 2000)), 'the range, from memory')
  t.equal(disk.reads.sendfileLoop, loopSends, 'neither sent by sendfile')
})

t.test('a disk copy of other bytes is never sent for the memory entry', async (t) => {
  const mem = { body: LARGE, meta: { crc32: 1, status: 200 }, encoded: undefined } as unknown as CacheEntry
  const rec = (crc32: number, bodyLength: number, status = 200) =>
    ({ entry: { meta: { crc32, bodyLength, status } } }) as unknown as DiskRecord
  t.ok(sameBody(mem, rec(1, LARGE.length)), 'same length, crc32 and status: the same body')
  t.notOk(sameBody(mem, rec(2, LARGE.length)), 'another crc32')
  t.notOk(sameBody(mem, rec(1, LARGE.length - 1)), 'another length')
  t.notOk(sameBody(mem, rec(1, LARGE.length, 206)), 'another status')
  t.notOk(sameBody(mem, undefined), 'no disk copy')
  t.notOk(sameBody({ ...mem, encoded: {} } as unknown as CacheEntry, rec(1, LARGE.length)), 'an encoded form')
})

t.test('a range not in the page cache goes through node from memory, never to the threadpool', async (t) => {
  t.ok(sendfile, 'the addon is built')
  const mem = { body: LARGE, meta: { status: 200 } } as unknown as CacheEntry
  const calls = { sendNow: 0, read: 0, closed: 0 }
  // The disk copy's stream as the disk reader gives it when no page is resident: every send on
  // the loop is -ENODATA. Its reads and threadpool sends must never be used.
  const disk: BodyStream = {
    entry: mem,
    length: LARGE.length,
    read: (_b, _o, done) => {
      calls.read++
      done(new Error('read from disk'))
    },
    lend: (n) => ({ buf: Buffer.alloc(n), release: () => {} }),
    sendTo: (_o, _off, _c, done) => done(5, 0),
    sendNow: () => {
      calls.sendNow++
      return -sendfile!.ENODATA
    },
    fail: () => t.fail('no failure'),
    close: () => void calls.closed++,
  }
  const server = createServer((_req, res) => {
    res.setHeader('content-length', LARGE.length)
    res.flushHeaders()
    pumpBody(res, heldStream(mem, disk), 1024 * 1024)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const r = await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  t.ok(r.body.equals(LARGE), 'every byte, from the memory buffer')
  t.ok(calls.sendNow >= 1, 'a send on the loop was tried')
  t.equal(calls.read, 0, 'nothing read from the disk copy')
  t.ok(calls.closed >= 1, 'the disk stream closed (close may be called again: it is idempotent)')
})
