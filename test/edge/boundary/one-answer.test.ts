/**
 * Every request gets exactly one answer, at once, with the raw hit path on and off: a head
 * the raw path is not sure of goes to node's parser at once (400, never held until a
 * timeout), and a request carrying a body is answered once node has read that body, so a
 * malformed one gets node's 400 alone, never a hit and then a 400.
 */
import t, { type Test } from 'tap'
import { startEdge } from '../../helpers/edge.js'
import { startUpstream } from '../upstream-server.js'
import type { Socket } from 'node:net'
import { until } from '../../helpers/wait.js'
import { exchange, open, parseResponses } from './wire.js'

const PL = '/vod/show/v1/index.m3u8'
const COLD = '/vod/show/v1/cold.m3u8'
const SEG = '/vod/show/v1/seg-00001.m4s'
const BODY = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')
const SEGMENT = Buffer.alloc(2 * 1024 * 1024, 7)

async function setup(t: Test, rawHits: boolean) {
  const origin = await startUpstream(t, {
    [PL]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
    [COLD]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
    [SEG]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(SEGMENT),
  })
  const edge = await startEdge(t, { upstream: origin.url, rawHits })
  const port = Number(new URL(edge.url).port)
  const warm = await fetch(edge.url + PL)
  t.equal(warm.headers.get('x-cache'), 'MISS')
  await warm.arrayBuffer()
  await edge.app.edge.flights.settled('show')
  return { origin, edge, port }
}

const head = (target: string, extra = '', eol = '\r\n') =>
  `GET ${target} HTTP/1.1${eol}Host: a${eol}${extra}${eol}`
const statuses = (r: { responses: { status: number }[] }) => r.responses.map((x) => x.status)

