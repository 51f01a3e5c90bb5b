/**
 * CMCD next-segment prefetch (edge/prefetch): a real edge in front of a real upstream on
 * loopback, the player's CMCD sent as hls.js sends it (query) or in headers.
 */
import t from 'tap'
import { isSegment, readCmcd } from '../../edge/prefetch/cmcd.js'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, startUpstream, type Handler } from './upstream-server.js'

const DIR = '/vod/pf/v1/720p/'
const SEG = (n: number) => `${DIR}seg-${String(n).padStart(5, '0')}.m4s`
const cmcd = (s: string) => `CMCD=${encodeURIComponent(s)}`
const SIZE = 3000

function segments(n: number, gates: Map<number, Promise<void>> = new Map()): Record<string, Handler> {
  const routes: Record<string, Handler> = {}
  for (let i = 1; i <= n; i++)
    routes[SEG(i)] = async (_req, reply) => {
      await gates.get(i)
      return reply
        .header('cache-control', IMMUTABLE)
        .header('content-type', 'video/iso.segment')
        .send(pattern(SIZE, i))
    }
  routes[`${DIR}index.m3u8`] = (_req, reply) =>
    reply
      .header('cache-control', IMMUTABLE)
      .header('content-type', 'application/vnd.apple.mpegurl')
      .send(
        [
          '#EXTM3U',
          '#EXT-X-VERSION:7',
          '#EXT-X-TARGETDURATION:4',
          '#EXT-X-PLAYLIST-TYPE:VOD',
          '#EXT-X-MAP:URI="init.mp4"',
          ...Array.from({ length: n }, (_, i) => `#EXTINF:4.0,\nseg-${String(i + 1).padStart(5, '0')}.m4s`),
          '#EXT-X-ENDLIST',
          '',
        ].join('\n'),
      )
  return routes
}

const prefetches = (url: string, result: string) =>
  metricAt(`${url}/metrics`, 'cdn_edge_prefetches_total', { result })

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers })
  const body = Buffer.from(await r.arrayBuffer())
  return { status: r.status, cache: r.headers.get('x-cache'), body }
}

t.test('nor: exactly one upstream fetch of the next segment, and the next request is a hit', async (t) => {
  const up = await startUpstream(t, segments(3))
  const edge = await startEdge(t, { upstream: up.url })
  const r = await get(
    `${edge.url}${SEG(1)}?${cmcd('br=3200,bl=8000,nor="seg-00002.m4s",ot=v,sid="s1",su,v=2')}`,
  )
  t.equal(r.status, 200)
  await until(async () => (await prefetches(edge.url, 'started')) === 1)
  await settled(edge)
  t.equal(up.count(SEG(2)), 1, 'one upstream fetch of the next segment')
  t.same([...up.hits.keys()].sort(), [SEG(1), SEG(2)], 'nothing else, and no CMCD upstream')
  const next = await get(edge.url + SEG(2))
  t.equal(next.cache, 'HIT-MEM', 'the player finds it held')
  t.same(next.body, pattern(SIZE, 2))
  t.equal(up.count(SEG(2)), 1)
  t.equal(await prefetches(edge.url, 'used'), 1)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_prefetch_upstream_bytes_total'), SIZE)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_cmcd_requests_total', { result: 'valid' }), 1)
})

t.test('CMCD does not split the key: a hit whatever the CMCD data', async (t) => {
  const up = await startUpstream(t, segments(1))
  const edge = await startEdge(t, { upstream: up.url, keepQueryParams: ['*'] })
  await get(`${edge.url}${SEG(1)}?${cmcd('bl=100,ot=v')}`)
  await settled(edge)
  for (const c of ['bl=2000,ot=v', 'bl=9,mtp=25000,ot=v'])
    t.equal((await get(`${edge.url}${SEG(1)}?${cmcd(c)}`)).cache, 'HIT-MEM', c)
  t.equal((await get(edge.url + SEG(1))).cache, 'HIT-MEM', 'and without')
  t.same([...up.hits.keys()], [SEG(1)], 'one upstream fetch, without CMCD')
})

