/**
 * Every miss explained (edge/miss/ledger.ts): each cause produced by a real scenario, a real
 * edge in front of a real upstream on loopback (and real steering, for health), counted in
 * /metrics, in /status and named in the access log.
 */
import t, { type Test } from 'tap'
import type { EdgeConfig } from '../../edge/config/spec.js'
import { MISS_CAUSES } from '../../edge/miss/ledger.js'
import { type Clock, ManualClock } from '../../src/clock.js'
import { loggedEdge, settled, startEdge } from '../helpers/edge.js'
import { PLACES, startSteering } from '../helpers/steering.js'
import { metricAt, until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, startUpstream } from './upstream-server.js'

const SEG = (title: string, n: number) => `/vod/${title}/v1/720p/seg-${String(n).padStart(5, '0')}.m4s`

/** An edge whose access log the test reads. */
const accessLogged = (t: Test, over: Partial<EdgeConfig> & { upstream: string[] }, clock?: Clock) =>
  loggedEdge(t, { accessLog: true, ...over }, clock)

const misses = (url: string, cause: string) => metricAt(`${url}/metrics`, 'cdn_edge_misses_total', { cause })

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers })
  const body = Buffer.from(await r.arrayBuffer())
  return { status: r.status, cache: r.headers.get('x-cache'), body }
}

function segmentRoute(size: number, cacheControl = IMMUTABLE) {
  return (_req: unknown, reply: { header(k: string, v: string): typeof reply; send(b: Buffer): void }) =>
    reply
      .header('cache-control', cacheControl)
      .header('content-type', 'video/iso.segment')
      .send(pattern(size))
}

t.test('every cause is exported at 0 from the start', async (t) => {
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url })
  const text = await (await fetch(`${edge.url}/metrics`)).text()
  for (const c of MISS_CAUSES) t.match(text, new RegExp(`cdn_edge_misses_total\\{cause="${c}"\\} 0\\n`), c)
  for (const r of ['down', 'overloaded'])
    t.match(text, new RegExp(`cdn_edge_steered_requests_total\\{reason="${r}"\\} 0\\n`), r)
})

t.test('content, then a hit; the access log names the cause of the miss only', async (t) => {
  const up = await startUpstream(t, { [SEG('c', 1)]: segmentRoute(2000) })
  const edge = await accessLogged(t, { upstream: [up.url] })
  t.equal((await get(edge.url + SEG('c', 1))).cache, 'MISS')
  await settled({ ...edge, cacheDir: '' })
  t.equal((await get(edge.url + SEG('c', 1))).cache, 'HIT-MEM')
  t.equal(await misses(edge.url, 'content'), 1)
  const access = edge.logs.filter((l) => l.msg === 'access')
  t.same(
    access.map((l) => [l.cache, l.miss]),
    [
      ['MISS', 'content'],
      ['HIT-MEM', undefined],
    ],
  )
  const status = (await (await fetch(`${edge.url}/status`)).json()) as {
    demand: { misses: Record<string, number> }
  }
  t.equal(status.demand.misses.content, 1, '/status has the split too')
})

t.test(
  'capacity: the default (demand) policy evicts the least demanded object, which misses as capacity',
  async (t) => {
    // Objects too large for memory's share of 4,000 bytes: disk only, and the disk holds two.
    const paths = [SEG('a', 1), SEG('b', 1), SEG('c', 1), SEG('z', 300)]
    const up = await startUpstream(t, Object.fromEntries(paths.map((p) => [p, segmentRoute(1500)])))
    const edge = await startEdge(t, { upstream: up.url, memorySize: 4000, diskSize: 4000 })
    const store = edge.app.edge.store
    const step = async (path: string, cache: string) => {
      t.equal((await get(edge.url + path)).cache, cache, `${path}: ${cache}`)
      await settled(edge)
    }
    // Title a started twice, then b once: the disk is full, a the least recently used.
    await step(SEG('a', 1), 'MISS')
    await step(SEG('a', 1), 'HIT-DISK')
    await step(SEG('b', 1), 'MISS')
    t.ok(store.has(SEG('a', 1)) && store.has(SEG('b', 1)), 'both on disk')
    // A third title starts: admitted (as many starts as b, and later), and b goes, not a.
    await step(SEG('c', 1), 'MISS')
    t.ok(store.has(SEG('c', 1)), 'the new start admitted')
    t.ok(store.has(SEG('a', 1)), 'the title started twice stays, though least recently used')
    t.notOk(store.has(SEG('b', 1)), 'the least demanded evicted')
    t.equal(await misses(edge.url, 'content'), 3)
    await step(SEG('b', 1), 'MISS')
    t.equal(await misses(edge.url, 'capacity'), 1, 'held and evicted: capacity')
    t.equal(await misses(edge.url, 'content'), 3, 'not content')
    // Segment 300 of a title nobody started: refused by the disk and too large for memory, so it
    // was never held here, and its next request is a content miss again, not capacity.
    await step(SEG('z', 300), 'MISS')
    t.notOk(store.has(SEG('z', 300)), 'refused')
    await step(SEG('z', 300), 'MISS')
    t.equal(await misses(edge.url, 'content'), 5)
    t.equal(await misses(edge.url, 'capacity'), 1)
  },
)

