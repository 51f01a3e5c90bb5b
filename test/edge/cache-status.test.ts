/**
 * Cache-Status (RFC 9211) on what the edge serves: one member per edge in the chain, the
 * upstream's kept and ours appended, with hit / fwd / fwd-status / ttl / stored / collapsed as
 * the request went (edge/cache/cache-status.ts). Real upstreams on loopback, a manual clock.
 */
import { parseList } from 'structured-headers'
import t from 'tap'
import { CacheStatus } from '../../edge/cache/cache-status.js'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { type Answer, startEchoUpstream } from './upstream-server.js'
import { get as rawGet } from './http-get.js'

/** The status, Cache-Status and X-Cache of one request with exactly these fields. */
async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await rawGet(url, headers, method, method === 'POST' ? 'beacon' : undefined)
  return { status: r.status, status_: r.h('cache-status'), xCache: r.h('x-cache'), body: r.body }
}

/** Answers dated by the test's clock, so ages (and ttls) are the clock's. */
function dated(clock: ManualClock, a: Answer): Answer {
  return { ...a, headers: { date: new Date(clock.now()).toUTCString(), ...a.headers } }
}

t.test('misses, hits (raw and through node), ranges, HEAD and 304 say what the edge did', async (t) => {
  const clock = new ManualClock(Date.now())
  const up = await startEchoUpstream(t, () =>
    dated(clock, { headers: { 'cache-control': 'max-age=60', etag: '"v1"' } }),
  )
  const edge = await startEdge(t, { upstream: up.url, id: 'edge-a', clock })
  const url = `${edge.url}/vod/t/a.m4s`
  const miss = await get(url)
  t.equal(miss.status_, 'edge-a;fwd=uri-miss;fwd-status=200;ttl=60;stored')
  t.equal(miss.xCache, 'MISS', 'X-Cache stays')
  await settled(edge)
  const rawBefore = edge.app.edge.raw!.answered
  // fetch keeps its connection alive: a plain hit on it is the raw path's (node's http client asks close).
  const raw = await fetch(url)
  await raw.arrayBuffer()
  t.equal(raw.headers.get('cache-status'), 'edge-a;hit;ttl=60')
  t.equal(edge.app.edge.raw!.answered, rawBefore + 1, 'that hit was answered on the raw path')
  t.equal((await get(url)).status_, 'edge-a;hit;ttl=60', 'the same through node')
  clock.advance(10_000)
  t.equal((await get(url)).status_, 'edge-a;hit;ttl=50', 'the ttl left, per second')
  t.equal((await get(url, { range: 'bytes=0-1' })).status_, 'edge-a;hit;ttl=50', 'a 206 from the cache')
  t.equal((await get(url, { 'if-none-match': '"v1"' })).status_, 'edge-a;hit;ttl=50', 'a 304')
  t.equal((await get(url, {}, 'HEAD')).status_, 'edge-a;hit;ttl=50')
  t.equal((await get(url, { range: 'bytes=999-' })).status, 416)
  t.equal(
    (await get(url, { range: 'bytes=999-' })).status_,
    'edge-a;hit;ttl=50',
    'a 416 about a stored object',
  )
  for (const v of [miss.status_!]) t.ok(parseList(v), 'a valid Structured Fields list')
})

