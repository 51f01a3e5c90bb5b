/**
 * A client's own Cache-Control (RFC 9111 §5.2.1) against a real edge and an upstream on
 * loopback that records every request: max-stale and only-if-cached always obeyed, no-cache /
 * max-age / min-fresh / Pragma ignored by default and obeyed with --client-freshness obey
 * (edge/cache/request-directives.ts). A manual clock ages the copies.
 */
import t, { type Test } from 'tap'
import { requestDirectives, reuseOf } from '../../edge/cache/request-directives.js'
import { describe as freshnessOf } from '../../edge/cache/freshness.js'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { get } from './http-get.js'
import { type Answer, type Received, startEchoUpstream } from './upstream-server.js'

/** An upstream dated by the test's clock: `cc` by path, ETag "v1", 304 to a matching If-None-Match. */
async function upstream(t: Test, clock: ManualClock, cc: (path: string) => string) {
  return startEchoUpstream(t, (r: Received): Answer => {
    const headers = { date: new Date(clock.now()).toUTCString(), 'cache-control': cc(r.url), etag: '"v1"' }
    if (r.headers['if-none-match'] === '"v1"') return { status: 304, headers, body: '' }
    return { headers }
  })
}

t.test(
  'by default a client cannot send a fresh copy upstream; max-stale and only-if-cached count',
  async (t) => {
    const clock = new ManualClock(Date.now())
    const up = await upstream(t, clock, () => 'max-age=60')
    const edge = await startEdge(t, { upstream: up.url, id: 'e', clock })
    const url = `${edge.url}/vod/t/a.m4s`
    t.equal((await get(url)).h('x-cache'), 'MISS')
    await settled(edge)
    clock.advance(10_000)
    const asks: Record<string, string>[] = [
      { 'cache-control': 'no-cache' },
      { 'cache-control': 'max-age=0' },
      { 'cache-control': 'min-fresh=3600' },
      { pragma: 'no-cache' },
    ]
    for (const h of asks) {
      const r = await get(url, h)
      t.equal(r.h('x-cache'), 'HIT-MEM', `${JSON.stringify(h)} is served the stored copy`)
      t.equal(r.h('cache-status'), 'e;hit;ttl=50')
    }
    t.equal(up.at('/vod/t/a.m4s').length, 1, 'the upstream was asked once')

    // only-if-cached: a copy held is served, nothing held is a 504 and nothing goes upstream.
    t.equal((await get(url, { 'cache-control': 'only-if-cached' })).h('x-cache'), 'HIT-MEM')
    const none = await get(`${edge.url}/vod/t/none.m4s`, { 'cache-control': 'only-if-cached' })
    t.equal(none.status, 504)
    t.match(JSON.parse(none.body), { error: { code: 'CDN_ERR_NOT_CACHED' } })
    t.equal(up.at('/vod/t/none.m4s').length, 0, 'only-if-cached never goes upstream')

    // Stale by 5 s: without max-stale it is revalidated; only-if-cached alone gets a 504.
    clock.advance(55_000)
    const stale = await get(url, { 'cache-control': 'only-if-cached' })
    t.equal(stale.status, 504, 'a stale copy is not usable for only-if-cached')
    t.equal(up.at('/vod/t/a.m4s').length, 1)
    const tight = await get(url, { 'cache-control': 'max-stale=3' })
    t.equal(tight.h('x-cache'), 'REVALIDATED', 'max-stale=3 does not cover 5 s of staleness')
    t.equal(up.at('/vod/t/a.m4s')[1]?.headers['if-none-match'], '"v1"')
    await settled(edge)

    clock.advance(65_000)
    const loose = await get(url, { 'cache-control': 'max-stale=10, only-if-cached' })
    t.equal(loose.status, 200)
    t.equal(loose.h('x-cache'), 'STALE', 'max-stale=10 accepts 5 s of staleness')
    t.equal(loose.h('cache-status'), 'e;hit;ttl=-5')
    t.equal(loose.h('age'), '65')
    await settled(edge)
    t.equal(up.at('/vod/t/a.m4s').length, 3, 'and the copy is refreshed in the background')
    t.equal((await get(url)).h('x-cache'), 'HIT-MEM', 'fresh again')

    clock.advance(3_600_000)
    t.equal(
      (await get(url, { 'cache-control': 'max-stale' })).h('x-cache'),
      'STALE',
      'bare max-stale: any staleness',
    )
  },
)

t.test('max-stale never serves what the response forbids to serve stale', async (t) => {
  const clock = new ManualClock(Date.now())
  const cc: Record<string, string> = {
    must: 'max-age=10, must-revalidate',
    proxy: 'max-age=10, proxy-revalidate, stale-while-revalidate=60',
    shared: 's-maxage=10, stale-if-error=60',
    nocache: 'max-age=10, no-cache',
    plain: 'max-age=10',
  }
  const up = await upstream(t, clock, (p) => cc[p.slice('/vod/t/'.length, -'.m4s'.length)]!)
  const edge = await startEdge(t, { upstream: up.url, clock })
  for (const name of Object.keys(cc)) await get(`${edge.url}/vod/t/${name}.m4s`)
  await settled(edge)
  clock.advance(15_000)
  const got: Record<string, string | undefined> = {}
  for (const name of Object.keys(cc))
    got[name] = (await get(`${edge.url}/vod/t/${name}.m4s`, { 'cache-control': 'max-stale' })).h('x-cache')
  t.same(got, {
    must: 'REVALIDATED',
    proxy: 'REVALIDATED',
    shared: 'REVALIDATED',
    nocache: 'REVALIDATED',
    plain: 'STALE',
  })
})

