import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { type SigningKey, signedPrefix } from '../../src/http/signing.js'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, rawStatus, startUpstream } from './upstream-server.js'

const SEG = '/vod/a/v1/720p/seg-00001.m4s'
const UPSTREAM_DATE = 'Thu, 01 Jan 2026 00:00:00 GMT'
const TOKEN = 'secret-token-1'

async function setup(t: Test, extra: Record<string, unknown> = {}) {
  const seg = pattern(300_000, 1)
  const up = await startUpstream(t, {
    [SEG]: (_req, reply) =>
      reply
        .header('cache-control', IMMUTABLE)
        .header('etag', '"seg1"')
        .header('last-modified', UPSTREAM_DATE)
        .header('content-type', 'video/iso.segment')
        .header('x-secret-hop', 'drop me')
        .header('connection', 'keep-alive, x-secret-hop')
        .send(seg),
    '/vod/b/master.m3u8': (_req, reply) =>
      reply
        .header('cache-control', 'public, max-age=60')
        .header('content-type', 'application/vnd.apple.mpegurl')
        .send('#EXTM3U\n'),
    '/vod/p/plain': (_req, reply) => reply.header('cache-control', 'max-age=60').send('plain'),
    '/vod/p/private': (_req, reply) => reply.header('cache-control', 'private, max-age=60').send('p'),
  })
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN, ...extra })
  return { up, edge, seg }
}

t.test('miss then memory hit: same bytes, Date kept, Age sent, hop-by-hop dropped', async (t) => {
  const { up, edge, seg } = await setup(t)
  const r1 = await fetch(edge.url + SEG)
  t.equal(r1.status, 200)
  t.equal(r1.headers.get('x-cache'), 'MISS')
  t.ok(Buffer.from(await r1.arrayBuffer()).equals(seg))
  const r2 = await fetch(edge.url + SEG)
  t.equal(r2.headers.get('x-cache'), 'HIT-MEM')
  t.ok(Buffer.from(await r2.arrayBuffer()).equals(seg))
  t.ok(r2.headers.get('date'), 'Date kept')
  t.equal(r2.headers.get('date'), r1.headers.get('date'), 'the same upstream Date')
  t.match(r2.headers.get('age'), /^\d+$/)
  t.equal(r2.headers.get('x-secret-hop'), null, 'header named in Connection dropped')
  t.equal(r2.headers.get('content-type'), 'video/iso.segment')
  t.equal(up.count(SEG), 1)
  const priv = await fetch(`${edge.url}/vod/p/private`)
  await priv.arrayBuffer()
  await fetch(`${edge.url}/vod/p/private`).then((r) => r.arrayBuffer())
  t.equal(up.count('/vod/p/private'), 2, 'private is never stored')
})

t.test('ranges, conditionals and HEAD are answered from the cache and on a miss', async (t) => {
  const { up, edge, seg } = await setup(t)
  const range = await fetch(edge.url + SEG, { headers: { range: 'bytes=100-199' } })
  t.equal(range.status, 206, 'range on a miss')
  t.equal(range.headers.get('content-range'), `bytes 100-199/${seg.length}`)
  t.ok(Buffer.from(await range.arrayBuffer()).equals(seg.subarray(100, 200)))
  const suffix = await fetch(edge.url + SEG, { headers: { range: 'bytes=-10' } })
  t.equal(suffix.status, 206)
  t.ok(Buffer.from(await suffix.arrayBuffer()).equals(seg.subarray(seg.length - 10)))
  const bad = await fetch(edge.url + SEG, { headers: { range: `bytes=${seg.length}-` } })
  t.equal(bad.status, 416)
  t.equal(bad.headers.get('content-range'), `bytes */${seg.length}`)
  await bad.arrayBuffer()
  const junk = await fetch(edge.url + SEG, { headers: { range: 'bytes=zz' } })
  t.equal(junk.status, 200, 'a malformed Range is ignored')
  await junk.arrayBuffer()
  const inm = await fetch(edge.url + SEG, { headers: { 'if-none-match': '"seg1"' } })
  t.equal(inm.status, 304)
  const ims = await fetch(edge.url + SEG, { headers: { 'if-modified-since': UPSTREAM_DATE } })
  t.equal(ims.status, 304)
  const ifRange = await fetch(edge.url + SEG, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } })
  t.equal(ifRange.status, 200, 'If-Range mismatch: whole body')
  await ifRange.arrayBuffer()
  const head = await fetch(edge.url + SEG, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), String(seg.length))
  const headMiss = await fetch(`${edge.url}/vod/p/plain`, { method: 'HEAD' })
  t.equal(headMiss.status, 200)
  t.equal(headMiss.headers.get('x-cache'), 'MISS')
  t.equal(await fetch(`${edge.url}/vod/p/plain`).then((r) => r.text()), 'plain')
  t.equal(up.count(SEG), 1)
  t.equal(up.count('/vod/p/plain'), 1, 'HEAD miss filled the cache')
})

