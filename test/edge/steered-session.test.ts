/**
 * A steered session counted whole (src/http/steered.ts): real steering sends a player to its
 * non-preferred edge with the reason in a path prefix, and every request the player makes after
 * the master (media playlists, init segments, segments, all relative URIs) carries it, so the
 * edge counts each as steered and each of its misses as `health`. The prefix is in no key and
 * never sent upstream; compressed playlists and raw hits are served through it unchanged; a
 * signed session keeps its token behind it. A real origin's ladder, real edges, real steering.
 */
import { Agent, request } from 'node:http'
import { brotliDecompressSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge, type TestEdge } from '../helpers/edge.js'
import { ingestedStore, startOrigin } from '../helpers/origin.js'
import { PLACES, startSteering } from '../helpers/steering.js'
import { metricAt, until } from '../helpers/wait.js'

interface Got {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

function get(url: string, headers: Record<string, string> = {}, agent?: Agent): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, ...(agent ? { agent } : { agent: false }) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A player's walk from the master: one rendition's playlist, its init segment and every segment. */
async function walk(masterUrl: string): Promise<Array<{ url: string; cache: string }>> {
  const seen: Array<{ url: string; cache: string }> = []
  const fetchOk = async (url: string) => {
    const r = await get(url)
    if (r.status !== 200) throw new Error(`${r.status} for ${url}`)
    seen.push({ url, cache: String(r.headers['x-cache']) })
    return r.body.toString('utf8')
  }
  const uris = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
  const master = await fetchOk(masterUrl)
  const media = new URL(uris(master).at(-1)!, masterUrl).href
  const playlist = await fetchOk(media)
  const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)
  for (const p of [...(map ? [map[1]!] : []), ...uris(playlist)]) await fetchOk(new URL(p, media).href)
  return seen
}

const steered = (e: TestEdge, reason = 'down') =>
  metricAt(`${e.url}/metrics`, 'cdn_edge_steered_requests_total', { reason })
const misses = (e: TestEdge, cause: string) =>
  metricAt(`${e.url}/metrics`, 'cdn_edge_misses_total', { cause })
/** Upstream fetches the edge made that the origin answered (a prefixed path would be its 404). */
const fetched = (e: TestEdge) =>
  metricAt(`${e.url}/metrics`, 'cdn_edge_upstream_fetches_total', { result: 'ok' })

/** Two edges in one place; the preferred one for `title` is shut down, so steering sends players to the other. */
async function steeredFleet(t: Test, opts: { signingKey?: string } = {}) {
  const store = await ingestedStore(t, { titles: [{ id: 'alpha', seconds: 10 }] })
  const origin = await startOrigin(t, { store })
  // The edges' freshness on a clock of their own: the master stays fresh for the whole test.
  const clock = new ManualClock()
  const edges = new Map<string, TestEdge>()
  for (const id of ['rome-1', 'rome-2'])
    edges.set(
      id,
      await startEdge(t, {
        upstream: origin.url,
        id,
        clock,
        ...(opts.signingKey ? { signingKey: [opts.signingKey] } : {}),
      }),
    )
  const s = await startSteering(
    t,
    [...edges].map(([id, e]) => ({ id, url: e.url, site: 'rome', ...PLACES.rome })),
    { failAfter: 1, recoverAfter: 1, ...(opts.signingKey ? { signingKey: opts.signingKey } : {}) },
  )
  await s.health.checkNow()
  const play = async () => {
    const r = await get(`${s.url}/play/alpha/master.m3u8?region=rome`)
    return { edge: String(r.headers['x-steering-edge']), location: String(r.headers.location) }
  }
  const preferred = await play()
  await edges.get(preferred.edge)!.app.close()
  await s.health.checkNow()
  const moved = await play()
  return { origin, edges, preferred, moved, other: edges.get(moved.edge)! }
}