t.test(
  '--client-freshness obey: no-cache, max-age, min-fresh and Pragma revalidate a fresh copy',
  async (t) => {
    const clock = new ManualClock(Date.now())
    const up = await upstream(t, clock, () => 'max-age=60')
    const edge = await startEdge(t, { upstream: up.url, id: 'e', clock, clientFreshness: 'obey' })
    const url = `${edge.url}/vod/t/a.m4s`
    await get(url)
    await settled(edge)
    clock.advance(10_000)
    const asked = () => up.at('/vod/t/a.m4s').length
    const cases: [Record<string, string>, string][] = [
      [{ 'cache-control': 'no-cache' }, 'REVALIDATED'],
      [{ pragma: 'no-cache' }, 'REVALIDATED'],
      [{ 'cache-control': 'max-age=30' }, 'HIT-MEM'],
      [{ 'cache-control': 'max-age=5' }, 'REVALIDATED'],
      [{ 'cache-control': 'min-fresh=40' }, 'HIT-MEM'],
      [{ 'cache-control': 'min-fresh=55' }, 'REVALIDATED'],
      // Cache-Control present: Pragma is not read (RFC 9111 §5.4).
      [{ 'cache-control': 'max-stale', pragma: 'no-cache' }, 'HIT-MEM'],
    ]
    for (const [headers, want] of cases) {
      const before = asked()
      const r = await get(url, headers)
      await settled(edge)
      t.equal(r.h('x-cache'), want, JSON.stringify(headers))
      t.equal(asked() - before, want === 'REVALIDATED' ? 1 : 0, 'upstream requests')
      if (want === 'REVALIDATED') {
        t.equal(up.received.at(-1)?.headers['if-none-match'], '"v1"', 'with the stored validator')
        t.equal(r.h('cache-status'), 'e;fwd=request;fwd-status=304;ttl=60;stored')
        // The revalidation made the copy new: age back to 0 before the next case ages it.
        clock.advance(10_000)
      }
    }
  },
)

t.test(
  'the upstream failing while a client revalidates a fresh copy: the fresh copy is served',
  async (t) => {
    const clock = new ManualClock(Date.now())
    let fail = false
    const up = await startEchoUpstream(t, () =>
      fail
        ? { status: 503, body: 'down' }
        : {
            headers: {
              date: new Date(clock.now()).toUTCString(),
              'cache-control': 's-maxage=60',
              etag: '"v1"',
            },
          },
    )
    const edge = await startEdge(t, { upstream: up.url, clock, clientFreshness: 'obey', upstreamMaxFails: 0 })
    const url = `${edge.url}/vod/t/a.m4s`
    await get(url)
    await settled(edge)
    fail = true
    const r = await get(url, { 'cache-control': 'no-cache' })
    t.equal(r.status, 200, 'fresh, so serving it breaks no must-revalidate rule')
    t.equal(r.h('x-cache'), 'STALE')
    t.equal(up.received.length, 2)
    clock.advance(61_000)
    t.equal((await get(url)).status, 503, 'once stale, s-maxage forbids serving it on error')
  },
)

t.test('request directives parse as RFC 9111 says', async (t) => {
  t.same(requestDirectives({ 'cache-control': 'max-age=5, max-age=9, MAX-STALE, min-fresh="7"' }), {
    noCache: false,
    onlyIfCached: false,
    maxAge: 5,
    maxStale: Infinity,
    minFresh: 7,
  })
  t.same(requestDirectives({ 'cache-control': 'max-stale=x, max-age=-1' }), {
    noCache: false,
    onlyIfCached: false,
  })
  t.equal(requestDirectives({ pragma: 'x, no-cache' }).noCache, true)
  t.equal(requestDirectives({ pragma: 'x' }).noCache, false)
  t.equal(requestDirectives({ 'cache-control': ['no-cache', 'only-if-cached'] }).onlyIfCached, true)
  // obey: max-age over a stale copy with max-stale still wants it no older than max-age.
  const f = freshnessOf(200, { 'cache-control': 'max-age=10', date: new Date(0).toUTCString() }, 0, 0, 0)
  t.equal(
    reuseOf(f, 15_000, requestDirectives({ 'cache-control': 'max-stale, max-age=12' }), 'obey'),
    'must-revalidate',
  )
  t.equal(
    reuseOf(f, 15_000, requestDirectives({ 'cache-control': 'max-stale, max-age=12' }), 'ignore'),
    'stale-allowed',
  )
  t.equal(
    reuseOf(f, 15_000, requestDirectives({ 'cache-control': 'max-stale, no-cache' }), 'obey'),
    'must-revalidate',
  )
})