t.test('If-Match and If-Unmodified-Since: 412 JSON on a miss and on a hit, else served', async (t) => {
  const { up, edge, seg } = await setup(t)
  const failed = async (headers: Record<string, string>, cache: string, what: string) => {
    const r = await fetch(edge.url + SEG, { headers })
    t.equal(r.status, 412, what)
    t.equal(r.headers.get('x-cache'), cache, `${what}: X-Cache`)
    t.equal(((await r.json()) as { error: { code: string } }).error.code, 'CDN_ERR_PRECONDITION_FAILED')
  }
  await failed({ 'if-match': '"other"' }, 'MISS', 'If-Match mismatch on a miss')
  await failed({ 'if-match': '"other"' }, 'HIT-MEM', 'If-Match mismatch on a hit')
  await failed({ 'if-unmodified-since': 'Wed, 31 Dec 2025 00:00:00 GMT' }, 'HIT-MEM', 'modified since')
  await failed(
    { 'if-match': '"other"', 'if-none-match': '"seg1"' },
    'HIT-MEM',
    'If-Match before If-None-Match',
  )
  const head = await fetch(edge.url + SEG, { method: 'HEAD', headers: { 'if-match': '"other"' } })
  t.equal(head.status, 412, 'HEAD too')
  t.equal((await head.arrayBuffer()).byteLength, 0, 'HEAD: no body')
  const ok = await fetch(edge.url + SEG, { headers: { 'if-match': '"seg1"', range: 'bytes=0-9' } })
  t.equal(ok.status, 206, 'If-Match holds: the range is served')
  t.ok(Buffer.from(await ok.arrayBuffer()).equals(seg.subarray(0, 10)))
  const since = await fetch(edge.url + SEG, { headers: { 'if-unmodified-since': UPSTREAM_DATE } })
  t.equal(since.status, 200, 'not modified since: served')
  await since.arrayBuffer()
  t.equal(up.count(SEG), 1, 'preconditions never reach the upstream again')
})

t.test('a date condition that is not an HTTP-date is ignored: the object is served', async (t) => {
  const { up, edge, seg } = await setup(t)
  await fetch(edge.url + SEG).then((r) => r.arrayBuffer())
  // Date.parse reads each as a date, after the object's Last-Modified (IMS) or before it (IUS).
  for (const [name, value] of [
    ['if-modified-since', '9999'],
    ['if-modified-since', 'garbage 2030'],
    ['if-unmodified-since', '2000'],
  ] as const) {
    const r = await fetch(edge.url + SEG, { headers: { [name]: value } })
    t.equal(r.status, 200, `${name}: ${value}`)
    t.equal(r.headers.get('x-cache'), 'HIT-MEM')
    t.equal((await r.arrayBuffer()).byteLength, seg.length)
  }
  const ims = await fetch(edge.url + SEG, { headers: { 'if-modified-since': 'Thu Jan  1 00:00:00 2026' } })
  t.equal(ims.status, 304, 'an asctime date still counts')
  t.equal(up.count(SEG), 1)
})