t.test('CMCD in headers: the next object named in CMCD-Request is prefetched', async (t) => {
  const up = await startUpstream(t, segments(2))
  const edge = await startEdge(t, { upstream: up.url })
  await get(edge.url + SEG(1), {
    'cmcd-request': 'bl=21300,nor="seg-00002.m4s"',
    'cmcd-object': 'br=3200,d=4004,ot=v',
    'cmcd-session': 'sid="6e2fb550",sf=h',
  })
  await until(() => up.count(SEG(2)) === 1)
  await settled(edge)
  t.equal((await get(edge.url + SEG(2))).cache, 'HIT-MEM')
})

t.test('without nor: the next segment of the media playlist the edge holds', async (t) => {
  const up = await startUpstream(t, segments(3))
  const edge = await startEdge(t, { upstream: up.url })
  await get(`${edge.url}${DIR}index.m3u8`)
  await settled(edge)
  await get(`${edge.url}${SEG(2)}?${cmcd('ot=v,br=3200')}`)
  await until(() => up.count(SEG(3)) === 1)
  await settled(edge)
  t.equal(up.count(SEG(1)), 0, 'not the one before')
  t.equal((await get(edge.url + SEG(3))).cache, 'HIT-MEM')
  // The last segment has no next one: nothing is fetched.
  await get(`${edge.url}${SEG(3)}?${cmcd('ot=v')}`)
  t.equal(await prefetches(edge.url, 'started'), 1)
})

t.test('never for what is not a segment; malformed CMCD is ignored, never refused', async (t) => {
  const up = await startUpstream(t, segments(2))
  const edge = await startEdge(t, { upstream: up.url })
  // A playlist request naming a segment as next: not a segment request.
  const pl = await get(`${edge.url}${DIR}index.m3u8?${cmcd('ot=m,nor="seg-00001.m4s"')}`)
  t.equal(pl.status, 200)
  // A segment that says it is an init segment, and a nor that is not a segment.
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=i,nor="seg-00002.m4s"')}`)
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=v,nor="index.m3u8"')}`)
  // Another title, and another host, named as next.
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=v,nor="/vod/other/v1/720p/seg-00002.m4s"')}`)
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=v,nor="http://elsewhere.example/seg.m4s"')}`)
  for (const bad of ['nor=="x,,;', 'br="fast"', 'ot=zz', 'nor=12']) {
    const r = await get(`${edge.url}${SEG(1)}?${cmcd(bad)}`)
    t.equal(r.status, 200, `malformed ${bad}: served`)
  }
  const h = await get(edge.url + SEG(1), { 'cmcd-request': 'nor=(((' })
  t.equal(h.status, 200, 'malformed header: served')
  await settled(edge)
  t.equal(await prefetches(edge.url, 'started'), 0, 'nothing prefetched')
  t.equal(up.count(SEG(2)), 0)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_cmcd_requests_total', { result: 'malformed' }), 5)
})

t.test('budget: concurrent prefetches and bytes not yet asked for', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const up = await startUpstream(t, segments(8, new Map([[2, gate]])))
  const edge = await startEdge(t, { upstream: up.url, prefetchConcurrency: 1, prefetchMaxBytes: SIZE })
  const next = (from: number, to: number) =>
    get(`${edge.url}${SEG(from)}?${cmcd(`ot=v,nor="seg-${String(to).padStart(5, '0')}.m4s"`)}`)
  await next(1, 2)
  await until(() => up.count(SEG(2)) === 1)
  await next(3, 4)
  t.equal(await prefetches(edge.url, 'skipped'), 1, 'one in flight already: skipped')
  t.equal(up.count(SEG(4)), 0)
  release()
  await until(async () => (await prefetches(edge.url, 'started')) === 1 && edge.app.edge.flights.size === 0)
  // SEG(2) is held and not asked for: SIZE bytes, the whole byte budget.
  await next(5, 6)
  t.equal(await prefetches(edge.url, 'skipped'), 2, 'over the byte budget: skipped')
  t.equal(up.count(SEG(6)), 0)
  // The player asks for SEG(2): the budget is free again.
  t.equal((await get(edge.url + SEG(2))).cache, 'HIT-MEM')
  await next(7, 8)
  await until(() => up.count(SEG(8)) === 1)
  t.equal(await prefetches(edge.url, 'started'), 2)
  t.equal(await prefetches(edge.url, 'used'), 1)
})

