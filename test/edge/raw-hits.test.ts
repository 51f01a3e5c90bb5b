/**
 * The raw hit path (edge/http/raw-hits.ts) on a real edge: plain GET/HEAD of fresh memory hits are
 * answered from the socket's bytes; anything else hands the connection to node's http with
 * every unanswered byte, and answers come back in request order either way.
 */
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { Client, request } from 'undici'
import { TLS_SOLO_BODY } from '../../edge/http/raw-connection.js'
import { settled, startEdge } from '../helpers/edge.js'
import { agentFor, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'
import { startUpstream } from './upstream-server.js'

const PLAYLIST = Buffer.from(`#EXTM3U\n#EXT-X-VERSION:7\n${'#EXTINF:4.0,\nseg.m4s\n'.repeat(80)}`)
const SEGMENT = Buffer.alloc(1024 * 1024)
for (let i = 0; i < SEGMENT.length; i++) SEGMENT[i] = (i * 7) % 251

async function setup(t: Test) {
  const origin = await startUpstream(t, {
    '/vod/show/v1/index.m3u8': async (_req, reply) =>
      reply
        .header('cache-control', 'public, max-age=600')
        .header('etag', '"pl-1"')
        .header('content-type', 'application/vnd.apple.mpegurl')
        .send(PLAYLIST),
    '/vod/show/v1/seg-00001.m4s': async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=600').header('etag', '"s-1"').send(SEGMENT),
    '/vod/show/v1/other.m3u8': async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=600').send('#EXTM3U\n#other\n'),
  })
  const edge = await startEdge(t, { upstream: origin.url })
  const port = Number(new URL(edge.url).port)
  return { origin, edge, port }
}

interface Parsed {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Reads `count` responses off a raw socket (HEAD answers carry no body). */
function readResponses(socket: Socket, heads: boolean[]): Promise<Parsed[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const out: Parsed[] = []
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        if (out.length === heads.length) break
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const lines = buf.toString('latin1', 0, end).split('\r\n')
        const status = Number(lines[0]!.split(' ')[1])
        const headers: Record<string, string> = {}
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':')
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
        }
        const len = heads[out.length] || status === 304 ? 0 : Number(headers['content-length'] ?? 0)
        if (buf.length < end + 4 + len) return
        out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + len) })
        buf = buf.subarray(end + 4 + len)
      }
      socket.off('data', onData)
      resolve(out)
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.on('error', reject)
  })
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`

t.test('a plain hit is answered raw with the same headers node would send', async (t) => {
  const { edge, port, origin } = await setup(t)
  const pl = '/vod/show/v1/index.m3u8'
  const first = await request(`${edge.url}${pl}`)
  t.equal(first.headers['x-cache'], 'MISS')
  await first.body.arrayBuffer()
  await settled(edge)

  const before = edge.app.edge.raw!.answered
  const s = await open(port)
  t.teardown(() => s.destroy())
  // The same hit twice on one connection: once raw, once through node (a Connection header
  // other than keep-alive hands the connection over) to compare the heads.
  s.write(get(pl) + get(pl, 'Connection: keep-alive, x-test\r\n'))
  const [raw, viaNode] = await readResponses(s, [false, false])
  t.equal(edge.app.edge.raw!.answered, before + 1, 'exactly one request answered raw')
  t.equal(edge.app.edge.raw!.handedOver >= 1, true, 'the other one handed over')
  t.equal(raw!.status, 200)
  t.same(raw!.body, PLAYLIST, 'raw body is the object')
  t.same(viaNode!.body, PLAYLIST)
  t.equal(raw!.headers['x-cache'], 'HIT-MEM')
  t.equal(raw!.headers['content-length'], String(PLAYLIST.length))
  t.equal(raw!.headers['connection'], 'keep-alive')
  t.match(raw!.headers['keep-alive'], /^timeout=\d+$/)
  const strip = (h: Record<string, string>) => {
    const { connection: _c, 'keep-alive': _k, age: _a, ...rest } = h
    return rest
  }
  t.same(strip(raw!.headers), strip(viaNode!.headers), 'same end-to-end headers as the node path')
  t.match(raw!.headers.age, /^\d+$/)
  t.equal(origin.count(pl), 1, 'hits never reach the origin')
})

t.test('HEAD, pipelining, hand-over mid-stream and split requests keep order and bytes', async (t) => {
  const { edge, port, origin } = await setup(t)
  const pl = '/vod/show/v1/index.m3u8'
  const seg = '/vod/show/v1/seg-00001.m4s'
  for (const p of [pl, seg]) await (await request(`${edge.url}${p}`)).body.arrayBuffer()
  await settled(edge)

  // HEAD then GET on one connection: the HEAD answer has no body bytes.
  const s1 = await open(port)
  t.teardown(() => s1.destroy())
  s1.write(`HEAD ${pl} HTTP/1.1\r\nHost: a\r\n\r\n${get(pl)}`)
  const [h, g] = await readResponses(s1, [true, false])
  t.equal(h!.status, 200)
  t.equal(h!.headers['content-length'], String(PLAYLIST.length), 'HEAD says the length')
  t.same(g!.body, PLAYLIST, 'the GET after a HEAD is intact')

  // Pipelined: hit, hit, a miss (hands over), then hits again, all in one write.
  const s2 = await open(port)
  t.teardown(() => s2.destroy())
  const other = '/vod/show/v1/other.m3u8'
  s2.write(get(pl) + get(seg) + get(other) + get(pl) + get(seg))
  const res = await readResponses(s2, [false, false, false, false, false])
  t.same(
    res.map((r) => r.headers['x-cache']),
    ['HIT-MEM', 'HIT-MEM', 'MISS', 'HIT-MEM', 'HIT-MEM'],
  )
  t.same(res[0]!.body, PLAYLIST)
  t.same(res[1]!.body, SEGMENT)
  t.equal(res[2]!.body.toString(), '#EXTM3U\n#other\n')
  t.same(res[3]!.body, PLAYLIST)
  t.same(res[4]!.body, SEGMENT)

  // A request split into single bytes is still one request.
  const s3 = await open(port)
  t.teardown(() => s3.destroy())
  const reading = readResponses(s3, [false])
  const bytes = Buffer.from(get(pl))
  // One segment per byte: no Nagle, and each write handed to the kernel before the next.
  s3.setNoDelay(true)
  for (let i = 0; i < bytes.length; i++)
    await new Promise<void>((resolve, reject) =>
      s3.write(bytes.subarray(i, i + 1), (err) => (err ? reject(err) : resolve())),
    )
  const [split] = await reading
  t.equal(split!.headers['x-cache'], 'HIT-MEM')
  t.same(split!.body, PLAYLIST)

  // undici pipelining: 24 requests over one connection, interleaved objects.
  const client = new Client(edge.url, { pipelining: 8 })
  t.teardown(() => client.close())
  const paths = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? seg : pl))
  const bodies = await Promise.all(
    paths.map(async (p) =>
      Buffer.from(await (await client.request({ path: p, method: 'GET' })).body.arrayBuffer()),
    ),
  )
  bodies.forEach((b, i) => t.same(b, paths[i] === seg ? SEGMENT : PLAYLIST, `pipelined ${i}`))
  t.equal(origin.count(pl) + origin.count(seg) + origin.count(other), 3, 'one origin fetch per object')
})

t.test('what is not a plain hit is answered by node, unchanged', async (t) => {
  const { edge, port } = await setup(t)
  const pl = '/vod/show/v1/index.m3u8'
  await (await request(`${edge.url}${pl}`)).body.arrayBuffer()
  await settled(edge)
  const one = async (text: string, head = false) => {
    const s = await open(port)
    t.teardown(() => s.destroy())
    s.write(text)
    return (await readResponses(s, [head]))[0]!
  }
  const cond = await one(get(pl, 'If-None-Match: "pl-1"\r\n'))
  t.equal(cond.status, 304, 'conditional → 304')
  const range = await one(get(pl, 'Range: bytes=0-9\r\n'))
  t.equal(range.status, 206, 'range → 206')
  t.equal(range.body.toString(), PLAYLIST.subarray(0, 10).toString())
  const noHost = await one(`GET ${pl} HTTP/1.1\r\n\r\n`)
  t.equal(noHost.status, 400, 'HTTP/1.1 without Host → 400')
  const http10 = await one(`GET ${pl} HTTP/1.0\r\nHost: a\r\n\r\n`)
  t.equal(http10.status, 200, 'HTTP/1.0 is served by node')
  t.same(http10.body, PLAYLIST)
  const big = await one(get(pl, `X-Big: ${'a'.repeat(20_000)}\r\n`))
  t.equal(big.status, 431, 'a head over 16 KiB → 431')
  const post = await one(`POST ${pl} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`)
  t.equal(post.status, 405, 'POST → 405')
  t.match(JSON.parse(post.body.toString()), { error: { code: String } })
  const admin = await one(get('/status'))
  t.equal(admin.status, 200, 'own paths are never raw')
  t.match(JSON.parse(admin.body.toString()), { id: String })
})

t.test('a client that does not read is not buffered without bound, and gets every byte', async (t) => {
  const { edge, port } = await setup(t)
  const seg = '/vod/show/v1/seg-00001.m4s'
  await (await request(`${edge.url}${seg}`)).body.arrayBuffer()
  await settled(edge)
  // The edge's side of the connection, to see the raw path pause it.
  const accepted = new Promise<Socket>((resolve) => edge.app.server.once('connection', resolve))
  const s = await open(port)
  t.teardown(() => s.destroy())
  s.pause()
  const n = 40
  s.write(get(seg).repeat(n))
  const theirs = await accepted
  await until(() => theirs.isPaused() && theirs.writableNeedDrain)
  const answeredWhileStuck = edge.app.edge.raw!.answered
  t.ok(
    answeredWhileStuck < n,
    `parsing paused while the client does not read (${answeredWhileStuck} of ${n})`,
  )
  t.ok(
    theirs.writableLength <= 2 * SEGMENT.length,
    `at most about one answer queued in the edge (${theirs.writableLength} bytes)`,
  )
  const reading = readResponses(
    s,
    Array.from({ length: n }, () => false),
  )
  s.resume()
  const all = await reading
  t.equal(all.length, n)
  t.ok(
    all.every((r) => r.status === 200 && r.body.equals(SEGMENT)),
    'every response whole',
  )
})

t.test('a connection handed over with many pipelined requests: node answers every one', async (t) => {
  const { edge, port } = await setup(t)
  const seg = '/vod/show/v1/seg-00001.m4s'
  await (await request(`${edge.url}${seg}`)).body.arrayBuffer()
  await settled(edge)
  // Ranges go to node's http: the first one hands the connection over with the rest of the
  // first read, hundreds of requests, whose answers back up at once (node pauses its parser).
  const n = 800
  const range = 'Range: bytes=0-32767\r\n'
  const s = await open(port)
  t.teardown(() => s.destroy())
  const reading = readResponses(
    s,
    Array.from({ length: n }, () => false),
  )
  s.write(get(seg, range).repeat(n))
  const all = await reading
  t.equal(all.length, n, 'every request answered')
  t.ok(
    all.every((r) => r.status === 206 && r.body.equals(SEGMENT.subarray(0, 32768))),
    'every answer a whole 206, none a 400',
  )
  t.ok(edge.app.edge.raw!.handedOver >= 1, 'the connection was handed over')
})

t.test('closing the edge ends idle raw connections', async (t) => {
  const { edge, port } = await setup(t)
  const pl = '/vod/show/v1/index.m3u8'
  await (await request(`${edge.url}${pl}`)).body.arrayBuffer()
  await settled(edge)
  const s = await open(port)
  s.write(get(pl))
  await readResponses(s, [false])
  const ended = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)))
  s.resume()
  await edge.app.close()
  t.equal(await ended, true, 'the idle keep-alive connection was closed by the edge')
})

t.test(
  'over TLS, raw hits keep their bytes and order, and a large body leaves in a write of its own',
  async (t) => {
    const certs = await testCerts(t)
    const origin = await startUpstream(t, {
      '/vod/show/v1/index.m3u8': async (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').send(PLAYLIST),
      '/vod/show/v1/seg-00001.m4s': async (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').send(SEGMENT),
    })
    const edge = await startEdge(t, {
      upstream: origin.url,
      tlsCert: [certs.cert.cert],
      tlsKey: [certs.cert.key],
    })
    const pl = '/vod/show/v1/index.m3u8'
    const seg = '/vod/show/v1/seg-00001.m4s'
    const agent = agentFor(t, 'https1', certs.caPem)
    for (const p of [pl, seg])
      await (await request(`${edge.url}${p}`, { dispatcher: agent })).body.arrayBuffer()
    await settled(edge)
    t.ok(
      PLAYLIST.length < TLS_SOLO_BODY && SEGMENT.length >= TLS_SOLO_BODY,
      'one body each side of the limit',
    )

    // What the edge's TLS socket is asked to write, write by write (node's stream entry points).
    const writes: number[][] = []
    edge.app.server.on('secureConnection', (socket: TLSSocket) => {
      const s = socket as unknown as {
        _write(c: Buffer, e: string, cb: () => void): void
        _writev(cs: { chunk: Buffer }[], cb: () => void): void
      }
      const one = s._write.bind(s)
      const many = s._writev.bind(s)
      s._write = (c, e, cb) => (writes.push([c.length]), one(c, e, cb))
      s._writev = (cs, cb) => (writes.push(cs.map((x) => x.chunk.length)), many(cs, cb))
    })
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s: TLSSocket = tlsConnect(
        {
          port: Number(new URL(edge.url).port),
          host: '127.0.0.1',
          ca: certs.caPem,
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
        },
        () => resolve(s),
      )
      s.on('error', reject)
    })
    t.teardown(() => socket.destroy())
    const before = edge.app.edge.raw!.answered

    socket.write(get(seg))
    const [alone] = await readResponses(socket as unknown as Socket, [false])
    t.equal(alone!.headers['x-cache'], 'HIT-MEM')
    t.same(alone!.body, SEGMENT, 'the segment, byte for byte')
    t.ok(
      writes.some((w) => w.length === 1 && w[0] === SEGMENT.length),
      `the body was written alone (writes: ${JSON.stringify(writes)})`,
    )
    t.notOk(
      writes.some((w) => w.length > 1 && w.includes(SEGMENT.length)),
      'the body was not gathered with its head',
    )

    // Pipelined in one write: small and large hits keep their order and bytes.
    socket.write(get(pl) + get(seg) + get(pl) + get(seg))
    const res = await readResponses(socket as unknown as Socket, [false, false, false, false])
    t.same(
      res.map((r) => r.body.length),
      [PLAYLIST.length, SEGMENT.length, PLAYLIST.length, SEGMENT.length],
    )
    t.same(res[0]!.body, PLAYLIST)
    t.same(res[1]!.body, SEGMENT)
    t.same(res[2]!.body, PLAYLIST)
    t.same(res[3]!.body, SEGMENT)
    t.equal(edge.app.edge.raw!.answered, before + 5, 'all five answered by the raw path')
    t.equal(origin.count(seg), 1, 'hits never reach the origin')
  },
)