t.test('a variant not held while others of its URL are: fwd=vary-miss (RFC 9211 2.2)', async (t) => {
  const clock = new ManualClock(Date.now())
  const up = await startEchoUpstream(t, () =>
    dated(clock, { headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' } }),
  )
  const edge = await startEdge(t, { upstream: up.url, clock })
  const url = `${edge.url}/vod/t/lang.m4s`
  const first = await get(url, { 'accept-language': 'it' })
  t.equal(first.status_, 'edge;fwd=uri-miss;fwd-status=200;ttl=60;stored', 'nothing held for the URL')
  await settled(edge)
  const other = await get(url, { 'accept-language': 'en' })
  t.equal(
    other.status_,
    'edge;fwd=vary-miss;fwd-status=200;ttl=60;stored',
    "the URL's answer was held, but not for this request's Accept-Language",
  )
  await settled(edge)
  t.equal((await get(url, { 'accept-language': 'en' })).status_, 'edge;hit;ttl=60')
  t.equal(up.received.length, 2)
})

t.test('not stored, coalesced, revalidated, stale, failed: each says so', async (t) => {
  const clock = new ManualClock(Date.now())
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  let failing = false
  const up = await startEchoUpstream(t, (r) => {
    if (r.url.endsWith('/nostore.m4s')) return { headers: { 'cache-control': 'no-store' } }
    if (r.url.endsWith('/held.m4s')) return dated(clock, { headers: { 'cache-control': 'max-age=60' }, gate })
    if (r.url.endsWith('/swr.m4s'))
      return dated(clock, { headers: { 'cache-control': 'max-age=1, stale-while-revalidate=60' } })
    if (failing) return { status: 503, headers: { 'cache-control': 'no-store' } }
    if (r.headers['if-none-match'] === '"v1"') return dated(clock, { status: 304, headers: { etag: '"v1"' } })
    return dated(clock, {
      headers: { 'cache-control': 'max-age=1, stale-if-error=600', etag: '"v1"' },
    })
  })
  const edge = await startEdge(t, { upstream: up.url, clock, upstreamMaxFails: 0 })

  t.equal((await get(`${edge.url}/vod/t/nostore.m4s`)).status_, 'edge;fwd=uri-miss;fwd-status=200')

  const first = get(`${edge.url}/vod/t/held.m4s`)
  await until(() => up.at('/vod/t/held.m4s').length === 1)
  const second = get(`${edge.url}/vod/t/held.m4s`)
  await until(async () => (await metricAt(`${edge.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) === 1)
  release()
  t.equal((await first).status_, 'edge;fwd=uri-miss;fwd-status=200;ttl=60;stored')
  t.equal((await second).status_, 'edge;fwd=uri-miss;fwd-status=200;ttl=60;stored;collapsed')

  await get(`${edge.url}/vod/t/swr.m4s`)
  await settled(edge)
  clock.advance(3000)
  t.equal(
    (await get(`${edge.url}/vod/t/swr.m4s`)).status_,
    'edge;hit;ttl=-2',
    'stale while revalidating: a hit',
  )
  await settled(edge)

  await get(`${edge.url}/vod/t/r.m4s`)
  await settled(edge)
  clock.advance(2000)
  const revalidated = await get(`${edge.url}/vod/t/r.m4s`)
  t.equal(revalidated.xCache, 'REVALIDATED')
  t.equal(revalidated.status_, 'edge;fwd=stale;fwd-status=304;ttl=1;stored')
  await settled(edge)
  clock.advance(2000)
  failing = true
  const stale = await get(`${edge.url}/vod/t/r.m4s`)
  t.equal(stale.xCache, 'STALE')
  t.equal(stale.status_, 'edge;fwd=stale;fwd-status=503;ttl=-1', 'served stale because the upstream failed')
  const failed = await get(`${edge.url}/vod/t/never.m4s`)
  t.equal(failed.status, 503)
  t.equal(failed.status_, 'edge;fwd=uri-miss;fwd-status=503')
})

t.test("an upstream's Cache-Status is kept before ours, an invalid one dropped", async (t) => {
  const up = await startEchoUpstream(t, (r) => ({
    headers: {
      'cache-control': 'max-age=60',
      'cache-status': r.url.endsWith('/bad.m4s') ? '"unterminated' : 'OriginShield; hit; ttl=30',
    },
  }))
  const edge = await startEdge(t, { upstream: up.url })
  t.match((await get(`${edge.url}/vod/t/ok.m4s`)).status_, /^OriginShield;hit;ttl=30, edge;fwd=uri-miss;/)
  t.match((await get(`${edge.url}/vod/t/bad.m4s`)).status_, /^edge;fwd=uri-miss;/)
  await settled(edge)
  t.match((await get(`${edge.url}/vod/t/ok.m4s`)).status_, /^OriginShield;hit;ttl=30, edge;hit;ttl=\d+$/)
})

t.test('two tiers: the child shows the parent edge and itself; the origin sees both in Via', async (t) => {
  const clock = new ManualClock(Date.now())
  const origin = await startEchoUpstream(t, () =>
    dated(clock, { headers: { 'cache-control': 'max-age=60' } }),
  )
  const parent = await startEdge(t, {
    upstream: origin.url,
    id: 'parent',
    clock,
    trustedProxy: ['127.0.0.1'],
  })
  const child = await startEdge(t, { upstream: parent.url, id: 'child', clock })
  const miss = await get(`${child.url}/vod/t/a.m4s`, { 'x-forwarded-for': '203.0.113.9' })
  t.equal(
    miss.status_,
    'parent;fwd=uri-miss;fwd-status=200;ttl=60;stored, child;fwd=uri-miss;fwd-status=200;ttl=60;stored',
  )
  const seen = origin.at('/vod/t/a.m4s')[0]!.headers
  t.equal(seen.via, '1.1 child, 1.1 parent')
  t.equal(
    seen['x-forwarded-for'],
    '127.0.0.1, 127.0.0.1',
    "the client's forged address is gone; the child's kept",
  )
  await settled(child)
  await settled(parent)
  clock.advance(5000)
  t.equal(
    (await get(`${child.url}/vod/t/a.m4s`)).status_,
    'parent;fwd=uri-miss;fwd-status=200;ttl=60;stored, child;hit;ttl=55',
    "the parent's member as stored, ours for this hit",
  )
})

t.test('a relayed method says fwd=bypass', async (t) => {
  const up = await startEchoUpstream(t, () => ({ status: 201 }))
  const edge = await startEdge(t, { upstream: up.url, passThrough: ['POST'], publicPath: ['/beacon'] })
  t.equal((await get(`${edge.url}/beacon`, {}, 'POST')).status_, 'edge;fwd=bypass')
})

t.test('the cache name is a token when it can be, else a string', async (t) => {
  t.equal(new CacheStatus('edge-rome-1').hit(5), 'edge-rome-1;hit;ttl=5')
  t.equal(new CacheStatus('1st').hit(-3), '"1st";hit;ttl=-3')
  t.equal(new CacheStatus('e').forwarded({ fwd: 'uri-miss', stored: false }), 'e;fwd=uri-miss')
  t.equal(new CacheStatus('e').bypass, 'e;fwd=bypass')
  t.ok(parseList(new CacheStatus('1st').hit(1e20)), 'a huge ttl is clamped to an sf-integer')
})

t.test('an answer longer than both tiers hold is not said to be stored', async (t) => {
  const body = 'x'.repeat(300_000)
  const up = await startEchoUpstream(t, () => ({ headers: { 'cache-control': 'max-age=60' }, body }))
  // Memory entries and the disk tier both under 300 KB; --max-object-size (its default) above it.
  const edge = await startEdge(t, { upstream: up.url, id: 'edge-a', memorySize: 100e3, diskSize: 200e3 })
  const url = `${edge.url}/vod/t/big.m4s`
  const miss = await get(url)
  t.equal(miss.body.length, body.length, 'served whole')
  t.equal(miss.status_, 'edge-a;fwd=uri-miss;fwd-status=200', 'no `stored`: neither tier can hold it')
  await settled(edge)
  const disk = edge.app.edge.store.stats().disk!
  t.equal(disk.objects, 0, 'nothing stored on disk')
  t.equal(edge.app.edge.store.stats().diskErrors ?? 0, 0)
  t.match((await get(url)).status_, /fwd=uri-miss/, 'the next request goes upstream again')
})
