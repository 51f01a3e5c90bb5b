/**
 * What reaches the upstream of a client's request (edge/upstream/forward.ts, docs/http-cache.md):
 * end-to-end fields forwarded, hop-by-hop and Connection-named ones dropped, Via and
 * X-Forwarded-For/-Proto made (a forged chain believed only from a trusted proxy), the deny and
 * add lists, and RFC 9111 §3.5 for requests with Authorization. The upstream is a real server
 * recording every field it receives.
 */
import t from 'tap'
import { edgeConfig } from '../../edge/config/validate.js'
import { settled, startEdge } from '../helpers/edge.js'
import { get } from './http-get.js'
import { metricAt, until } from '../helpers/wait.js'
import { type Answer, startEchoUpstream } from './upstream-server.js'

const FRESH: Answer = { headers: { 'cache-control': 'max-age=60' } }

t.test('end-to-end fields go upstream; hop-by-hop, Connection-named and managed ones do not', async (t) => {
  const up = await startEchoUpstream(t, () => FRESH)
  const edge = await startEdge(t, { upstream: up.url, id: 'edge-a' })
  const r = await get(`${edge.url}/vod/t/a.m4s`, {
    connection: 'keep-alive, x-hop',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'x-hop': 'for the next hop only',
    'x-custom': 'kept',
    'accept-language': 'it',
    'user-agent': 'player/1.0',
    cookie: 'session=secret',
    range: 'bytes=0-3',
    'if-none-match': '"client-etag"',
    'accept-encoding': 'gzip',
    via: '1.1 client-proxy',
  })
  t.equal(r.status, 206, 'the client still gets its range, answered by the edge')
  t.equal(r.body, '/vod')
  const [seen] = up.at('/vod/t/a.m4s')
  t.ok(seen)
  const h = seen!.headers
  t.equal(h['x-custom'], 'kept')
  t.equal(h['accept-language'], 'it')
  t.equal(h['user-agent'], 'player/1.0', "the client's User-Agent")
  t.equal(h.via, '1.1 client-proxy, 1.1 edge-a', 'Via extended with the edge id')
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  t.equal(h['x-forwarded-proto'], 'http')
  t.equal(h.host, new URL(up.url).host, "the upstream's own authority, not the client's Host")
  for (const dropped of ['x-hop', 'keep-alive', 'te', 'cookie', 'range', 'if-none-match'])
    t.equal(h[dropped], undefined, `${dropped} is not forwarded`)
  t.equal(h['accept-encoding'], 'identity', "the edge's own Accept-Encoding, not the client's gzip")
  t.not(h.connection ?? '', /x-hop/, "the client's Connection is not forwarded")
})

t.test('X-Forwarded-For: replaced from an untrusted peer, extended from a trusted proxy', async (t) => {
  const up = await startEchoUpstream(t, () => FRESH)
  const forged = {
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-proto': 'https',
    forwarded: 'for=203.0.113.9',
    'x-real-ip': '203.0.113.9',
  }
  const untrusted = await startEdge(t, { upstream: up.url, trustedProxy: ['10.0.0.0/8'] })
  await get(`${untrusted.url}/vod/t/u.m4s`, forged)
  const u = up.at('/vod/t/u.m4s')[0]!.headers
  t.equal(u['x-forwarded-for'], '127.0.0.1', 'the forged chain is replaced by the peer')
  t.equal(u['x-forwarded-proto'], 'http')
  t.equal(u.forwarded, undefined)
  t.equal(u['x-real-ip'], undefined)

  const trusted = await startEdge(t, { upstream: up.url, trustedProxy: ['127.0.0.0/8', '::1'] })
  await get(`${trusted.url}/vod/t/v.m4s`, forged)
  const v = up.at('/vod/t/v.m4s')[0]!.headers
  t.equal(v['x-forwarded-for'], '203.0.113.9, 127.0.0.1', "a trusted proxy's chain is extended")
  t.equal(v['x-forwarded-proto'], 'https', 'and its scheme believed')
  t.equal(v.forwarded, 'for=203.0.113.9')
})

