/**
 * Compression of playlists and JSON the upstream did not compress (edge/cache/compress.ts,
 * docs/http-cache.md): brotli preferred, gzip otherwise, q=0 honoured, identity for a client
 * that accepts neither; the encoded body decodes to the identical bytes, with its own
 * Content-Length and a weak suffixed ETag (a 304 for it); Vary: Accept-Encoding on every answer
 * about such an object; ranges answered from the identity body; a 304 that adds no-transform
 * (Cache-Control or CDN-Cache-Control) or changes Content-Type drops the encoded forms (memory,
 * and the disk copy memory takes again), one that changes neither keeps them; segments never
 * encoded; the option off. Through node's http (a client that closes) and the raw hit path
 * (keep-alive). The upstream is asked for identity; an origin that only has a gzip form is
 * served as it sent it.
 */
import { Agent, createServer, request } from 'node:http'
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { ManualClock } from '../../src/clock.js'
import { writeMediaPlaylist } from '../../src/hls/playlist.js'
import { settled, startEdge, type TestEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { type Answer, startEchoUpstream } from './upstream-server.js'

interface Got {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

function get(url: string, headers: Record<string, string> = {}, agent: Agent | false = false): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** A two-hour title's media playlist: 1800 segments of 4 s. */
const PLAYLIST = Buffer.from(
  writeMediaPlaylist({
    segments: Array.from({ length: 1800 }, (_, i) => ({
      uri: `seg-${String(i + 1).padStart(5, '0')}.m4s`,
      duration: 4,
    })),
    mapUri: 'init.mp4',
  }),
)
const SEGMENT = Buffer.from('m4s '.repeat(1000))
const PL = '/vod/t/v1/720p/index.m3u8'
const JSON_PATH = '/vod/t/info.json'
const SEG = '/vod/t/v1/720p/seg-00001.m4s'

async function setup(t: Test, compress = true): Promise<{ edge: TestEdge; count: (p: string) => number }> {
  const up = await startEchoUpstream(t, (r): Answer => {
    const cc = 'public, max-age=600'
    if (r.url === PL)
      return {
        headers: { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': cc, etag: '"pl-1"' },
        body: PLAYLIST.toString(),
      }
    if (r.url === JSON_PATH)
      return {
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': cc, vary: 'Origin' },
        body: JSON.stringify({
          items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })),
        }),
      }
    return {
      headers: { 'content-type': 'video/iso.segment', 'cache-control': cc, etag: '"seg-1"' },
      body: SEGMENT.toString(),
    }
  })
  const edge = await startEdge(t, { upstream: up.url, compress, forwardDeny: ['cookie', 'origin'] })
  for (const p of [PL, JSON_PATH, SEG]) await get(`${edge.url}${p}`)
  await settled(edge)
  if (compress)
    await until(() => [PL, JSON_PATH].every((p) => edge.app.edge.store.getInMemory(p)?.encoded !== undefined))
  return { edge, count: (p) => up.at(p).length }
}

function varies(r: Got): boolean {
  return String(r.headers.vary ?? '')
    .split(',')
    .some((f) => f.trim().toLowerCase() === 'accept-encoding')
}

t.test(
  'a playlist: brotli, gzip or identity by Accept-Encoding, each decoding to the same bytes',
  async (t) => {
    const { edge, count } = await setup(t)
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => keepAlive.destroy())
    for (const agent of [false, keepAlive] as const) {
      const via = agent ? 'raw hit path' : "node's http"
      const br = await get(`${edge.url}${PL}`, { 'accept-encoding': 'gzip, deflate, br' }, agent)
      t.equal(br.headers['content-encoding'], 'br', `brotli preferred (${via})`)
      t.equal(Number(br.headers['content-length']), br.body.length, 'its own Content-Length')
      t.ok(br.body.length * 5 < PLAYLIST.length, `${br.body.length} bytes for ${PLAYLIST.length}`)
      t.ok(brotliDecompressSync(br.body).equals(PLAYLIST), 'decodes to the identical bytes')
      t.equal(br.headers.etag, 'W/"pl-1-br"', 'a weak ETag of its own')
      t.ok(varies(br), 'Vary: Accept-Encoding')

      const gz = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br;q=0, gzip' }, agent)
      t.equal(gz.headers['content-encoding'], 'gzip', `br;q=0 is refused (${via})`)
      t.ok(gunzipSync(gz.body).equals(PLAYLIST))
      t.equal(Number(gz.headers['content-length']), gz.body.length)
      t.equal(gz.headers.etag, 'W/"pl-1-gzip"')

      for (const ae of [undefined, 'identity', 'br;q=0, gzip;q=0', 'deflate']) {
        const id = await get(`${edge.url}${PL}`, ae === undefined ? {} : { 'accept-encoding': ae }, agent)
        t.equal(
          id.headers['content-encoding'],
          undefined,
          `identity for ${ae ?? 'no Accept-Encoding'} (${via})`,
        )
        t.ok(id.body.equals(PLAYLIST))
        t.equal(id.headers.etag, '"pl-1"')
        t.equal(Number(id.headers['content-length']), PLAYLIST.length)
        t.ok(varies(id), 'Vary: Accept-Encoding on the identity answer too')
      }
      const star = await get(`${edge.url}${PL}`, { 'accept-encoding': '*' }, agent)
      t.equal(star.headers['content-encoding'], 'br', '* accepts brotli')
    }
    t.equal(count(PL), 1, 'fetched once, encoded once')
  },
)

