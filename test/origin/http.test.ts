import t from 'tap'
import { parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist.js'
import { CACHE_IMMUTABLE, CACHE_MASTER } from '../../src/http/paths.js'
import { exchange } from '../edge/boundary/wire.js'
import { ingestedStore, startOrigin } from '../helpers/origin.js'

const store = await ingestedStore(t, { titles: [{ id: 'clip', seconds: 10 }] })
const origin = await startOrigin(t, { store })
const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  fetch(origin.url + path, { headers, method })

const master = await (await get('/vod/clip/master.m3u8')).text()
const firstVariant = parseMasterPlaylist(master).variants[0]!.uri
const base = `/vod/clip/${firstVariant.slice(0, firstVariant.lastIndexOf('/'))}`

t.test('master: content type, short cache, strong etag, last-modified', async (t) => {
  const res = await get('/vod/clip/master.m3u8')
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl')
  t.equal(res.headers.get('cache-control'), CACHE_MASTER)
  t.match(res.headers.get('etag'), /^"[^"]+"$/, 'strong etag')
  t.ok(res.headers.get('last-modified'))
  const m = parseMasterPlaylist(await res.text())
  t.ok(m.independentSegments)
  t.equal(m.variants.length, 3)
})

t.test('media objects: immutable, types, lengths', async (t) => {
  const idx = await get(`${base}/index.m3u8`)
  t.equal(idx.headers.get('cache-control'), CACHE_IMMUTABLE)
  t.equal(idx.headers.get('content-type'), 'application/vnd.apple.mpegurl')
  const media = parseMediaPlaylist(await idx.text())
  t.equal(media.playlistType, 'VOD')
  t.ok(media.endList)
  t.equal(media.mapUri, 'init.mp4')
  const init = await get(`${base}/init.mp4`)
  t.equal(init.headers.get('content-type'), 'video/mp4')
  const seg = await get(`${base}/${media.segments[0]!.uri}`)
  t.equal(seg.status, 200)
  t.equal(seg.headers.get('content-type'), 'video/iso.segment')
  t.equal(seg.headers.get('accept-ranges'), 'bytes')
  t.equal(seg.headers.get('access-control-allow-origin'), '*', 'players on other origins may read it')
  t.match(seg.headers.get('access-control-expose-headers'), /X-Cache/)
  const body = Buffer.from(await seg.arrayBuffer())
  t.equal(Number(seg.headers.get('content-length')), body.length)
})

t.test('HEAD has the headers and no body', async (t) => {
  const g = await get(`${base}/seg-00001.m4s`)
  const size = (await g.arrayBuffer()).byteLength
  const h = await get(`${base}/seg-00001.m4s`, {}, 'HEAD')
  t.equal(h.status, 200)
  t.equal(Number(h.headers.get('content-length')), size)
  t.equal(h.headers.get('etag'), g.headers.get('etag'))
  t.equal((await h.arrayBuffer()).byteLength, 0)
})

t.test('single byte ranges: 206, suffix, open-ended, 416, ignored garbage', async (t) => {
  const full = Buffer.from(await (await get(`${base}/seg-00001.m4s`)).arrayBuffer())
  const size = full.length
  const r = await get(`${base}/seg-00001.m4s`, { range: 'bytes=10-19' })
  t.equal(r.status, 206)
  t.equal(r.headers.get('content-range'), `bytes 10-19/${size}`)
  t.same(Buffer.from(await r.arrayBuffer()), full.subarray(10, 20))
  const suffix = await get(`${base}/seg-00001.m4s`, { range: 'bytes=-5' })
  t.same(Buffer.from(await suffix.arrayBuffer()), full.subarray(size - 5))
  const open = await get(`${base}/seg-00001.m4s`, { range: `bytes=${size - 3}-` })
  t.equal(open.status, 206)
  t.equal((await open.arrayBuffer()).byteLength, 3)
  const bad = await get(`${base}/seg-00001.m4s`, { range: `bytes=${size}-` })
  t.equal(bad.status, 416)
  t.equal(bad.headers.get('content-range'), `bytes */${size}`)
  t.equal((await bad.json()).error.code, 'CDN_ERR_RANGE_NOT_SATISFIABLE')
  for (const garbage of [
    'bytes=abc',
    'bytes=5-1',
    'items=0-1',
    'bytes=0-1,4-5',
    'bytes=--',
    'bytes=99999999999999999999-',
  ]) {
    const g = await get(`${base}/seg-00001.m4s`, { range: garbage })
    t.equal(g.status, 200, `ignored: ${garbage}`)
    await g.arrayBuffer()
  }
  const stale = await get(`${base}/seg-00001.m4s`, { range: 'bytes=0-9', 'if-range': '"nope"' })
  t.equal(stale.status, 200, 'If-Range mismatch gives the whole body')
  await stale.arrayBuffer()
  const head = await get(`${base}/seg-00001.m4s`, { range: 'bytes=0-9' }, 'HEAD')
  t.equal(head.status, 206)
  t.equal(head.headers.get('content-length'), '10')
})

t.test('conditional requests: If-None-Match and If-Modified-Since give 304', async (t) => {
  for (const path of ['/vod/clip/master.m3u8', `${base}/seg-00002.m4s`]) {
    const first = await get(path)
    await first.arrayBuffer()
    const etag = first.headers.get('etag')!
    const inm = await get(path, { 'if-none-match': etag })
    t.equal(inm.status, 304, `${path} If-None-Match`)
    t.equal(inm.headers.get('etag'), etag)
    t.ok(inm.headers.get('cache-control'))
    const ims = await get(path, { 'if-modified-since': first.headers.get('last-modified')! })
    t.equal(ims.status, 304, `${path} If-Modified-Since`)
    const other = await get(path, { 'if-none-match': '"other"' })
    t.equal(other.status, 200)
    await other.arrayBuffer()
  }
})

t.test('If-Match and If-Unmodified-Since: 412 when they fail, in RFC 9110 order', async (t) => {
  const path = `${base}/seg-00002.m4s`
  const first = await get(path)
  await first.arrayBuffer()
  const etag = first.headers.get('etag')!
  const lm = first.headers.get('last-modified')!
  const bad = await get(path, { 'if-match': '"other"' })
  t.equal(bad.status, 412)
  t.equal(((await bad.json()) as { error: { code: string } }).error.code, 'CDN_ERR_PRECONDITION_FAILED')
  const early = await get(path, { 'if-unmodified-since': new Date(Date.parse(lm) - 60_000).toUTCString() })
  t.equal(early.status, 412, 'modified since the date')
  await early.arrayBuffer()
  const both = await get(path, { 'if-match': '"other"', 'if-none-match': etag })
  t.equal(both.status, 412, 'If-Match is evaluated before If-None-Match')
  await both.arrayBuffer()
  const ranged = await get(path, { 'if-match': etag, range: 'bytes=0-9' })
  t.equal(ranged.status, 206, 'If-Match holds: the range is served')
  t.equal((await ranged.arrayBuffer()).byteLength, 10)
})

t.test('traversal and malformed paths never leave the store', async (t) => {
  const cases = [
    '/vod/../title.json',
    '/vod/clip/../../etc/passwd',
    '/vod/clip/%2e%2e/%2e%2e/etc/passwd',
    '/vod/clip/%2e%2e%2ftitle.json',
    '/vod/clip%2ftitle.json',
    '/vod/clip/title.json',
    '/vod/clip/master.m3u8%00',
    '/vod/%2fetc%2fpasswd',
    '/vod//etc/passwd',
    '/vod/clip/v1/480p/..%2f..%2ftitle.json',
    '/vod/Clip/master.m3u8',
    '/vod/clip/x/480p/index.m3u8',
    '/vod/nope/master.m3u8',
    '/etc/passwd',
  ]
  for (const path of cases) {
    // Raw request paths: fetch would normalise `..`, so go through undici's raw request.
    const res = await rawGet(origin.url, path)
    t.ok(res.status === 400 || res.status === 404, `${path} → ${res.status}`)
    t.match(JSON.parse(res.body), { error: { code: /^CDN_ERR_/ } }, `${path} answers JSON`)
    if (path.startsWith('/vod/'))
      t.equal(
        res.headers['access-control-allow-origin'],
        '*',
        `${path}: a player on another origin reads why`,
      )
  }
})

t.test('every /vod answer carries CORS: errors, the preflight, a 405 for other methods', async (t) => {
  const player = { origin: 'http://player.example' }
  for (const [path, status] of [
    ['/vod/nosuch/master.m3u8', 404],
    [`${base}/seg-00001.m4s`, 200],
  ] as const) {
    const res = await get(path, player)
    await res.arrayBuffer()
    t.equal(res.status, status, path)
    t.equal(res.headers.get('access-control-allow-origin'), '*', `${path}: Access-Control-Allow-Origin`)
    t.match(res.headers.get('access-control-expose-headers'), /Content-Range/, `${path}: exposed headers`)
  }
  const unsatisfiable = await get(`${base}/seg-00001.m4s`, { ...player, range: 'bytes=99999999-' })
  t.equal(unsatisfiable.status, 416)
  t.equal(unsatisfiable.headers.get('access-control-allow-origin'), '*', '416: Access-Control-Allow-Origin')
  await unsatisfiable.arrayBuffer()

  const pre = await get(
    '/vod/clip/master.m3u8',
    { ...player, 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
    'OPTIONS',
  )
  t.equal(pre.status, 204, 'preflight: 204')
  t.equal(await pre.text(), '')
  t.equal(pre.headers.get('access-control-allow-origin'), '*')
  t.equal(pre.headers.get('access-control-allow-methods'), 'GET, HEAD')
  t.match(pre.headers.get('access-control-allow-headers')?.toLowerCase(), /\brange\b/)

  // PROPFIND, MKCOL and PURGE are methods fastify routes nothing for: they were 404s without CORS.
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'PROPFIND', 'MKCOL', 'PURGE']) {
    const res = await fetch(`${origin.url}/vod/clip/master.m3u8`, {
      method,
      headers: { ...player, 'content-type': 'application/json' },
      body: '{not json',
    })
    t.equal(res.status, 405, `${method}: 405, before its body is read`)
    t.equal(res.headers.get('allow'), 'GET, HEAD', `${method}: Allow`)
    t.equal(res.headers.get('access-control-allow-origin'), '*', `${method}: Access-Control-Allow-Origin`)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.same(await res.json(), {
      error: { code: 'CDN_ERR_METHOD_NOT_ALLOWED', message: 'only GET and HEAD are served' },
    })
  }
})