t.test(
  'capacity under LRU, every miss to disk: each object held and evicted misses as capacity',
  async (t) => {
    const routes: Record<string, ReturnType<typeof segmentRoute>> = {}
    for (let i = 1; i <= 8; i++) routes[SEG('cap', i)] = segmentRoute(1500)
    const up = await startUpstream(t, routes)
    const edge = await startEdge(t, {
      upstream: up.url,
      memorySize: 4000,
      diskSize: 4000,
      diskEviction: 'lru',
      diskAdmission: 'all',
    })
    for (let i = 1; i <= 8; i++) {
      t.equal((await get(edge.url + SEG('cap', i))).status, 200)
      await settled(edge)
    }
    t.equal(await misses(edge.url, 'content'), 8, 'eight first requests')
    const gone = Object.keys(routes).filter((p) => !edge.app.edge.store.has(p))
    t.ok(gone.length > 0, `the tiers evicted ${gone.length} objects`)
    for (const p of gone) t.equal((await get(edge.url + p)).cache, 'MISS')
    t.equal(await misses(edge.url, 'capacity'), gone.length, 'each evicted object misses as capacity')
    t.equal(await misses(edge.url, 'content'), 8, 'and none as content')
  },
)

t.test('freshness: an expired object refetched is a freshness miss', async (t) => {
  const clock = new ManualClock()
  const up = await startUpstream(t, { [SEG('f', 1)]: segmentRoute(1000, 'max-age=10') })
  const edge = await accessLogged(t, { upstream: [up.url] }, clock)
  await get(edge.url + SEG('f', 1))
  await until(() => edge.app.edge.flights.size === 0)
  t.equal((await get(edge.url + SEG('f', 1))).cache, 'HIT-MEM')
  clock.advance(20_000)
  const again = await get(edge.url + SEG('f', 1))
  t.equal(up.count(SEG('f', 1)), 2, 'fetched again')
  t.not(again.cache, 'HIT-MEM')
  t.equal(await misses(edge.url, 'freshness'), 1)
  t.equal(await misses(edge.url, 'content'), 1)
  t.equal(edge.logs.filter((l) => l.msg === 'access').at(-1)!.miss, 'freshness')
})

t.test('variant: the same path under another kept query parameter', async (t) => {
  const up = await startUpstream(t, { [SEG('v', 1)]: segmentRoute(1000) })
  const edge = await startEdge(t, { upstream: up.url, keepQueryParams: ['lang'] })
  await get(`${edge.url}${SEG('v', 1)}?lang=en`)
  await settled(edge)
  t.equal((await get(`${edge.url}${SEG('v', 1)}?lang=fr`)).cache, 'MISS')
  t.equal(await misses(edge.url, 'content'), 1)
  t.equal(await misses(edge.url, 'variant'), 1)
})

t.test('prefetch-late: the player asks for an object its prefetch is still fetching', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const up = await startUpstream(t, {
    [SEG('p', 1)]: segmentRoute(1000),
    [SEG('p', 2)]: async (_req, reply) => {
      await gate
      return reply.header('cache-control', IMMUTABLE).send(pattern(1000, 2))
    },
  })
  const edge = await startEdge(t, { upstream: up.url })
  const cmcd = encodeURIComponent('nor="seg-00002.m4s",ot=v,br=3000')
  t.equal((await get(`${edge.url}${SEG('p', 1)}?CMCD=${cmcd}`)).status, 200)
  await until(() => up.count(SEG('p', 2)) === 1)
  const late = get(edge.url + SEG('p', 2))
  await until(async () => (await misses(edge.url, 'prefetch-late')) === 1)
  release()
  const r = await late
  t.equal(r.status, 200)
  t.same(r.body, pattern(1000, 2))
  t.equal(r.cache, 'COALESCED', 'joined the prefetch')
  t.equal(up.count(SEG('p', 2)), 1, 'one upstream fetch')
  await settled(edge)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_prefetches_total', { result: 'late' }), 1)
})

t.test('health: steering sends the client elsewhere when its preferred edge is down', async (t) => {
  const master = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nv1/360p/index.m3u8\n'
  const up = await startUpstream(t, {
    // Fresh for the whole test: on the edges' real clock a 2 s lifetime, less up to a second
    // for the upstream's whole-second Date, could run out between the two requests below on a
    // busy machine (a revalidation: a second upstream request, the assertion's subject).
    '/vod/alpha/master.m3u8': (_req, reply) =>
      reply
        .header('cache-control', 'max-age=600')
        .header('content-type', 'application/vnd.apple.mpegurl')
        .send(master),
  })
  const edges = new Map<string, Awaited<ReturnType<typeof startEdge>>>()
  for (const id of ['rome-1', 'rome-2']) edges.set(id, await startEdge(t, { upstream: up.url, id }))
  const s = await startSteering(
    t,
    [...edges].map(([id, e]) => ({ id, url: e.url, site: 'rome', ...PLACES.rome })),
    { failAfter: 1, recoverAfter: 1 },
  )
  await s.health.checkNow()
  const play = async () => {
    const r = await fetch(`${s.url}/play/alpha/master.m3u8?region=rome`, { redirect: 'manual' })
    return { edge: r.headers.get('x-steering-edge')!, location: r.headers.get('location')! }
  }
  const first = await play()
  t.notMatch(first.location, /steered/, 'the preferred edge: no reason')
  await edges.get(first.edge)!.app.close()
  await s.health.checkNow()
  const moved = await play()
  t.not(moved.edge, first.edge)
  t.match(moved.location, /\/steered\/down\/vod\/alpha\/master\.m3u8$/)
  const other = edges.get(moved.edge)!
  for (let i = 0; i < 2; i++) t.equal((await get(moved.location)).status, 200)
  t.equal(await misses(other.url, 'health'), 1, 'its miss is a health miss')
  t.equal(await misses(other.url, 'content'), 0)
  t.equal(
    await metricAt(`${other.url}/metrics`, 'cdn_edge_steered_requests_total', { reason: 'down' }),
    2,
    'both requests served as the non-preferred edge',
  )
  t.equal(up.count('/vod/alpha/master.m3u8'), 1, 'the reason is not in the key nor sent upstream')
})
