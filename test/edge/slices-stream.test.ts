/**
 * Slices (edge/cache/slices.ts, slice-writer.ts, edge/http/sliced-response.ts): an object above
 * the keep limit is stored as slices while its first, whole stream passes (its size was not known
 * before its headers), and a stale slice is revalidated with a conditional request of the same
 * Range rather than fetched again. Against a real upstream on loopback that records the Range
 * and If-None-Match of every request it receives; a manual clock ages the slices.
 */
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { fetchRaw, latin1, rangeUpstream } from './range-upstream.js'
import { pattern } from './upstream-server.js'

const PATH = '/vod/t/v1/720p/movie.mp4'
const SIZE = 10 * 1024 + 500
const SLICE = 1024
const slice = (i: number) => `bytes=${i * SLICE}-${(i + 1) * SLICE - 1}`
const ALL = [...Array(11).keys()]

t.test('the first stream of an object above the keep limit is stored as slices as it passes', async (t) => {
  const body = pattern(SIZE, 6)
  const up = await rangeUpstream(t, body)
  // The keep limit (4 KiB) is below --large-slice-size (4 MiB): slices of 4 KiB, three of them.
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 4096 })
  const first = await get(`${edge.url}${PATH}`)
  t.equal(first.body, latin1(body), 'streamed whole')
  t.equal(first.h('x-cache'), 'MISS')
  t.match(first.h('cache-status'), /fwd=uri-miss;fwd-status=200;ttl=\d+;stored/, 'said stored')
  t.same(up.seen, [undefined], 'no Range: its size was not known')
  await settled(edge)
  t.notOk(edge.app.edge.store.has(PATH), 'not stored whole')
  for (const i of [0, 1, 2]) t.ok(edge.app.edge.store.has(`${PATH}#s=${i}`), `slice ${i} stored`)

  const seek = await get(`${edge.url}${PATH}`, { range: 'bytes=9000-9100' })
  t.equal(seek.status, 206)
  t.equal(seek.h('content-range'), `bytes 9000-9100/${SIZE}`)
  t.equal(seek.body, latin1(body.subarray(9000, 9101)))
  t.match(seek.h('x-cache'), /^HIT-/, 'a seek is a hit')
  t.equal(seek.h('etag'), '"v1"', "the stream's validators")
  const whole = await get(`${edge.url}${PATH}`)
  t.equal(whole.body, latin1(body), 'the slices in order, byte for byte')
  t.match(whole.h('x-cache'), /^HIT-/)
  t.equal(up.seen.length, 1, 'nothing more upstream')
})

t.test('a stream cut midway keeps the slices it completed; the rest is fetched with Range', async (t) => {
  const body = pattern(SIZE, 7)
  const up = await rangeUpstream(t, body)
  up.state.cutAt = 6000
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 4096 })
  const cut = await fetchRaw(`${edge.url}${PATH}`)
  t.notOk(cut.complete, 'the client sees the cut')
  await settled(edge)
  t.ok(edge.app.edge.store.has(`${PATH}#s=0`), 'slice 0 (bytes 0-4095) arrived whole: kept')
  t.notOk(edge.app.edge.store.has(`${PATH}#s=1`), 'slice 1 was cut: not kept')
  up.state.cutAt = undefined
  const whole = await get(`${edge.url}${PATH}`)
  t.equal(whole.body, latin1(body))
  t.same(up.seen.slice(1), ['bytes=4096-8191', 'bytes=8192-12287'], 'only the slices not held')
})

t.test('a prefill of an object above the keep limit stores its slices', async (t) => {
  const body = pattern(SIZE, 8)
  const up = await rangeUpstream(t, body)
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 4096 })
  const filled = await edge.app.edge.flights.fill({ key: PATH, path: PATH }, { protect: true })
  t.equal(filled.how, 'fetched')
  t.equal(filled.stored, true, 'stored, as slices')
  await settled(edge)
  const r = await get(`${edge.url}${PATH}`, { range: 'bytes=100-199' })
  t.equal(r.body, latin1(body.subarray(100, 200)))
  t.match(r.h('x-cache'), /^HIT-/)
  t.equal(up.seen.length, 1)
})

t.test(
  'stale slices are revalidated with their validators and the same Range: a 304 refreshes them',
  async (t) => {
    const clock = new ManualClock(Date.now())
    const body = pattern(SIZE, 9)
    const up = await rangeUpstream(t, body, clock)
    const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE, clock })
    t.equal((await get(`${edge.url}${PATH}`)).body, latin1(body))
    await settled(edge)
    t.same(up.seen, ALL.map(slice))
    t.same(
      up.inm,
      ALL.map(() => undefined),
      'nothing held: no validators',
    )

    clock.advance(601_000)
    const again = await get(`${edge.url}${PATH}`)
    t.equal(again.status, 200)
    t.equal(again.body, latin1(body), 'the held bytes, byte for byte')
    t.equal(again.h('x-cache'), 'REVALIDATED')
    t.match(again.h('cache-status'), /fwd=stale;fwd-status=304/)
    t.same(up.seen.slice(11), ALL.map(slice), 'each slice asked again with its own Range')
    t.same(
      up.inm.slice(11),
      ALL.map(() => '"v1"'),
      'and its ETag: conditional',
    )
    t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'revalidated' }), 11)
    await settled(edge)

    const hit = await get(`${edge.url}${PATH}`, { range: 'bytes=5000-5999' })
    t.equal(hit.body, latin1(body.subarray(5000, 6000)))
    t.match(hit.h('x-cache'), /^HIT-/, 'the 304 made them fresh again')
    t.equal(up.seen.length, 22, 'nothing more upstream')
  },
)

