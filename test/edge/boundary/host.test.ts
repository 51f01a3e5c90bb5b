/**
 * RFC 9112 §3.2: a request with more than one Host field, or an invalid one, is answered 400,
 * with the raw hit path on and off, whatever its target (a fresh hit, an operator path): one
 * answer, after those of the requests before it, then the connection closes.
 */
import t, { type Test } from 'tap'
import { startEdge } from '../../helpers/edge.js'
import { startUpstream } from '../upstream-server.js'
import { exchange } from './wire.js'

const PL = '/vod/show/v1/index.m3u8'
const BODY = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')

async function setup(t: Test, rawHits: boolean) {
  const origin = await startUpstream(t, {
    [PL]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
  })
  // An idle connection the edge failed to close ends after a second: the case then fails, not hangs.
  const edge = await startEdge(t, { upstream: origin.url, rawHits, keepAliveTimeout: 1000 })
  const port = Number(new URL(edge.url).port)
  const warm = await fetch(edge.url + PL)
  t.equal(warm.headers.get('x-cache'), 'MISS')
  await warm.arrayBuffer()
  await edge.app.edge.flights.settled('show')
  return { origin, edge, port }
}

const req = (hosts: string[], target = PL, method = 'GET') =>
  `${method} ${target} HTTP/1.1\r\n${hosts.map((h) => `${h}\r\n`).join('')}\r\n`
/** The error code of a JSON error body, undefined for any other body. */
function codeOf(body: Buffer | undefined): string | undefined {
  try {
    return (JSON.parse(body?.toString() ?? '') as { error?: { code?: string } }).error?.code
  } catch {
    return undefined
  }
}
const statuses = (r: { responses: { status: number }[] }) => r.responses.map((x) => x.status)

for (const rawHits of [true, false]) {
  const mode = rawHits ? 'raw path on' : 'raw path off'

  t.test(`${mode}: two Host fields or a bad port get one 400, then the close`, async (t) => {
    const { port, origin } = await setup(t, rawHits)
    // The client neither half-closes nor sends more: only the edge's close ends these, and the
    // pipelined request after the bad one is never answered.
    const cases: [string, string][] = [
      ['two Host fields', req(['Host: x', 'Host: y'])],
      ['two Host fields, one value', req(['Host: x', 'host: x'])],
      ['a port above 65535', req(['Host: x:99999'])],
      ['an IPv6 literal with a port above 65535', req(['Host: [::1]:65536'])],
      ['HEAD with two Host fields', req(['Host: x', 'Host: y'], PL, 'HEAD')],
      ['an operator path with two Host fields', req(['Host: x', 'Host: y'], '/healthz')],
    ]
    for (const [what, bad] of cases) {
      const r = await exchange(port, [bad + req(['Host: a'])], { end: false })
      t.same(statuses(r), [400], what)
      t.equal(r.responses[0]?.headers.connection, 'close', `${what}: Connection: close`)
      if (!bad.startsWith('HEAD')) t.equal(codeOf(r.responses[0]?.body), 'CDN_ERR_BAD_REQUEST', what)
    }
    // After hits on the same connection: the hits, then the 400.
    const after = await exchange(port, [req(['Host: a']) + req(['Host: a', 'Host: b']) + req(['Host: a'])], {
      end: false,
    })
    t.same(statuses(after), [200, 400], 'a hit, then the 400, nothing after')
    // The largest port and an IPv6 literal are a Host like any other.
    for (const host of ['Host: x:65535', 'Host: [::1]:8080', 'Host: 127.0.0.1']) {
      const ok = await exchange(port, [req([host])])
      t.same(statuses(ok), [200], host)
    }
    t.equal(origin.count(PL), 1, 'nothing went upstream')
  })
}