t.test('JSON is encoded too; its own Vary is kept', async (t) => {
  const { edge } = await setup(t)
  const r = await get(`${edge.url}${JSON_PATH}`, { 'accept-encoding': 'gzip' })
  t.equal(r.headers['content-encoding'], 'gzip')
  t.match(JSON.parse(gunzipSync(r.body).toString()), { items: [{ id: 0 }] })
  t.equal(r.headers.vary, 'Origin, Accept-Encoding')
})

t.test('conditionals and ranges on an encoded playlist', async (t) => {
  const { edge } = await setup(t)
  const nm = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br', 'if-none-match': 'W/"pl-1-br"' })
  t.equal(nm.status, 304, 'the encoded ETag is a 304 for that encoding')
  t.equal(nm.headers.etag, 'W/"pl-1-br"')
  t.equal(nm.body.length, 0)
  const other = await get(`${edge.url}${PL}`, { 'accept-encoding': 'gzip', 'if-none-match': 'W/"pl-1-br"' })
  t.equal(other.status, 200, 'not for another encoding')
  t.equal(other.headers['content-encoding'], 'gzip')
  const ident = await get(`${edge.url}${PL}`, { 'if-none-match': '"pl-1"' })
  t.equal(ident.status, 304, 'the identity ETag for the identity answer')
  const range = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br', range: 'bytes=0-99' })
  t.equal(range.status, 206, 'a range is answered')
  t.equal(range.headers['content-encoding'], undefined, 'from the identity body')
  t.ok(range.body.equals(PLAYLIST.subarray(0, 100)))
  t.equal(range.headers['content-range'], `bytes 0-99/${PLAYLIST.length}`)
  t.ok(varies(range))
})

/**
 * A playlist stored encodable (max-age=1, ETag "p1"), encoded, then revalidated once stale: the
 * upstream's 304 carries `refresh`. Returns the edge, the revalidated answer to `br` and the
 * upstream's requests for the playlist.
 */
async function revalidatedWith(
  t: Test,
  refresh: Record<string, string>,
): Promise<{ edge: TestEdge; revalidated: Got; asked: () => number }> {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000)
  const up = await startEchoUpstream(t, (r): Answer => {
    const date = new Date(clock.now()).toUTCString()
    if (r.headers['if-none-match'] === '"p1"')
      return { status: 304, headers: { date, etag: '"p1"', ...refresh }, body: '' }
    return {
      headers: {
        date,
        'content-type': 'application/vnd.apple.mpegurl',
        'cache-control': 'max-age=1',
        etag: '"p1"',
      },
      body: PLAYLIST.toString(),
    }
  })
  const edge = await startEdge(t, { upstream: up.url, clock })
  await get(`${edge.url}${PL}`)
  await settled(edge)
  await until(() => edge.app.edge.store.getInMemory(PL)?.encoded !== undefined)
  const before = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br' })
  t.equal(before.headers['content-encoding'], 'br', 'encoded before the revalidation')
  clock.advance(2000)
  const revalidated = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br' })
  t.equal(revalidated.headers['x-cache'], 'REVALIDATED')
  await settled(edge)
  return { edge, revalidated, asked: () => up.at(PL).length }
}

