/**
 * A 304 refreshes the stored response it revalidated, and only that one (RFC 9111 §4.3.4: the
 * validator selects what it updates): when a newer response was stored under the key while the
 * conditional request was out, the 304 leaves it as it is, never lending it the old validators.
 * A real upstream holds its 304 while the test stores the newer response; a manual clock.
 */
import { crc32 } from 'node:zlib'
import t from 'tap'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { startEchoUpstream } from './upstream-server.js'

const KEY = '/vod/t/v1/720p/seg-00001.m4s'

for (const tiers of ['both tiers', 'the disk tier only (a prefill)'] as const)
  t.test(
    `a 304 arriving after a newer response was stored in ${tiers} leaves the newer one whole`,
    async (t) => {
      const clock = new ManualClock(Date.now())
      let release: () => void = () => undefined
      const gate = new Promise<void>((resolve) => (release = resolve))
      const date = () => new Date(clock.now()).toUTCString()
      const up = await startEchoUpstream(t, (r) =>
        r.headers['if-none-match'] === '"v1"'
          ? { status: 304, headers: { etag: '"v1"', 'cache-control': 'max-age=60', date: date() }, gate }
          : { headers: { etag: '"v1"', 'cache-control': 'max-age=1', date: date() }, body: 'version one' },
      )
      const edge = await startEdge(t, { upstream: up.url, clock })
      t.equal((await get(`${edge.url}${KEY}`)).body, 'version one')
      await settled(edge)
      clock.advance(5000)
      // Stale: the next request revalidates, and the upstream holds its 304.
      const revalidating = get(`${edge.url}${KEY}`)
      await until(() => up.received.length === 2)
      // Meanwhile a newer response for the key is stored (as another fetch of it would store it).
      const body = Buffer.from('version two, longer')
      const store = edge.app.edge.store as TieredStore
      const w = store.createWriter({
        key: KEY,
        status: 200,
        headers: {
          etag: '"v2"',
          'cache-control': 'max-age=600',
          date: date(),
          'content-type': 'video/iso.segment',
        },
        requestTime: clock.now(),
        responseTime: clock.now(),
        bodyLength: body.length,
        crc32: 0,
        // A prefill's write goes to disk only: memory keeps the copy being revalidated.
        ...(tiers === 'both tiers' ? {} : { protected: true }),
      })
      w.write(body)
      t.ok(await w.commit({ bodyLength: body.length, crc32: crc32(body) }), 'the newer response is stored')
      release()
      const first = await revalidating
      t.equal(first.body, 'version one', 'the revalidating client gets the body it revalidated')
      t.equal(first.h('etag'), '"v1"', 'with its own validator')
      await settled(edge)
      const disk = store.disk.lookup(KEY)
      t.equal(disk?.meta.headers.etag, '"v2"', 'the disk copy keeps its own validator')
      t.equal(disk?.meta.bodyLength, body.length)
      if (tiers === 'both tiers') {
        const next = await get(`${edge.url}${KEY}`)
        t.equal(next.body, 'version two, longer', 'the newer response stands')
        t.equal(next.h('etag'), '"v2"', 'under its own validator, not the one the 304 refreshed')
      } else {
        // Memory held the copy revalidated: refreshed there; the disk's newer copy untouched.
        const mem = await get(`${edge.url}${KEY}`)
        t.equal(mem.body, 'version one')
        t.equal(mem.h('etag'), '"v1"')
      }
    },
  )

t.test('a 304 naming another ETag updates nothing: the representation is fetched whole', async (t) => {
  // RFC 9111 §4.3.4: a 304 whose strong validator no stored response has identifies another
  // representation (a backend holding v2, answering the If-Modified-Since sent beside
  // If-None-Match): v1's bytes must not be served under v2's ETag.
  const clock = new ManualClock(Date.now())
  const date = () => new Date(clock.now()).toUTCString()
  let version = 1
  const up = await startEchoUpstream(t, (r) =>
    r.headers['if-none-match'] !== undefined
      ? { status: 304, headers: { etag: `"v${version}"`, 'cache-control': 'max-age=60', date: date() } }
      : {
          headers: { etag: `"v${version}"`, 'cache-control': 'max-age=1', date: date() },
          body: `version ${version}`,
        },
  )
  const edge = await startEdge(t, { upstream: up.url, clock })
  t.equal((await get(`${edge.url}${KEY}`)).body, 'version 1')
  await settled(edge)
  clock.advance(5000)
  version = 2
  const after = await get(`${edge.url}${KEY}`)
  t.equal(after.h('etag'), '"v2"')
  t.equal(after.body, 'version 2', "v2's ETag comes with v2's bytes")
  t.same(
    up.received.map((r) => r.headers['if-none-match']),
    [undefined, '"v1"', undefined],
    'the conditional request, then an unconditional one',
  )
  await settled(edge)
  const hit = await get(`${edge.url}${KEY}`)
  t.same([hit.h('etag'), hit.body], ['"v2"', 'version 2'], 'what is stored is one version')
})