t.test('wasted: a prefetched object evicted before the player asks', async (t) => {
  const up = await startUpstream(t, segments(8))
  const edge = await startEdge(t, { upstream: up.url, memorySize: 4000, diskSize: 4000 })
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=v,nor="seg-00002.m4s"')}`)
  await until(() => up.count(SEG(2)) === 1)
  await settled(edge)
  for (let i = 3; i <= 8; i++) {
    await get(edge.url + SEG(i))
    await settled(edge)
  }
  t.notOk(edge.app.edge.store.has(SEG(2)), 'evicted')
  t.equal(await prefetches(edge.url, 'wasted'), 1)
  t.equal(await prefetches(edge.url, 'used'), 0)
})

t.test('prefetch off: CMCD still read and counted, nothing fetched', async (t) => {
  const up = await startUpstream(t, segments(2))
  const edge = await startEdge(t, { upstream: up.url, prefetchConcurrency: 0 })
  await get(`${edge.url}${SEG(1)}?${cmcd('ot=v,nor="seg-00002.m4s"')}`)
  await settled(edge)
  t.equal(up.count(SEG(2)), 0)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_cmcd_requests_total', { result: 'valid' }), 1)
})

t.test('readCmcd and isSegment: the strict checks', async (t) => {
  t.equal(readCmcd(undefined, {}), undefined, 'none sent')
  t.same(readCmcd('nor=("a.m4s" "b.m4s"),ot=v,v=2', undefined), { nor: 'a.m4s', ot: 'v' }, 'v2 inner list')
  t.same(readCmcd('br=3200,bl=100,su,sid="x",sta=p', undefined), {
    br: 3200,
    bl: 100,
    su: true,
    sid: 'x',
    sta: 'p',
  })
  t.same(
    readCmcd('nor="..%2F..%2Fv1%2F480p%2Fseg-00002.m4s",ot=av', undefined),
    { nor: '../../v1/480p/seg-00002.m4s', ot: 'av' },
    'nor is URL-decoded (as hls.js encodes it)',
  )
  t.equal(readCmcd('nor="%E0%A4%A"', undefined), 'malformed', 'a bad escape')
  t.equal(readCmcd('bl=-5', undefined), 'malformed')
  t.equal(readCmcd(`nor="${'a'.repeat(2000)}"`, undefined), 'malformed')
  t.ok(isSegment('/vod/a/v1/720p/seg-00001.m4s', undefined))
  t.ok(isSegment('/vod/a/v1/720p/seg-00001.ts', 'av'))
  t.notOk(isSegment('/vod/a/v1/720p/init.mp4', undefined), 'init segment by name')
  t.notOk(isSegment('/vod/a/v1/720p/seg-00001.m4s', 'i'), 'init by object type')
  t.notOk(isSegment('/vod/a/v1/720p/index.m3u8', undefined))
})

t.test('a player walking a rendition: every segment after the first is prefetched and used', async (t) => {
  const N = 20
  const up = await startUpstream(t, segments(N))
  const edge = await startEdge(t, { upstream: up.url })
  const caches: (string | null)[] = []
  for (let i = 1; i <= N; i++) {
    // As hls.js sends it: relative, URL-encoded inside the string.
    const next = encodeURIComponent(`../720p/seg-${String(i + 1).padStart(5, '0')}.m4s`)
    const nor = i < N ? `,nor="${next}"` : ''
    caches.push((await get(`${edge.url}${SEG(i)}?${cmcd(`ot=v,br=3200,bl=${i * 4000}${nor}`)}`)).cache)
    // A player asks for the next segment a segment's duration later: the prefetch has landed.
    await settled(edge)
  }
  await settled(edge)
  const hits = caches.filter((c) => c === 'HIT-MEM').length
  const late = await prefetches(edge.url, 'late')
  const used = await prefetches(edge.url, 'used')
  t.comment(`${N} segments: ${hits} hits, ${late} joined a prefetch in flight, ${used} prefetched and used`)
  t.equal(caches[0], 'MISS', 'the first segment is a miss')
  t.equal(hits, N - 1, 'every later segment was prefetched: a hit')
  t.equal(used, N - 1)
  t.equal(late, 0)
  t.equal(await prefetches(edge.url, 'wasted'), 0)
  for (let i = 1; i <= N; i++) t.equal(up.count(SEG(i)), 1, `segment ${i} fetched once`)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_prefetch_upstream_bytes_total'), (N - 1) * SIZE)
})
