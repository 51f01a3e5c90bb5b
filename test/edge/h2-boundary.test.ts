/**
 * The edge's HTTPS listener against HTTP/2 clients that misbehave (test/helpers/h2-frames.ts for
 * what node's client will not send): a session flooded with HEADERS and RST_STREAM ends, so its
 * connection leaves `cdn_edge_active_connections` and frees its place under --max-connections; a
 * stalled body gets 408; a bad `:authority` 400; CONNECT the JSON 400 and other methods the 405
 * that HTTP/1.1 gives.
 */
import { once } from 'node:events'
import { connect, type ClientHttp2Session } from 'node:http2'
import t, { type Test } from 'tap'
import { type EdgeTestOptions, startEdge, type TestEdge } from '../helpers/edge.js'
import { FRAME, rawH2, requestFrame, rstFrame, stalledPost } from '../helpers/h2-frames.js'
import { h2Exchange, testCerts, type TestCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, rawStatus, startUpstream } from './upstream-server.js'

const PLAYLIST = '/vod/h2/master.m3u8'

let certs: TestCerts
t.before(async () => {
  certs = await testCerts(t)
})

async function tlsEdge(t: Test, over: Partial<EdgeTestOptions> = {}): Promise<TestEdge> {
  const up = await startUpstream(t, {
    [PLAYLIST]: (_req, reply) => reply.header('cache-control', IMMUTABLE).send('#EXTM3U\n'),
  })
  return startEdge(t, { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key], ...over })
}

function h2Client(t: Test, edge: TestEdge): ClientHttp2Session {
  const c = connect(edge.url, { ca: certs.caPem, servername: 'localhost' })
  c.on('error', () => undefined)
  t.teardown(() => c.destroy())
  return c
}

const get = h2Exchange

/** The length of the body `path` is answered with on `c`. */
function bytesOf(c: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = c.request({ ':path': path })
    let n = 0
    r.on('data', (d: Buffer) => (n += d.length))
    r.on('end', () => resolve(n))
    r.on('error', reject)
  })
}

t.test('a flooded HTTP/2 session ends and frees its place under --max-connections', async (t) => {
  const edge = await tlsEdge(t, { keepAliveTimeout: 50, maxConnections: 1 })
  const stats = edge.app.edge.stats
  const h2 = await rawH2(Number(new URL(edge.url).port), certs.caPem)
  t.teardown(() => h2.socket.destroy())
  const fields = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', PLAYLIST],
    [':authority', 'localhost'],
  ] as const
  const flood: Buffer[] = []
  for (let i = 0, id = 1; i < 2000; i++, id += 2) flood.push(requestFrame(id, fields), rstFrame(id))
  h2.send(...flood)
  await h2.next((f) => f.type === FRAME.GOAWAY)
  await h2.closed
  await until(() => stats.activeConnections === 0)
  t.pass('no connection counted once the flood ended')
  const r = await get(h2Client(t, edge), { ':path': PLAYLIST })
  t.equal(r.status, 200, 'the next client is served')
})

t.test('an HTTP/2 request whose body stalls gets 408 at --client-request-timeout, as HTTP/1.1', async (t) => {
  const edge = await tlsEdge(t, { clientHeadersTimeout: 1000, clientRequestTimeout: 1000 })
  const c = h2Client(t, edge)
  const { status, body } = await stalledPost(c, PLAYLIST)
  t.equal(status, 408)
  t.match(JSON.parse(body), { error: { code: 'CDN_ERR_REQUEST_TIMEOUT' } })
  t.equal((await get(c, { ':path': PLAYLIST })).status, 200, 'the session serves on')
})

t.test(
  'an HTTP/2 client that does not read is closed once its answer stops moving, as HTTP/1.1',
  async (t) => {
    const SEG = '/vod/h2/v1/seg-00001.m4s'
    const body = pattern(2 * 1024 * 1024)
    const up = await startUpstream(t, {
      [SEG]: (_req, reply) => reply.header('cache-control', IMMUTABLE).send(body),
    })
    const edge = await startEdge(t, {
      upstream: up.url,
      tlsCert: [certs.cert.cert],
      tlsKey: [certs.cert.key],
      clientWriteTimeout: 200,
    })
    const stats = edge.app.edge.stats
    const reader = h2Client(t, edge)
    t.equal(await bytesOf(reader, SEG), body.length, 'a client that reads gets the whole answer')
    t.equal(stats.clientWriteStalls, 0)
    // A stream window of 0: the answer waits in the edge's stream, never in the socket's queue,
    // for as long as the client likes (with the body buffer it holds).
    const c = connect(edge.url, {
      ca: certs.caPem,
      servername: 'localhost',
      settings: { initialWindowSize: 0 },
    })
    c.on('error', () => undefined)
    t.teardown(() => c.destroy())
    const stalled = c.request({ ':path': SEG })
    stalled.on('error', () => undefined)
    const [head] = (await once(stalled, 'response')) as [Record<string, unknown>]
    t.equal(head[':status'], 200)
    await once(c, 'close')
    t.equal(stats.clientWriteStalls, 1, 'counted as a write stall')
    t.equal(await bytesOf(reader, SEG), body.length, 'the other session serves on')
  },
)

t.test('HTTP/2: a bad :authority, or a Host naming another, gets 400 as a bad Host does', async (t) => {
  const edge = await tlsEdge(t)
  const c = h2Client(t, edge)
  for (const h of [
    { ':authority': 'good.example', host: 'evil.example' },
    { ':authority': 'x:99999', host: 'a.example' },
    // (`u:p@x`: the same, where nghttp2 does not refuse it first: test/src/https-boundary.test.ts)
  ]) {
    const r = await get(c, { ':path': PLAYLIST, ...h })
    t.equal(r.status, 400, JSON.stringify(h))
    t.match(JSON.parse(r.body), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
  }
  t.equal(
    (await get(c, { ':path': PLAYLIST, ':authority': 'edge.example', host: 'edge.example' })).status,
    200,
  )
})

t.test(
  'CONNECT gets the JSON 400 and other methods the 405 with Allow, over HTTP/2 as HTTP/1.1',
  async (t) => {
    const edge = await tlsEdge(t, { httpPort: 0 })
    const c = h2Client(t, edge)
    const connect = await get(c, { ':method': 'CONNECT', ':authority': 'evil.example:443' })
    t.equal(connect.status, 400)
    t.match(JSON.parse(connect.body), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
    for (const method of ['FOO', 'TRACE', 'PROPFIND']) {
      const r = await get(c, { ':method': method, ':path': PLAYLIST })
      t.equal(r.status, 405, `${method} over HTTP/2`)
      t.equal(r.headers.allow, 'GET, HEAD')
      t.match(JSON.parse(r.body), { error: { code: 'CDN_ERR_METHOD_NOT_ALLOWED' } })
    }
    for (const method of ['TRACE', 'PROPFIND'])
      t.equal(
        await rawStatus(edge.httpUrl!, `${method} ${PLAYLIST} HTTP/1.1\r\nHost: a\r\n\r\n`),
        405,
        `${method} over HTTP/1.1`,
      )
    t.equal((await get(c, { ':path': PLAYLIST })).status, 200, 'the session serves on')
  },
)
