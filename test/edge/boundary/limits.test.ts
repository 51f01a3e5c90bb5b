/**
 * The edge's client-facing limits, on the raw path and on node's http alike: a head or a
 * request that takes too long gets 408 and the close, an idle kept-alive connection is closed.
 * Limits here are small (200 ms); each case waits for the edge's answer or close, never a timer.
 */
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { startEdge } from '../../helpers/edge.js'
import { startUpstream } from '../upstream-server.js'
import { exchange, open, untilClose } from './wire.js'

const PL = '/vod/show/v1/index.m3u8'
const SEG = '/vod/show/v1/seg-00001.m4s'
const BODY = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')
const SEGMENT = Buffer.alloc(1024 * 1024, 3)

const closed = (s: Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', resolve)))

async function setup(
  t: Test,
  rawHits: boolean,
  over: { maxConnections?: number; keepAliveTimeout?: number } = {},
) {
  const origin = await startUpstream(t, {
    [PL]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
    [SEG]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(SEGMENT),
  })
  const edge = await startEdge(t, {
    upstream: origin.url,
    rawHits,
    clientHeadersTimeout: 200,
    clientRequestTimeout: 300,
    keepAliveTimeout: 200,
    clientWriteTimeout: 200,
    ...over,
  })
  const port = Number(new URL(edge.url).port)
  // The edge's side of each connection, in the order they arrive.
  const accepted: Socket[] = []
  edge.app.server.on('connection', (s: Socket) => accepted.push(s))
  // Warmed on a connection of its own, closed by this side: gone before a case starts, whatever
  // the edge's keep-alive.
  const warm = new Client(edge.url)
  for (const p of [PL, SEG]) await (await warm.request({ path: p, method: 'GET' })).body.arrayBuffer()
  await warm.close()
  await edge.app.edge.flights.settled('show')
  await Promise.all(accepted.map(closed))
  accepted.length = 0
  return { origin, edge, port, accepted }
}

const statuses = (r: { responses: { status: number }[] }) => r.responses.map((x) => x.status)

for (const rawHits of [true, false]) {
  const mode = rawHits ? 'raw path on' : 'raw path off'

  t.test(`${mode}: the options reach node's server`, async (t) => {
    const { edge } = await setup(t, rawHits)
    t.equal(edge.app.server.headersTimeout, 200)
    t.equal(edge.app.server.requestTimeout, 300)
    t.equal(edge.app.server.keepAliveTimeout, 200)
  })

  t.test(`${mode}: a head that does not end gets 408, then the close`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n`], { end: false })
    t.same(statuses(r), [408])
    // After a request answered on the same connection too.
    const after = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n\r\nGET ${PL} HTTP/1.1\r\n`], {
      end: false,
    })
    t.same(statuses(after), [200, 408])
  })

  t.test(`${mode}: a connection that sends nothing gets 408 after the head limit`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [], { end: false })
    t.same(statuses(r), [408])
    t.match(JSON.parse(r.responses[0]!.body.toString()), { error: { code: 'CDN_ERR_REQUEST_TIMEOUT' } })
  })

  t.test(`${mode}: a body that does not end gets 408, then the close`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc`], {
      end: false,
    })
    t.same(statuses(r), [408])
  })

  t.test(`${mode}: a client that does not read is closed once its answer stops moving`, async (t) => {
    const { port, edge, accepted } = await setup(t, rawHits)
    const s = await open(port)
    t.teardown(() => s.destroy())
    s.pause()
    const n = 40
    s.write(`GET ${SEG} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(n))
    // Wait for the edge to close its side: its answer queued and no byte taken for 200 ms.
    await closed(accepted[0]!)
    t.equal(edge.app.edge.stats.clientWriteStalls, 1, 'counted as a write stall')
    const got = untilClose(s)
    s.resume()
    t.ok((await got).length < n * SEGMENT.length, 'the client got less than it asked for')
    const metrics = await (await fetch(`${edge.url}/metrics`)).text()
    t.match(metrics, /cdn_edge_client_write_stalls_total 1/)
  })

  t.test(`${mode}: past --max-connections a new connection gets 503 and the close`, async (t) => {
    // The held connections stay open until the test closes one: at a 200 ms keep-alive the edge
    // would close them itself when the refused connection comes later than that (a busy machine).
    const { port, edge, accepted } = await setup(t, rawHits, { maxConnections: 2, keepAliveTimeout: 60_000 })
    const req = `GET ${PL} HTTP/1.1\r\nHost: a\r\n\r\n`
    const held = [await open(port), await open(port)]
    for (const s of held) t.teardown(() => s.destroy())
    // Both admitted and answered, so both count.
    for (const s of held) {
      const answered = new Promise<void>((resolve) => s.once('data', () => resolve()))
      s.write(req)
      await answered
    }
    const refused = await exchange(port, [req], { end: false })
    t.same(statuses(refused), [503])
    t.equal(refused.responses[0]!.headers['retry-after'], '1')
    t.equal(refused.responses[0]!.headers.connection, 'close')
    t.match(JSON.parse(refused.responses[0]!.body.toString()), { error: { code: 'CDN_ERR_OVERLOADED' } })
    t.equal(edge.app.edge.stats.connectionsRefused, 1)
    // One held connection closes: the next one is served again.
    held[0]!.destroy()
    await closed(accepted[0]!)
    const served = await exchange(port, [req])
    t.same(statuses(served), [200])
  })

  t.test(`${mode}: CONNECT is refused with the JSON error body, then the close`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, ['CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n'], {
      end: false,
    })
    t.same(statuses(r), [400])
    t.equal(r.responses[0]!.headers.connection, 'close')
    t.match(JSON.parse(r.responses[0]!.body.toString()), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
  })

  t.test(`${mode}: an idle kept-alive connection is closed after its answers`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(2)], { end: false })
    t.same(statuses(r), [200, 200])
    t.same(r.responses[1]!.body, BODY)
  })
}