t.test('200 concurrent clients on one cold object: one upstream request, same bytes', async (t) => {
  const big = pattern(1_000_000, 2)
  let edgeUrl = ''
  const up = await startUpstream(t, {
    '/vod/s/v1/720p/seg-00001.m4s': async (_req, reply) => {
      // The upstream answers once the 199 other clients have joined the one fetch.
      await until(
        async () => (await metricAt(`${edgeUrl}/metrics`, 'cdn_edge_coalesced_waiters_total')) >= 199,
      )
      return reply.header('cache-control', IMMUTABLE).send(big)
    },
  })
  const edge = await startEdge(t, { upstream: up.url })
  edgeUrl = edge.url
  const bodies = await Promise.all(
    Array.from({ length: 200 }, async () => {
      const r = await fetch(`${edge.url}/vod/s/v1/720p/seg-00001.m4s`)
      return { cache: r.headers.get('x-cache'), body: Buffer.from(await r.arrayBuffer()) }
    }),
  )
  t.equal(up.count('/vod/s/v1/720p/seg-00001.m4s'), 1, 'exactly one upstream request')
  t.ok(
    bodies.every((b) => b.body.equals(big)),
    'every client got the same bytes',
  )
  t.equal(bodies.filter((b) => b.cache === 'MISS').length, 1)
  t.ok(
    (await metricAt(`${edge.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) >= 199,
    'the other 199 counted as coalesced waiters',
  )
})

t.test('methods other than GET/HEAD get 405 JSON', async (t) => {
  const { edge } = await setup(t)
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await fetch(edge.url + SEG, { method })
    t.equal(r.status, 405, method)
    t.equal(r.headers.get('allow'), 'GET, HEAD')
    t.equal(((await r.json()) as { error: { code: string } }).error.code, 'CDN_ERR_METHOD_NOT_ALLOWED')
  }
})

t.test(
  'a path under /admin no operator route takes is 404, whatever the method; content keeps its 405',
  async (t) => {
    const { edge } = await setup(t)
    const auth = { authorization: `Bearer ${TOKEN}` }
    for (const [method, path] of [
      ['DELETE', '/admin/cache/feature'],
      ['POST', '/admin/cache/vod/feature'],
      ['PUT', '/admin/nothing'],
    ] as const) {
      const r = await fetch(edge.url + path, { method, headers: auth })
      t.equal(r.status, 404, `${method} ${path}`)
      t.equal(r.headers.get('allow'), null, `${method} ${path}: no Allow`)
      t.same(await r.json(), {
        error: { code: 'CDN_ERR_NOT_FOUND', message: `no route for ${method} ${path}` },
      })
    }
    const purge = await fetch(`${edge.url}/admin/cache/vod/feature`, { method: 'DELETE', headers: auth })
    t.equal(purge.status, 200, 'the purge route itself')
    await purge.arrayBuffer()
    const content = await fetch(`${edge.url}/vod/feature/master.m3u8`, { method: 'DELETE', headers: auth })
    t.equal(content.status, 405, 'a content path: 405')
    t.equal(content.headers.get('allow'), 'GET, HEAD')
    t.match(await content.json(), { error: { code: 'CDN_ERR_METHOD_NOT_ALLOWED' } })
  },
)

t.test("a body fastify refuses carries our code and message, never fastify's code", async (t) => {
  const { edge } = await setup(t)
  const post = async (body: string, contentType: string) => {
    const r = await fetch(`${edge.url}/admin/prefill`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${TOKEN}` },
      body,
    })
    return { status: r.status, body: (await r.json()) as { error: Record<string, unknown> } }
  }
  const xml = await post('<titles/>', 'text/xml')
  t.equal(xml.status, 415)
  t.same(xml.body, {
    error: {
      code: 'CDN_ERR_UNSUPPORTED_MEDIA_TYPE',
      message: 'unsupported media type "text/xml": bodies here are application/json',
    },
  })
  const big = await post(JSON.stringify({ titles: ['a'], pad: 'x'.repeat(1_100_000) }), 'application/json')
  t.equal(big.status, 413)
  t.same(big.body, { error: { code: 'CDN_ERR_BODY_TOO_LARGE', message: 'request body too large' } })
})