t.test('an absolute-form target is served as its origin-form path (RFC 9112 §3.2.2)', async (t) => {
  const port = Number(new URL(origin.url).port)
  // The last request closes the connection: the client does not half-close first.
  const { responses } = await exchange(
    port,
    [
      `GET ${origin.url}/vod/clip/master.m3u8 HTTP/1.1\r\nhost: other.example\r\n\r\n` +
        `GET http://127.0.0.1:${port}/titles?x=1 HTTP/1.1\r\nhost: other.example\r\nconnection: close\r\n\r\n`,
    ],
    { end: false },
  )
  t.same(
    responses.map((r) => r.status),
    [200, 200],
  )
  t.equal(responses[0]!.body.toString(), master, 'the master, as in origin-form')
  t.match(JSON.parse(responses[1]!.body.toString()), { titles: [{ id: 'clip' }] })
})

t.test(
  'a client that half-closes once its requests are sent gets every answer, then the close',
  async (t) => {
    const port = Number(new URL(origin.url).port)
    // As `printf ... | nc -N` sends them: both requests, then the FIN before either answer is ready.
    const { responses } = await exchange(port, [
      'GET /titles HTTP/1.1\r\nhost: a\r\n\r\nGET /vod/clip/master.m3u8 HTTP/1.1\r\nhost: a\r\n\r\n',
    ])
    t.same(
      responses.map((r) => r.status),
      [200, 200],
    )
    t.equal(responses[1]!.body.toString(), master)
  },
)