t.test('the deny list is never forwarded; the add list is set on every upstream request', async (t) => {
  const up = await startEchoUpstream(t, () => FRESH)
  const edge = await startEdge(t, {
    upstream: up.url,
    viaPseudonym: 'shield',
    forwardDeny: ['x-debug'],
    forwardAdd: ['X-Origin-Auth: s3cret token'],
  })
  await get(`${edge.url}/vod/t/a.m4s`, {
    'x-debug': '1',
    'x-origin-auth': 'forged by the client',
    cookie: 'forwarded=yes',
  })
  const h = up.at('/vod/t/a.m4s')[0]!.headers
  t.equal(h['x-debug'], undefined)
  t.equal(h['x-origin-auth'], 's3cret token', "the operator's value, not the client's")
  t.equal(h.cookie, 'forwarded=yes', 'a deny list without cookie forwards it')
  t.equal(h.via, '1.1 shield', 'the pseudonym, not the id')

  // A request the edge makes for itself (prefill): Via and the add list, no client fields.
  await edge.app.edge.fill('/vod/t/prefilled.m4s')
  const p = up.at('/vod/t/prefilled.m4s')[0]!.headers
  t.equal(p.via, '1.1 shield')
  t.equal(p['x-origin-auth'], 's3cret token')
  t.equal(p['x-forwarded-for'], undefined, 'no client, no address')
  t.equal(p['user-agent'], 'cdn-edge')
})

t.test('a relayed method gets the same treatment, with its own conditionals and body', async (t) => {
  const up = await startEchoUpstream(t, () => ({ status: 201 }))
  const edge = await startEdge(t, { upstream: up.url, passThrough: ['POST'], publicPath: ['/beacon'] })
  const r = await get(
    `${edge.url}/beacon`,
    {
      connection: 'x-hop',
      'x-hop': '1',
      'x-forwarded-for': '203.0.113.9',
      'if-match': '"v1"',
      'content-type': 'text/plain',
    },
    'POST',
    'beacon',
  )
  t.equal(r.status, 201)
  const h = up.at('/beacon')[0]!.headers
  t.equal(h['x-hop'], undefined)
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  t.equal(h['if-match'], '"v1"', "a relay forwards the client's conditionals")
  t.equal(h['content-length'], '6')
  t.match(h.via, /^1\.1 edge$/)
})

t.test('Authorization (RFC 9111 §3.5): stored only when the answer allows a shared cache to', async (t) => {
  const up = await startEchoUpstream(t, (r) => {
    if (r.url.endsWith('/plain.m4s')) return { headers: { 'cache-control': 'max-age=60' } }
    if (r.url.endsWith('/public.m4s')) return { headers: { 'cache-control': 'public, max-age=60' } }
    if (r.url.endsWith('/shared.m4s')) return { headers: { 'cache-control': 's-maxage=60' } }
    return { headers: { 'cache-control': 'max-age=60, must-revalidate' } }
  })
  const edge = await startEdge(t, { upstream: up.url })
  const auth = { authorization: 'Bearer user-1' }
  const cache = async (path: string, headers: Record<string, string> = {}) => {
    const r = await get(`${edge.url}${path}`, headers)
    await settled(edge)
    return r.headers['x-cache']
  }
  t.equal(await cache('/vod/t/plain.m4s', auth), 'MISS')
  t.equal(
    up.at('/vod/t/plain.m4s')[0]!.headers.authorization,
    'Bearer user-1',
    'the credentials went upstream',
  )
  t.equal(await cache('/vod/t/plain.m4s', auth), 'MISS', 'not stored: max-age alone does not allow it')
  t.equal(await cache('/vod/t/plain.m4s'), 'MISS', 'nor is it served to another client')
  t.equal(await cache('/vod/t/plain.m4s'), 'HIT-MEM', 'the answer to a request without credentials is stored')
  t.equal(await cache('/vod/t/plain.m4s', auth), 'HIT-MEM', 'and may serve one with credentials')
  t.equal(up.at('/vod/t/plain.m4s').length, 3)
  for (const p of ['/vod/t/public.m4s', '/vod/t/shared.m4s', '/vod/t/revalidate.m4s']) {
    t.equal(await cache(p, auth), 'MISS')
    t.equal(await cache(p), 'HIT-MEM', `${p}: stored, the answer allows it`)
  }
})