t.test('CORS: media and errors readable from other origins, preflight for Range answered', async (t) => {
  const { edge } = await setup(t)
  const hit = await fetch(edge.url + SEG, { headers: { origin: 'http://player.test' } })
  await hit.arrayBuffer()
  t.equal(hit.headers.get('access-control-allow-origin'), '*')
  t.match(hit.headers.get('access-control-expose-headers'), /X-Cache/)
  const missing = await fetch(`${edge.url}/vod/s/v1/720p/seg-09999.m4s`)
  await missing.arrayBuffer()
  t.equal(missing.headers.get('access-control-allow-origin'), '*', 'an error is readable too')
  const undecodable = await fetch(`${edge.url}/vod/%ff/master.m3u8`)
  t.equal(undecodable.status, 400, 'a path fastify refuses: 400')
  t.equal(undecodable.headers.get('access-control-allow-origin'), '*', 'readable too')
  t.equal(undecodable.headers.get('cache-control'), 'no-store')
  t.match(await undecodable.json(), { error: { code: 'CDN_ERR_BAD_PATH' } }, 'in the JSON error body')
  const pre = await fetch(edge.url + SEG, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://player.test',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'range',
    },
  })
  t.equal(pre.status, 204)
  t.match(pre.headers.get('access-control-allow-headers'), /Range/)
  t.equal(pre.headers.get('access-control-allow-methods'), 'GET, HEAD')
})

t.test(
  'CORS: a player sending CMCD in headers (hls.js useHeaders, dash.js header mode) passes the preflight',
  async (t) => {
    const { edge } = await setup(t)
    // What a browser asks before a cross-origin GET carrying CMCD headers (CTA-5004), and the
    // check it makes on the answer (Fetch, CORS-preflight fetch): every requested header allowed.
    const requested = ['cmcd-object', 'cmcd-request', 'cmcd-session', 'cmcd-status', 'range']
    const pre = await fetch(edge.url + SEG, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://player.test',
        'access-control-request-method': 'GET',
        'access-control-request-headers': requested.join(','),
      },
    })
    t.equal(pre.status, 204)
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
    t.same(
      requested.filter((h) => !allowed.includes(h)),
      [],
      'every header the player sends is allowed, or the browser blocks the request',
    )
  },
)