t.test('catalogue API lists the title with renditions, bitrates, duration, bytes', async (t) => {
  const list = (await (await get('/titles')).json()) as { titles: { id: string }[] }
  t.same(
    list.titles.map((x) => x.id),
    ['clip'],
  )
  const one = (await (await get('/titles/clip')).json()) as {
    versions: {
      renditions: { name: string; bandwidth: number; width: number }[]
      durationSec: number
      bytes: number
    }[]
  }
  const v = one.versions[0]!
  t.same(
    v.renditions.map((r) => r.name),
    ['480p', '360p', '240p'],
  )
  t.ok(v.bytes > 0)
  t.ok(Math.abs(v.durationSec - 10) < 0.5)
  const nope = await get('/titles/nope')
  t.equal(nope.status, 404)
  t.equal(nope.headers.get('cache-control'), 'no-store', 'an error is never cached')
  const lost = await get('/no/such/route')
  t.equal(lost.status, 404)
  t.same(await lost.json(), {
    error: { code: 'CDN_ERR_NOT_FOUND', message: 'no route for GET /no/such/route' },
  })
  t.equal((await get('/titles/Bad_Id')).status, 400)
  const health = await get('/healthz')
  t.equal(health.status, 200)
  t.same(await health.json(), { ok: true }, "the edge's and steering's /healthz body")
  const status = await (await get('/status')).text()
  t.match(JSON.parse(status), { role: 'origin', store: { kind: 'local', casMode: 'local' } })
  t.notMatch(status, origin.store, 'no local path in the unauthenticated /status')
  const metrics = await (await get('/metrics')).text()
  t.match(metrics, /cdn_origin_requests_total\{route="\/vod\/\*",method="GET",status="200"\}/)
  t.match(metrics, /cdn_origin_bytes_sent_total \d+/)
  t.notMatch(metrics, /clip/, 'no title in any label')
})

async function rawGet(
  base: string,
  path: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { request } = await import('node:http')
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}