t.test(
  'a 304 that adds no-transform (Cache-Control or targeted) or changes Content-Type: the encoded forms dropped, identity from then on',
  async (t) => {
    const refreshes: [string, Record<string, string>, string][] = [
      ['no-transform', { 'cache-control': 'max-age=100, no-transform' }, 'application/vnd.apple.mpegurl'],
      [
        'no-transform in CDN-Cache-Control (RFC 9213)',
        { 'cache-control': 'max-age=100', 'cdn-cache-control': 'max-age=100, no-transform' },
        'application/vnd.apple.mpegurl',
      ],
      [
        'a Content-Type not encoded',
        { 'cache-control': 'max-age=100', 'content-type': 'text/plain' },
        'text/plain',
      ],
    ]
    for (const [name, refresh, type] of refreshes)
      await t.test(name, async (t) => {
        const { edge, revalidated, asked } = await revalidatedWith(t, refresh)
        const store = edge.app.edge.store as TieredStore
        const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
        t.teardown(() => keepAlive.destroy())
        const answers: [string, Got][] = [['REVALIDATED', revalidated]]
        for (const agent of [false, keepAlive] as const)
          answers.push(['HIT-MEM', await get(`${edge.url}${PL}`, { 'accept-encoding': 'br, gzip' }, agent)])
        t.equal(store.getInMemory(PL)?.encoded, undefined, 'no encoded form kept')
        // The disk tier's copy was refreshed too: memory forgets the playlist, a hit reads it from
        // disk and memory takes it again, and does not encode it.
        await store.memory.delete(PL)
        const encodedBefore = store.memory.encoder.encoded
        answers.push(['HIT-DISK', await get(`${edge.url}${PL}`, { 'accept-encoding': 'br' })])
        t.ok(store.getInMemory(PL), 'the disk hit is back in memory')
        await until(() => store.memory.encoder.running === 0)
        t.equal(store.memory.encoder.encoded, encodedBefore, 'and is not encoded there')
        answers.push(['HIT-MEM', await get(`${edge.url}${PL}`, { 'accept-encoding': 'br' })])
        for (const [xc, r] of answers) {
          t.equal(r.headers['x-cache'], xc)
          t.equal(r.headers['cache-control'], refresh['cache-control'], `${xc}: the refreshed Cache-Control`)
          t.equal(r.headers['content-type'], type)
          t.equal(r.headers['content-encoding'], undefined, `${xc}: not encoded`)
          t.ok(r.body.equals(PLAYLIST), `${xc}: the identity body`)
          t.equal(r.headers.etag, '"p1"', `${xc}: the upstream's ETag`)
          t.notOk(varies(r), `${xc}: no Vary: Accept-Encoding, no longer an answer the edge encodes`)
        }
        t.equal(asked(), 2, 'one fetch, one revalidation')
      })
  },
)

t.test('a 304 that keeps the playlist encodable keeps its encoded forms under the new headers', async (t) => {
  const { edge, revalidated } = await revalidatedWith(t, { 'cache-control': 'max-age=100' })
  const hit = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br' })
  for (const r of [revalidated, hit]) {
    t.equal(r.headers['content-encoding'], 'br')
    t.equal(r.headers['cache-control'], 'max-age=100')
    t.ok(brotliDecompressSync(r.body).equals(PLAYLIST))
    t.equal(r.headers.etag, 'W/"p1-br"')
  }
  t.equal(hit.headers['x-cache'], 'HIT-MEM')
})

t.test('segments are never encoded', async (t) => {
  const { edge } = await setup(t)
  const r = await get(`${edge.url}${SEG}`, { 'accept-encoding': 'br, gzip' })
  t.equal(r.headers['content-encoding'], undefined)
  t.ok(r.body.equals(SEGMENT))
  t.notOk(varies(r), 'no Vary: Accept-Encoding')
  t.equal(edge.app.edge.store.getInMemory(SEG)?.encoded, undefined, 'no encoded form kept')
})

t.test('--compress false: identity, no Vary', async (t) => {
  const { edge } = await setup(t, false)
  const r = await get(`${edge.url}${PL}`, { 'accept-encoding': 'br, gzip' })
  t.equal(r.headers['content-encoding'], undefined)
  t.ok(r.body.equals(PLAYLIST))
  t.notOk(varies(r))
})

t.test('the encoded forms count against the memory tier', async (t) => {
  const { edge } = await setup(t)
  const entry = edge.app.edge.store.getInMemory(PL)!
  const enc = entry.encoded!
  t.equal(enc.bytes, enc.br!.body!.length + enc.gzip!.body!.length)
  const mem = edge.app.edge.store.stats().memory!
  t.ok(mem.bytes >= PLAYLIST.length + enc.bytes, 'held bytes include the encoded forms')
})

t.test(
  'an origin that only serves a gzip form: asked for identity, its form kept and served as sent',
  async (t) => {
    const gz = gzipSync(PLAYLIST)
    const asked: (string | undefined)[] = []
    // Like an object store holding a pre-compressed object: Accept-Encoding is not looked at.
    const server = createServer((req, res) => {
      asked.push(req.headers['accept-encoding'])
      res.writeHead(200, {
        'content-type': 'application/vnd.apple.mpegurl',
        'content-encoding': 'gzip',
        'content-length': String(gz.length),
        'cache-control': 'max-age=60',
      })
      res.end(gz)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as { port: number }
    const edge = await startEdge(t, { upstream: `http://127.0.0.1:${port}` })
    const url = `${edge.url}/vod/t/gz.m3u8`
    const miss = await get(url)
    t.equal(miss.headers['content-encoding'], 'gzip', 'a client without Accept-Encoding gets the gzip form')
    t.same(miss.body, gz, 'as the origin sent it: not decoded')
    t.equal(miss.headers.vary, undefined, 'no Vary of the edge: the answer is not one it encodes')
    await settled(edge)
    const br = await get(url, { 'accept-encoding': 'br' })
    t.equal(br.headers['content-encoding'], 'gzip', 'not encoded again')
    t.same(br.body, gz)
    t.same(gunzipSync(br.body), PLAYLIST)
    t.same(asked, ['identity'], 'asked once, for identity')
  },
)