t.test('malformed targets and headers: 4xx, never 5xx, never a crash', async (t) => {
  const { up, edge } = await setup(t)
  const cases: [string, string][] = [
    ['absolute-form', 'GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n'],
    ['absolute-form to upstream', `GET ${up.url}/plain HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['authority-form', 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n'],
    ['traversal', 'GET /vod/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['encoded traversal', 'GET /vod/a/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['encoded NUL', 'GET /vod/a%00/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['odd Host', 'GET /plain HTTP/1.1\r\nHost: evil.example/x@y\r\n\r\n'],
    ['huge header', `GET /plain HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`],
    ['malformed header', 'GET /plain HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'],
    ['bad percent-encoding', 'GET /vod/%zz HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['admin without auth', 'GET /admin/cache HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['unknown admin path', 'GET /admin/../plain HTTP/1.1\r\nHost: a\r\n\r\n'],
  ]
  for (const [name, req] of cases) {
    const status = await rawStatus(edge.url, req)
    t.ok(status >= 400 && status < 500, `${name}: ${status}`)
  }
  t.equal((await fetch(`${edge.url}/healthz`)).status, 200, 'still alive')
  t.equal(up.count('/etc/passwd'), 0)
})

t.test('purge and the operator API need the token and reach both tiers', async (t) => {
  const { up, edge } = await setup(t)
  await fetch(edge.url + SEG).then((r) => r.arrayBuffer())
  await fetch(`${edge.url}/vod/b/master.m3u8`).then((r) => r.arrayBuffer())
  // The disk write finishes just after the last byte is sent.
  await settled(edge)
  t.equal(edge.app.edge.store.stats().disk!.objects, 2, 'both objects on disk')
  const none = await fetch(`${edge.url}/admin/cache`)
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="cdn-edge"', 'a 401 carries its challenge')
  const wrong = await fetch(`${edge.url}/admin/cache`, { headers: { authorization: 'Bearer wrong-token' } })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="cdn-edge", error="invalid_token"')
  const auth = { authorization: `Bearer ${TOKEN}` }
  const summary = (await fetch(`${edge.url}/admin/cache`, { headers: auth }).then((r) => r.json())) as {
    titles: { title: string }[]
    memory: { objects: number }
    disk: { objects: number }
  }
  t.same(
    summary.titles.map((x) => x.title),
    ['a', 'b'],
  )
  t.equal(summary.disk.objects, 2)
  const purge = await fetch(`${edge.url}/admin/cache/vod/a`, { method: 'DELETE', headers: auth })
  t.same(await purge.json(), { title: 'a', purged: 1 })
  t.equal(
    (await fetch(`${edge.url}/admin/cache/vod/NOT_A_TITLE`, { method: 'DELETE', headers: auth })).status,
    400,
  )
  const again = await fetch(edge.url + SEG)
  t.equal(again.headers.get('x-cache'), 'MISS', 'purged from memory and disk')
  await again.arrayBuffer()
  t.equal(up.count(SEG), 2)
  const b = await fetch(`${edge.url}/vod/b/master.m3u8`)
  t.equal(b.headers.get('x-cache'), 'HIT-MEM', 'other titles untouched')
})

t.test('/status fills the steering contract; /metrics has the families', async (t) => {
  const { edge } = await setup(t, { id: 'edge-x', capacity: 1e9 })
  await fetch(edge.url + SEG).then((r) => r.arrayBuffer())
  await fetch(edge.url + SEG).then((r) => r.arrayBuffer())
  const s = (await fetch(`${edge.url}/status`).then((r) => r.json())) as Record<string, unknown>
  for (const k of [
    'id',
    'version',
    'uptimeSec',
    'activeConnections',
    'requestsPerSec',
    'egressBytesPerSec',
    'capacityBytesPerSec',
    'tiers',
    'hitRatio',
    'hits',
    'bytesServed',
    'titles',
    'titlesComplete',
  ])
    t.ok(k in s, k)
  t.equal(s.id, 'edge-x')
  t.equal(s.hitRatio, 0.5)
  t.same(s.titles, ['a'])
  t.ok((s.egressBytesPerSec as number) > 0)
  const m = await fetch(`${edge.url}/metrics`).then((r) => r.text())
  for (const name of [
    'cdn_edge_requests_total{result="hit-mem",tier="memory"} 1',
    'cdn_edge_bytes_served_total',
    'cdn_edge_upstream_fetches_total{result="ok"} 1',
    'cdn_edge_upstream_fetch_seconds_bucket',
    'cdn_edge_evictions_total',
    'cdn_edge_cache_bytes{tier="disk"}',
  ])
    t.ok(m.includes(name), name)
})

t.test('signed paths: 403 without a valid token, the token left out of the key', async (t) => {
  const k1: SigningKey = { id: 'k1', secret: 'signing-key-0123456789' }
  const k2: SigningKey = { id: 'k2', secret: 'signing-key-9876543210' }
  const { up, edge } = await setup(t, {
    signingKey: ['k2:signing-key-9876543210', 'k1:signing-key-0123456789'],
  })
  t.equal((await fetch(edge.url + SEG)).status, 403)
  const exp = Math.floor(Date.now() / 1000) + 600
  const r1 = await fetch(`${edge.url}${signedPrefix(k1, SEG, { expiry: exp })}${SEG}`)
  t.equal(r1.status, 200, 'an older key still listed')
  await r1.arrayBuffer()
  const r2 = await fetch(`${edge.url}${signedPrefix(k2, SEG, { expiry: exp + 1 })}${SEG}`)
  t.equal(r2.headers.get('x-cache'), 'HIT-MEM', 'another token, same cache entry')
  await r2.arrayBuffer()
  t.equal(
    (await fetch(`${edge.url}${signedPrefix(k1, '/vod/b/master.m3u8', { expiry: exp })}${SEG}`)).status,
    403,
    'token for another title',
  )
  const wrong: SigningKey = { id: 'k1', secret: 'wrong-secret-0123456789' }
  t.equal(
    (await fetch(`${edge.url}${signedPrefix(wrong, SEG, { expiry: exp })}${SEG}`)).status,
    403,
    'forged',
  )
  const bound = signedPrefix(k1, SEG, { expiry: exp, net: '198.51.100.0/24' })
  t.equal((await fetch(`${edge.url}${bound}${SEG}`)).status, 403, 'bound to another network')
  const here = signedPrefix(k1, SEG, { expiry: exp, net: '127.0.0.0/8' })
  const r3 = await fetch(`${edge.url}${here}${SEG}`)
  t.equal(r3.status, 200, 'bound to the client network')
  await r3.arrayBuffer()
  t.equal(up.count(SEG), 1)
})

t.test('freshness on the wire: revalidation with validators, stale-while-revalidate', async (t) => {
  const clock = new ManualClock(Date.now())
  let version = 1
  let swr = 1
  const up = await startUpstream(t, {
    '/vod/m/m': (req, reply) => {
      // The upstream's clock is the test's clock, or every response would look aged.
      reply.header('date', new Date(clock.now()).toUTCString())
      reply.header('cache-control', 'max-age=2').header('etag', `"v${version}"`)
      if (req.headers['if-none-match'] === `"v${version}"`) return reply.code(304).send()
      return reply.send(`body v${version}`)
    },
    '/vod/m/swr': (_req, reply) =>
      reply.header('cache-control', 'max-age=2, stale-while-revalidate=30').send(`swr ${swr}`),
  })
  const edge = await startEdge(t, { upstream: up.url, clock })
  t.equal(await fetch(`${edge.url}/vod/m/m`).then((r) => r.text()), 'body v1')
  clock.advance(3000)
  const reval = await fetch(`${edge.url}/vod/m/m`)
  t.equal(reval.headers.get('x-cache'), 'REVALIDATED')
  t.equal(await reval.text(), 'body v1')
  t.same(
    up.conditionals.map((c) => c.inm),
    ['"v1"'],
    'sent the stored ETag',
  )
  t.equal(
    (await fetch(`${edge.url}/vod/m/m`)).headers.get('x-cache'),
    'HIT-MEM',
    'the 304 refreshed the entry',
  )
  version = 2
  clock.advance(3000)
  t.equal(
    await fetch(`${edge.url}/vod/m/m`).then((r) => r.text()),
    'body v2',
    'a changed object is refetched',
  )

  await fetch(`${edge.url}/vod/m/swr`).then((r) => r.text())
  clock.advance(5000)
  swr = 2
  const stale = await fetch(`${edge.url}/vod/m/swr`)
  t.equal(stale.headers.get('x-cache'), 'STALE')
  t.equal(await stale.text(), 'swr 1')
  // The background refresh: its upstream request, then its commit.
  await until(() => up.count('/vod/m/swr') >= 2)
  await settled(edge)
  t.equal(up.count('/vod/m/swr'), 2, 'refreshed in the background, once')
  t.equal(await fetch(`${edge.url}/vod/m/swr`).then((r) => r.text()), 'swr 2')
})