t.test('a request with credentials never shares a fetch with one without, either way', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const up = await startEchoUpstream(t, () => ({ ...FRESH, gate }))
  const edge = await startEdge(t, { upstream: up.url })
  const anonymousFirst = get(`${edge.url}/vod/t/a.m4s`)
  await until(() => up.at('/vod/t/a.m4s').length === 1)
  const withAuth = get(`${edge.url}/vod/t/a.m4s`, { authorization: 'Bearer user-1' })
  await until(() => up.at('/vod/t/a.m4s').length === 2)
  const authFirst = get(`${edge.url}/vod/t/b.m4s`, { authorization: 'Bearer user-2' })
  await until(() => up.at('/vod/t/b.m4s').length === 1)
  const anonymous = get(`${edge.url}/vod/t/b.m4s`)
  await until(() => up.at('/vod/t/b.m4s').length === 2)
  release()
  const answers = await Promise.all([anonymousFirst, withAuth, authFirst, anonymous])
  t.same(
    answers.map((a) => a.headers['x-cache']),
    ['MISS', 'MISS', 'MISS', 'MISS'],
    'four fetches, none coalesced',
  )
  t.same(
    up.received.map((r) => r.headers.authorization),
    [undefined, 'Bearer user-1', 'Bearer user-2', undefined],
  )
  // Without credentials, clients still coalesce: the first one's fields are the ones sent.
  let open: () => void = () => undefined
  const held = new Promise<void>((resolve) => (open = resolve))
  const up2 = await startEchoUpstream(t, () => ({ ...FRESH, gate: held }))
  const edge2 = await startEdge(t, { upstream: up2.url })
  const first = get(`${edge2.url}/vod/t/c.m4s`, { 'x-client': 'first' })
  await until(() => up2.received.length === 1)
  const second = get(`${edge2.url}/vod/t/c.m4s`, { 'x-client': 'second' })
  await until(async () => (await metricAt(`${edge2.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) === 1)
  open()
  t.same([(await first).headers['x-cache'], (await second).headers['x-cache']], ['MISS', 'COALESCED'])
  t.same(
    up2.received.map((r) => r.headers['x-client']),
    ['first'],
  )
})

t.test(
  'an answer varies on the fields the edge forwards, never on those it does not (Accept-Encoding)',
  async (t) => {
    const up = await startEchoUpstream(t, (r) => ({
      headers: {
        'cache-control': 'max-age=60',
        vary: r.url.endsWith('/lang.m4s') ? 'Accept-Language' : 'Accept-Encoding',
      },
    }))
    const edge = await startEdge(t, { upstream: up.url })
    for (let i = 0; i < 2; i++)
      await get(`${edge.url}/vod/t/lang.m4s`, { 'accept-language': i ? 'en' : 'it' })
    await settled(edge)
    t.equal(up.at('/vod/t/lang.m4s').length, 2, 'Vary: Accept-Language on a forwarded field: a variant each')
    for (let i = 0; i < 2; i++) await get(`${edge.url}/vod/t/other/lang.m4s`)
    await settled(edge)
    t.equal(up.at('/vod/t/other/lang.m4s').length, 1, 'clients without the field share their variant')
    for (let i = 0; i < 2; i++) await get(`${edge.url}/vod/t/enc.m4s`, { 'accept-encoding': 'gzip' })
    await settled(edge)
    t.equal(
      up.at('/vod/t/enc.m4s').length,
      1,
      'Accept-Encoding is not forwarded: the identity answer serves all',
    )
  },
)

t.test('forwarding options are checked at start, never echoing an added value', async (t) => {
  const bad = (over: Record<string, unknown>) => {
    try {
      edgeConfig({ upstream: ['http://127.0.0.1:9'], ...over })
      return ''
    } catch (err) {
      return (err as Error).message
    }
  }
  t.match(bad({ trustedProxy: ['10.0.0.0/33'] }), /--trusted-proxy: .*prefix length/)
  t.match(bad({ trustedProxy: ['proxy.example'] }), /--trusted-proxy: .*not an address/)
  t.match(bad({ viaPseudonym: '10.1.2.3' }), /--via-pseudonym/)
  t.match(bad({ id: 'edge one' }), /--via-pseudonym: required/)
  t.match(bad({ forwardDeny: ['bad name'] }), /--forward-deny/)
  const secret = bad({ forwardAdd: ['X-Key secret-value'] })
  t.match(secret, /--forward-add: expected NAME: VALUE/)
  t.notMatch(secret, /secret-value/, 'the value is not in the message')
  t.match(bad({ forwardAdd: ['Range: bytes=0-'] }), /range is managed by the edge/)
  t.equal(bad({ trustedProxy: ['192.0.2.1', '2001:db8::/32'], forwardAdd: ['X-Key: a b'] }), '')
})