for (const rawHits of [true, false]) {
  const mode = rawHits ? 'raw path on' : 'raw path off'

  t.test(`${mode}: a head with bare LF or lone CR gets one 400 at once`, async (t) => {
    const { port, edge } = await setup(t, rawHits)
    const handedBefore = edge.app.edge.raw?.handedOver ?? 0
    // The client neither half-closes nor sends more: only the edge's own answer ends these.
    const lf = await exchange(port, [head(PL, '', '\n')], { end: false })
    t.same(statuses(lf), [400], 'bare LF')
    const cr = await exchange(port, [head(PL, '', '\r')], { end: false })
    t.same(statuses(cr), [400], 'lone CR')
    // A partial head that can no longer be a plain request is not waited on either.
    const partial = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\nX-A: 1`], { end: false })
    t.same(statuses(partial), [400], 'bare LF in a partial head')
    const mixed = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n\n`], { end: false })
    t.same(statuses(mixed), [400], 'CRLF then a bare LF')
    if (rawHits) t.equal(edge.app.edge.raw!.handedOver - handedBefore, 4, 'each went to node at once')
    // After a hit answered raw, the same: the hit, then the 400.
    const after = await exchange(port, [head(PL) + head(PL, '', '\n')], { end: false })
    t.same(statuses(after), [200, 400], 'a hit, then the bad head')
  })

  t.test(`${mode}: a bad request after pipelined ones is answered after them, in order`, async (t) => {
    const { port } = await setup(t, rawHits)
    const bad = `GET ${PL} http/1.1\r\nHost: a\r\n\r\n`
    const hits = await exchange(port, [head(PL) + head(PL) + bad])
    t.same(statuses(hits), [200, 200, 400], 'two hits, then the 400')
    t.same(hits.responses[1]!.body, BODY, 'the second hit whole, not overtaken by the 400')
    // An answer that takes a trip upstream first still comes before the 400.
    const miss = await exchange(port, [head('/vod/show/v1/none.m3u8') + head(PL) + bad])
    t.same(statuses(miss), [404, 200, 400], 'a miss, a hit, then the 400')
    t.equal(miss.responses[2]!.headers.connection, 'close', 'the 400 closes the connection')
    t.match(JSON.parse(miss.responses[2]!.body.toString()), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
  })

  t.test(`${mode}: answers queued before a bad request all go out whole, then its 400`, async (t) => {
    const { port, edge } = await setup(t, rawHits)
    await (await fetch(edge.url + SEG)).arrayBuffer()
    await edge.app.edge.flights.settled('show')
    // The edge's side of the connection, to see its answers queue up while the client waits.
    const accepted = new Promise<Socket>((resolve) => edge.app.server.once('connection', resolve))
    const s = await open(port)
    t.teardown(() => s.destroy())
    s.pause()
    const bad = `GET ${PL} HTTP/1.1\r\nHost: a\r\nContent-Length: zz\r\n\r\n`
    s.write(head(SEG).repeat(4) + bad)
    const theirs = await accepted
    await until(() => theirs.writableLength > SEGMENT.length)
    const chunks: Buffer[] = []
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
    // The client closes once it has its five answers (the edge waits for that before closing).
    s.on('data', (c: Buffer) => {
      chunks.push(c)
      if (parseResponses(Buffer.concat(chunks)).responses.length === 5) s.end()
    })
    s.resume()
    await closed
    const got = parseResponses(Buffer.concat(chunks))
    t.same(statuses(got), [200, 200, 200, 200, 400], 'four answers, then the 400')
    t.ok(
      got.responses.slice(0, 4).every((r) => r.body.equals(SEGMENT)),
      'each answer whole',
    )
    t.equal(got.rest.length, 0, 'nothing cut')
  })

  t.test(`${mode}: a request pipelined after one that asked to close gets no answer`, async (t) => {
    const { port, origin } = await setup(t, rawHits)
    // RFC 9112 §9.6: the answer to the request with `close`, then the close; what follows it is
    // neither processed nor answered (it is no malformed request: it was never to be read).
    const close = await exchange(port, [head(PL, 'Connection: close\r\n') + head(COLD)], { end: false })
    t.same(statuses(close), [200], 'one answer, then the close')
    t.equal(close.responses[0]!.headers.connection, 'close')
    t.equal(close.rest.length, 0, 'nothing after it')
    const old = await exchange(port, [`GET ${PL} HTTP/1.0\r\n\r\n` + head(COLD)], { end: false })
    t.same(statuses(old), [200], 'HTTP/1.0 without keep-alive: the same')
    t.equal(old.rest.length, 0, 'nothing after the HTTP/1.0 answer')
    t.equal(origin.count(COLD), 0, 'the request after it never reaches the upstream')
  })

  t.test(`${mode}: a client that half-closes gets every answer due (mid-head: node's 400)`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n`])
    t.same(statuses(r), [400])
    const idle = await exchange(port, [head(PL)])
    t.same(statuses(idle), [200], 'a whole request, then the half-close: its answer, then the close')
    // A miss (the answer waits on the upstream) and two hits behind it, then the half-close, as
    // `printf ... | nc -N` sends them: every answer, in order, then the close.
    const miss = await exchange(port, [head(COLD) + head(PL) + head(COLD)])
    t.same(statuses(miss), [200, 200, 200], 'answers that were not ready at the half-close still come')
  })

  t.test(`${mode}: a memory hit carrying a malformed body gets node's 400 alone`, async (t) => {
    const { port, origin } = await setup(t, rawHits)
    const cases: Record<string, string> = {
      'bad chunk': head(PL, 'Transfer-Encoding: chunked\r\n') + 'zz\r\nab\r\n0\r\n\r\n',
      'unknown coding': head(PL, 'Transfer-Encoding: xchunked\r\n') + '2\r\nab\r\n0\r\n\r\n',
      'LF-only chunk terminator': head(PL, 'Transfer-Encoding: chunked\r\n') + '2\r\nab\n0\r\n\r\n',
      'LF-only last chunk': head(PL, 'Transfer-Encoding: chunked\r\n') + '0\n\n',
      'both lengths': head(PL, 'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n') + '0\r\n\r\n',
      'disk or miss path too': head(COLD, 'Transfer-Encoding: chunked\r\n') + 'zz\r\n',
    }
    for (const [name, bytes] of Object.entries(cases)) {
      const r = await exchange(port, [bytes])
      t.same(statuses(r), [400], name)
      t.equal(r.rest.length, 0, `${name}: nothing after the one answer`)
    }
    t.equal(origin.count(COLD), 0, 'a malformed request never reaches the upstream')
  })

  t.test(`${mode}: a well-formed body is read first, then the request is answered once`, async (t) => {
    const { port } = await setup(t, rawHits)
    const close = 'Connection: close\r\n'
    const cl = await exchange(port, [head(PL, 'Content-Length: 5\r\n') + 'hello' + head(PL, close)])
    t.same(statuses(cl), [200, 200], 'Content-Length body, then the next request')
    t.equal(cl.responses[0]!.headers['x-cache'], 'HIT-MEM')
    t.same(cl.responses[0]!.body, BODY)
    const chunked = await exchange(port, [
      head(PL, 'Transfer-Encoding: chunked\r\n') + '5\r\nhello\r\n0\r\n\r\n' + head(PL, close),
    ])
    t.same(statuses(chunked), [200, 200], 'chunked body, then the next request')
    // The body split from its head: the answer waits for it.
    const split = await exchange(port, [head(PL, 'Content-Length: 5\r\n'), 'hel', 'lo', head(PL, close)])
    t.same(statuses(split), [200, 200], 'a body arriving after its head')
    const post = await exchange(port, [
      `POST ${PL} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    ])
    t.same(statuses(post), [400], 'a 405 method with a malformed body: one 400')
    const post2 = await exchange(port, [
      `POST ${PL} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi` + head(PL, close),
    ])
    t.same(statuses(post2), [405, 200], 'a 405 method with a body: 405 after it, then the next')
  })
}