t.test('every request of a steered session is counted, and each of its misses is health', async (t) => {
  const { preferred, moved, other } = await steeredFleet(t)
  t.not(moved.edge, preferred.edge, 'sent to the other edge')
  t.equal(moved.location, `${other.url}/steered/down/vod/alpha/master.m3u8`, 'the reason opens the path')

  const session = await walk(moved.location)
  t.ok(session.length >= 5, `${session.length} requests: master, playlist, init, segments`)
  t.ok(
    session.every((r) => new URL(r.url).pathname.startsWith('/steered/down/vod/alpha/')),
    'relative URIs inherit the prefix',
  )
  t.ok(
    session.every((r) => r.cache === 'MISS'),
    'a cold edge: every request a miss',
  )
  await settled(other)
  t.equal(await steered(other), session.length, 'every request counted as steered, not the master only')
  t.equal(await misses(other, 'health'), session.length, 'every miss attributed to health')
  t.equal(await misses(other, 'content'), 0)
  t.equal(await steered(other, 'overloaded'), 0)

  t.equal(await fetched(other), session.length, 'one upstream fetch per object, each answered 200')
  for (const r of session) {
    const key = new URL(r.url).pathname.replace('/steered/down', '')
    t.ok(other.app.edge.store.has(key), `held under its plain key: ${key}`)
  }

  // The same objects without the prefix (a player sent to its preferred edge): hits, not counted.
  const plain = await walk(`${other.url}/vod/alpha/master.m3u8`)
  t.equal(plain.length, session.length)
  t.ok(
    plain.every((r) => r.cache.startsWith('HIT')),
    'the prefix splits no cache entry',
  )
  t.equal(await steered(other), session.length, 'unsteered requests are not counted')
  t.equal(await fetched(other), session.length, 'nothing more upstream')
})

t.test('through the prefix: compressed playlists and raw hits, the query form still read', async (t) => {
  const { moved, other } = await steeredFleet(t)
  const master = '/vod/alpha/master.m3u8'
  const identity = await get(`${other.url}${master}`)
  t.equal(identity.status, 200)
  await settled(other)
  await until(() => other.app.edge.store.getInMemory(master)?.encoded !== undefined)

  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  const rawBefore = other.app.edge.raw!.answered
  const before = await steered(other)
  const br = await get(moved.location, { 'accept-encoding': 'br' }, keepAlive)
  t.equal(br.status, 200)
  t.equal(br.headers['content-encoding'], 'br', 'the stored brotli form is served')
  t.ok(brotliDecompressSync(br.body).equals(identity.body), 'the cached bytes, not rewritten')
  t.equal(br.headers['x-cache'], 'HIT-MEM')
  const again = await get(moved.location, {}, keepAlive)
  t.ok(again.body.equals(identity.body))
  t.equal(other.app.edge.raw!.answered, rawBefore + 2, 'both answered on the raw hit path')
  t.equal(await steered(other), before + 2, 'and both counted as steered')

  const query = await get(`${other.url}${master}?cdn-steered=overloaded`)
  t.equal(query.status, 200)
  t.equal(await steered(other, 'overloaded'), 1, 'the query parameter of earlier steering is still read')

  for (const bad of ['/steered/sideways/vod/alpha/master.m3u8', '/steered/down'])
    t.equal((await get(`${other.url}${bad}`)).status, 404, `${bad}: not a path the edge serves`)
})

t.test('a signed steered session: the token behind the prefix, verified, counted', async (t) => {
  const key = 'steered-session-signing-key-0123456789'
  const { moved, other } = await steeredFleet(t, { signingKey: key })
  const path = new URL(moved.location).pathname
  t.match(path, /^\/steered\/down\/t\/[^/]+\/vod\/alpha\/master\.m3u8$/, 'reason, then token')
  const session = await walk(moved.location)
  t.ok(session.length >= 5)
  await settled(other)
  t.equal(await steered(other), session.length)
  t.equal(await misses(other, 'health'), session.length)
  t.equal(await fetched(other), session.length, 'neither prefix nor token upstream: every fetch a 200')
  const unsigned = `${other.url}/steered/down/vod/alpha/master.m3u8`
  t.equal((await get(unsigned)).status, 403, 'the reason is no way around the token')
})
