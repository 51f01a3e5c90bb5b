/**
 * Response directives of RFC 9111 §5.2.2 on a real edge in front of an upstream on loopback
 * that records every request: qualified private / no-cache (the named fields reach only the
 * clients of the fetch that received them, never a hit), must-understand, proxy-revalidate and
 * s-maxage (never served stale, whatever stale-if-error / stale-while-revalidate / max-stale
 * say), no-transform (in Cache-Control or a targeted field). A manual clock ages the copies.
 */
import t from 'tap'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { startEchoUpstream } from './upstream-server.js'

t.test(
  "qualified private and no-cache: the named fields go to the fetch's clients only, never stored",
  async (t) => {
    let open: () => void = () => undefined
    const gate = new Promise<void>((r) => (open = r))
    const up = await startEchoUpstream(t, () => ({
      headers: {
        'cache-control': 'max-age=60, private="X-User, Set-Cookie", no-cache="x-token"',
        'x-user': 'alice',
        'set-cookie': 'session=alice',
        'x-token': 't1',
        'content-type': 'text/plain',
      },
      gate,
    }))
    const edge = await startEdge(t, { upstream: up.url })
    const url = `${edge.url}/vod/t/a.m4s`
    const first = get(url)
    await until(() => up.received.length === 1)
    const second = get(url)
    await until(() => edge.app.edge.flights.current('/vod/t/a.m4s')?.sinks.size === 2)
    open()
    const [a, b] = await Promise.all([first, second])
    t.equal(a.h('x-cache'), 'MISS')
    t.same(
      [a.h('x-user'), a.h('set-cookie'), a.h('x-token')],
      ['alice', 'session=alice', 't1'],
      'the requester gets its own fields',
    )
    t.equal(b.h('x-cache'), 'COALESCED')
    t.same(
      [b.h('x-user'), b.h('set-cookie'), b.h('x-token')],
      [undefined, undefined, 't1'],
      "a joiner: not alice's fields, the fresh no-cache one",
    )
    await settled(edge)
    const hit = await get(url)
    t.equal(hit.h('x-cache'), 'HIT-MEM', 'the rest of the answer is stored')
    t.same(
      [hit.h('x-user'), hit.h('set-cookie'), hit.h('x-token')],
      [undefined, undefined, undefined],
      'a hit has none',
    )
    t.equal(hit.h('content-type'), 'text/plain')
    t.equal(up.received.length, 1)
  },
)

t.test(
  'must-understand: stored for a status this cache implements (no-store then ignored), never otherwise',
  async (t) => {
    const up = await startEchoUpstream(t, (r) =>
      r.url.endsWith('ok.m4s')
        ? { headers: { 'cache-control': 'no-store, must-understand, max-age=60' } }
        : { status: 503, headers: { 'cache-control': 'no-store, must-understand, max-age=60' } },
    )
    // --error-ttl stores 5xx for the operator, which is no rule of RFC 9111 for that status.
    const edge = await startEdge(t, { upstream: up.url, errorTtl: 60_000, upstreamMaxFails: 0 })
    const xc = async (p: string) => {
      const r = await get(`${edge.url}${p}`)
      await settled(edge)
      return r.h('x-cache')
    }
    t.same([await xc('/vod/t/ok.m4s'), await xc('/vod/t/ok.m4s')], ['MISS', 'HIT-MEM'])
    t.same([await xc('/vod/t/err.m4s'), await xc('/vod/t/err.m4s')], ['MISS', 'MISS'])
    t.equal(up.at('/vod/t/err.m4s').length, 2)
  },
)

t.test(
  'proxy-revalidate and s-maxage: never served stale, even with stale-if-error or max-stale',
  async (t) => {
    const clock = new ManualClock(Date.now())
    let failing = false
    const cc: Record<string, string> = {
      proxy: 'max-age=10, proxy-revalidate, stale-if-error=600, stale-while-revalidate=600',
      shared: 's-maxage=10, max-age=600, stale-if-error=600, stale-while-revalidate=600',
      plain: 'max-age=10, stale-if-error=600',
    }
    const up = await startEchoUpstream(t, (r) => {
      const name = r.url.slice('/vod/t/'.length, -'.m4s'.length)
      if (failing) return { status: 503, body: 'down' }
      return { headers: { date: new Date(clock.now()).toUTCString(), 'cache-control': cc[name]! } }
    })
    const edge = await startEdge(t, { upstream: up.url, clock, upstreamMaxFails: 0 })
    for (const name of Object.keys(cc)) await get(`${edge.url}/vod/t/${name}.m4s`)
    await settled(edge)
    clock.advance(15_000)
    failing = true
    // First stale-if-error alone (the upstream answers 503), then with the client's max-stale too.
    const asks: Record<string, string>[] = [{}, { 'cache-control': 'max-stale' }]
    for (const ask of asks) {
      const got: Record<string, [number, string | undefined]> = {}
      for (const name of Object.keys(cc)) {
        const r = await get(`${edge.url}/vod/t/${name}.m4s`, ask)
        got[name] = [r.status, r.h('x-cache')]
      }
      await settled(edge)
      t.same(got, { proxy: [503, 'MISS'], shared: [503, 'MISS'], plain: [200, 'STALE'] }, JSON.stringify(ask))
    }
    t.same(
      up.received.map((r) => r.url.slice('/vod/t/'.length, -'.m4s'.length)),
      [...Object.keys(cc), ...Object.keys(cc), ...Object.keys(cc)],
      'each stale copy was asked for upstream every time (plain: in the background under max-stale)',
    )
  },
)

t.test(
  'no-transform, in Cache-Control or a targeted field: a playlist passes byte for byte, whatever the client accepts',
  async (t) => {
    const playlist = '#EXTM3U\n#EXT-X-VERSION:7\n' + '#EXTINF:4.0,\nseg.m4s\n'.repeat(200)
    const fields: Record<string, Record<string, string>> = {
      'cache-control': { 'cache-control': 'max-age=60, no-transform' },
      'cdn-cache-control': { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age=60, no-transform' },
      'opencdn-cache-control': {
        'cache-control': 'max-age=60',
        'opencdn-cache-control': 'no-transform, max-age=60',
      },
    }
    const up = await startEchoUpstream(t, (r) => ({
      headers: { ...fields[r.url.split('/')[3]!], 'content-type': 'application/vnd.apple.mpegurl' },
      body: playlist,
    }))
    const edge = await startEdge(t, { upstream: up.url })
    const memory = (edge.app.edge.store as TieredStore).memory
    for (const field of Object.keys(fields)) {
      const url = `${edge.url}/vod/t/${field}/index.m3u8`
      for (const want of ['MISS', 'HIT-MEM']) {
        const r = await get(url, { 'accept-encoding': 'gzip, br' })
        // Stored (memory begins an encoding as it takes an object), and any encoding done.
        await settled(edge)
        await until(() => memory.encoder.running === 0)
        t.equal(r.h('x-cache'), want, field)
        t.equal(r.h('content-encoding'), undefined, `${field}: not encoded (${want})`)
        t.equal(r.h('content-type'), 'application/vnd.apple.mpegurl')
        t.equal(r.h('content-length'), String(playlist.length))
        t.equal(r.body, playlist)
      }
      const entry = memory.getInMemory(`/vod/t/${field}/index.m3u8`)
      t.ok(entry, `${field}: held in memory`)
      t.equal(entry?.encoded, undefined, `${field}: no encoded form kept`)
    }
    t.equal(memory.encoder.encoded, 0, 'nothing was encoded')
  },
)
