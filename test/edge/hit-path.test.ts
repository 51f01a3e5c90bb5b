/**
 * The lean hit path on the wire: disk hits go past fastify and send bodies from
 * pooled buffers; whatever the interleaving, every client gets its own object's bytes, and
 * ranges, conditionals and HEAD still work on a lent body.
 */
import { connect } from 'node:net'
import t from 'tap'
import { startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { IMMUTABLE, pattern, startEchoUpstream, startUpstream } from './upstream-server.js'

const N = 3
const path = (i: number) => `/vod/h/v1/720p/seg-${String(i).padStart(5, '0')}.m4s`

t.test('disk hits from pooled buffers: each client gets its own bytes', async (t) => {
  // Same size, so every object uses the same pool size class and buffers go round between them;
  // large enough that a client that stops reading leaves most of its response unwritten.
  const bodies = Array.from({ length: N }, (_, i) => pattern(6_000_000, i + 1))
  const routes: Record<string, (req: unknown, reply: never) => unknown> = {}
  for (let i = 0; i < N; i++)
    routes[path(i)] = (
      _req,
      reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
    ) => reply.header('cache-control', IMMUTABLE).header('etag', `"o${i}"`).send(bodies[i]!)
  const up = await startUpstream(t, routes as never)
  // A memory tier too small to hold the objects: every hit is a disk hit.
  const edge = await startEdge(t, { upstream: up.url, memorySize: 1_000_000 })
  for (let i = 0; i < N; i++) {
    const r = await fetch(edge.url + path(i))
    t.ok(Buffer.from(await r.arrayBuffer()).equals(bodies[i]!), `miss ${i}`)
  }
  await edge.app.edge.flights.settled('h')
  const disk = (edge.app.edge.store as unknown as { disk: { pool: { lent: number; reused: number } } }).disk
  // A client that stops reading: its response stays half-written, holding its lent buffer,
  // while other responses borrow and return buffers of the same class.
  const slow = connect(Number(new URL(edge.url).port), '127.0.0.1')
  slow.pause()
  const slowChunks: Buffer[] = []
  slow.on('data', (c: Buffer) => slowChunks.push(c))
  const slowEnded = new Promise((resolve) => slow.once('end', resolve))
  const stats = edge.app.edge.stats
  const before = stats.requests['hit-disk']
  slow.write(`GET ${path(0)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  await until(() => stats.requests['hit-disk'] > before)
  let wrong = 0
  let notDisk = 0
  for (let round = 0; round < 3; round++) {
    const order = Array.from({ length: 2 * N }, (_, k) => (k * 7 + round) % N)
    await Promise.all(
      order.map(async (i) => {
        const r = await fetch(edge.url + path(i))
        if (r.headers.get('x-cache') !== 'HIT-DISK') notDisk++
        if (!Buffer.from(await r.arrayBuffer()).equals(bodies[i]!)) wrong++
      }),
    )
  }
  slow.resume()
  await slowEnded
  const raw = Buffer.concat(slowChunks)
  const split = raw.indexOf('\r\n\r\n')
  t.ok(raw.subarray(split + 4).equals(bodies[0]!), 'the stalled client still gets its own bytes')
  t.equal(wrong, 0, 'no body ever carried another object’s bytes')
  t.equal(notDisk, 0, 'all disk hits')
  t.ok(disk.pool.lent >= 3 * 2 * N, 'bodies were lent from the pool')
  t.ok(disk.pool.reused > 0, 'and buffers were reused')
  for (let i = 0; i < N; i++) t.equal(up.count(path(i)), 1, `one upstream fetch for ${i}`)

  const range = await fetch(edge.url + path(2), { headers: { range: 'bytes=1000-1999' } })
  t.equal(range.status, 206)
  t.ok(Buffer.from(await range.arrayBuffer()).equals(bodies[2]!.subarray(1000, 2000)))
  const cond = await fetch(edge.url + path(1), { headers: { 'if-none-match': '"o1"' } })
  t.equal(cond.status, 304)
  const head = await fetch(edge.url + path(0), { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), '6000000')
  t.equal(head.headers.get('x-cache'), 'HIT-DISK')
  const after = await fetch(edge.url + path(0))
  t.ok(Buffer.from(await after.arrayBuffer()).equals(bodies[0]!), 'bytes right after a HEAD')
})

t.test('a miss sends the head as soon as the upstream’s head arrives, before any body', async (t) => {
  let release: () => void = () => undefined
  const bodyGate = new Promise<void>((r) => {
    release = r
  })
  const body = pattern(100_000, 9)
  const up = await startUpstream(t, {
    '/vod/s/v1/720p/seg-00001.m4s': async (_req, reply) => {
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, { 'cache-control': IMMUTABLE, 'content-length': String(body.length) })
      res.flushHeaders()
      await bodyGate
      res.end(body)
    },
  })
  const edge = await startEdge(t, { upstream: up.url })
  const url = `${edge.url}/vod/s/v1/720p/seg-00001.m4s`
  const first = fetch(url)
  // The head must come while the upstream still holds every body byte (were it held back
  // until the body, these would never resolve and the test would end at tap's timeout).
  const r1 = await first
  t.equal(r1.status, 200, 'head received before the body was released')
  // A joiner gets its head at once too.
  const r2 = await fetch(url)
  t.equal(r2.status, 200, 'a joiner also gets the head before any body')
  release()
  const [b1, b2] = await Promise.all([r1.arrayBuffer(), r2.arrayBuffer()])
  t.ok(Buffer.from(b1).equals(body))
  t.ok(Buffer.from(b2).equals(body))
  t.equal(r2.headers.get('x-cache'), 'COALESCED')
  t.equal(up.count('/vod/s/v1/720p/seg-00001.m4s'), 1)
})

t.test(
  'If-Range with a Last-Modified in the second of the stored Date is weak: the whole body',
  async (t) => {
    // An object written in the second it was served (a live playlist, a segment just published):
    // it may have changed again within that second, so the date cannot promise the same bytes
    // (RFC 9110 §13.1.5, §8.8.2.2), and a range of it could splice two versions.
    const now = new Date().toUTCString()
    const old = new Date(Date.now() - 60_000).toUTCString()
    const up = await startEchoUpstream(t, (r) => ({
      headers: {
        'cache-control': 'max-age=60',
        date: now,
        'last-modified': r.url.includes('same') ? now : old,
      },
      body: '0123456789',
    }))
    const edge = await startEdge(t, { upstream: up.url })
    const same = `${edge.url}/vod/t/same.ts`
    t.equal((await get(same)).status, 200)
    const weak = await get(same, { range: 'bytes=0-3', 'if-range': now })
    t.equal(weak.status, 200, 'a weak date: the whole body')
    t.equal(weak.body, '0123456789')
    const older = `${edge.url}/vod/t/older.ts`
    t.equal((await get(older)).status, 200)
    const strong = await get(older, { range: 'bytes=0-3', 'if-range': old })
    t.equal(strong.status, 206, 'a Last-Modified a minute before Date is strong: the range')
    t.equal(strong.body, '0123')
    t.equal(up.received.length, 2, 'both answered from the cache')
  },
)