t.test('a stale slice whose revalidation fails is served within stale-if-error', async (t) => {
  const clock = new ManualClock(Date.now())
  const body = pattern(SIZE, 13)
  const up = await rangeUpstream(t, body, clock)
  up.state.cacheControl = 'max-age=600, stale-if-error=3600'
  const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE, clock })
  t.equal((await get(`${edge.url}${PATH}`, { range: 'bytes=0-2047' })).status, 206)
  await settled(edge)
  clock.advance(601_000)
  up.state.failWith = 503
  const stale = await get(`${edge.url}${PATH}`, { range: 'bytes=0-2047' })
  t.equal(stale.status, 206)
  t.equal(stale.body, latin1(body.subarray(0, 2048)), 'the stale bytes')
  t.equal(stale.h('x-cache'), 'STALE')
  t.match(stale.h('cache-status'), /fwd=stale;fwd-status=503/)
  // The first 503 may mark the upstream down: the second slice is then served stale at once.
  t.equal(up.inm[2], '"v1"', 'the lead slice asked conditionally')
  await settled(edge)
  clock.advance(3_600_000)
  const gone = await get(`${edge.url}${PATH}`, { range: 'bytes=0-2047' })
  t.equal(gone.status, 503, 'past stale-if-error: the error')
})

t.test('a revalidation that finds a new version drops the other slices of the old one', async (t) => {
  const clock = new ManualClock(Date.now())
  const v1 = pattern(SIZE, 10)
  const v2 = pattern(SIZE, 11)
  const up = await rangeUpstream(t, v1, clock)
  const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE, clock })
  t.equal((await get(`${edge.url}${PATH}`)).body, latin1(v1))
  await settled(edge)

  up.state.body = v2
  up.state.etag = '"v2"'
  clock.advance(601_000)
  const seek = await get(`${edge.url}${PATH}`, { range: 'bytes=100-199' })
  t.equal(seek.status, 206)
  t.equal(seek.body, latin1(v2.subarray(100, 200)), 'the new version')
  t.equal(seek.h('etag'), '"v2"')
  t.same(up.inm.slice(11), ['"v1"'], 'asked conditionally')
  await settled(edge)
  await until(() => ALL.slice(1).every((i) => !edge.app.edge.store.has(`${PATH}#s=${i}`)))
  t.ok(edge.app.edge.store.has(`${PATH}#s=0`), 'the new slice 0 is kept')
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'version-changed' }), 1)

  const whole = await fetchRaw(`${edge.url}${PATH}`)
  t.ok(whole.complete, 'no slice of the old version in the way: the answer completes')
  t.equal(latin1(whole.body), latin1(v2))
  t.same(up.seen.slice(12), ALL.slice(1).map(slice), 'the other slices fetched afresh')
  t.same(
    up.inm.slice(12),
    ALL.slice(1).map(() => undefined),
  )
})

t.test('an upstream found to ignore Range: its large object streams whole, no slices stored', async (t) => {
  const body = pattern(SIZE, 12)
  const up = await rangeUpstream(t, body)
  up.state.honour = false
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 4096 })
  const store = edge.app.edge.store
  t.equal((await get(`${edge.url}${PATH}`)).body, latin1(body))
  await settled(edge)
  t.ok(store.has(`${PATH}#s=0`), 'its first stream stored as slices (nothing told it apart yet)')
  await store.delete(`${PATH}#s=0`)
  const lead = await get(`${edge.url}${PATH}`)
  t.equal(lead.body, latin1(body), "the lead slice's Range answered whole: served whole")
  t.same(up.seen, [undefined, 'bytes=0-4095'])
  await settled(edge)
  for (const i of [1, 2]) await store.delete(`${PATH}#s=${i}`)
  for (let n = 0; n < 2; n++) {
    t.equal((await get(`${edge.url}${PATH}`)).body, latin1(body))
    await settled(edge)
  }
  t.same(up.seen.slice(2), [undefined, undefined], 'plain GETs from then on, never sliced again')
  for (const i of [0, 1, 2]) t.notOk(store.has(`${PATH}#s=${i}`), `slice ${i} not stored`)
})

t.test('a purge while a large stream passes is not undone by the slices it had yet to reach', async (t) => {
  const body = pattern(SIZE, 11)
  const up = await rangeUpstream(t, body)
  let release: () => void = () => undefined
  // Slice 0 (bytes 0-4095) arrives whole, then the stream waits inside slice 1.
  up.state.pauseAt = { bytes: 5000, until: new Promise<void>((resolve) => (release = resolve)) }
  const token = 'purge-token-1'
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 4096, adminToken: token })
  const stream = fetchRaw(`${edge.url}${PATH}`)
  await until(() => edge.app.edge.store.has(`${PATH}#s=0`))
  const purge = await fetch(`${edge.url}/admin/cache/vod/t`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  })
  t.equal(purge.status, 200, 'the purge answers while the stream still runs')
  t.notOk(edge.app.edge.store.has(`${PATH}#s=0`), 'the slice stored before it is gone')
  release()
  const streamed = await stream
  t.ok(streamed.complete, 'the client still gets the whole body')
  t.equal(latin1(streamed.body), latin1(body))
  await settled(edge)
  for (const i of [0, 1, 2]) t.notOk(edge.app.edge.store.has(`${PATH}#s=${i}`), `slice ${i} not stored again`)
  const after = await get(`${edge.url}${PATH}`, { range: 'bytes=9000-9100' })
  t.equal(after.h('x-cache'), 'MISS', 'the next request goes upstream')
})
