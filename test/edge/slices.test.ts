/**
 * Slices (edge/cache/slices.ts, edge/http/sliced-response.ts, docs/http-cache.md): an object
 * cached as fixed-size pieces fetched with upstream Range requests. Against a real upstream on
 * loopback that serves byte ranges and records every Range it receives: a seek fetches only the
 * slices it covers, a whole GET the rest; concurrent requests for one slice make one fetch; an
 * ETag that changes mid-object never splices two versions; an upstream that ignores Range; purge
 * and invalidation drop every slice. Objects above the keep limit and stale slices:
 * slices-stream.test.ts.
 */
import t from 'tap'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { fetchRaw, latin1, rangeUpstream } from './range-upstream.js'
import { pattern } from './upstream-server.js'

const PATH = '/vod/t/v1/720p/movie.mp4'
const SIZE = 10 * 1024 + 500
const SLICE = 1024

/** The Range of slice `i`. */
const slice = (i: number) => `bytes=${i * SLICE}-${(i + 1) * SLICE - 1}`

t.test('a seek fetches only the slices it covers; a whole GET the others; then all hits', async (t) => {
  const body = pattern(SIZE)
  const up = await rangeUpstream(t, body)
  const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE })
  const seek = await get(`${edge.url}${PATH}`, { range: 'bytes=5000-6000' })
  t.equal(seek.status, 206)
  t.equal(seek.h('content-range'), `bytes 5000-6000/${SIZE}`)
  t.equal(seek.h('content-length'), '1001')
  t.equal(seek.body, latin1(body.subarray(5000, 6001)), 'the bytes asked')
  t.equal(seek.h('x-cache'), 'MISS')
  t.match(seek.h('cache-status'), /fwd=uri-miss;fwd-status=206;ttl=\d+;stored/)
  t.equal(seek.h('etag'), '"v1"')
  t.same(up.seen, [slice(4), slice(5)], 'only slices 4 and 5 asked upstream, with Range')
  await settled(edge)

  const again = await get(`${edge.url}${PATH}`, { range: 'bytes=5000-6000' })
  t.equal(again.status, 206)
  t.equal(again.body, seek.body)
  t.match(again.h('x-cache'), /^HIT-/, 'every slice held: a hit')
  t.match(again.h('cache-status'), /;hit;ttl=/)
  t.equal(up.seen.length, 2, 'nothing more upstream')

  const whole = await get(`${edge.url}${PATH}`)
  t.equal(whole.status, 200)
  t.equal(whole.h('content-length'), String(SIZE), 'Content-Length is the total')
  t.equal(whole.h('content-range'), undefined)
  t.equal(whole.body, latin1(body), 'every slice in order, byte for byte')
  t.equal(whole.h('x-cache'), 'MISS', 'some slices came from upstream')
  t.same(
    up.seen.slice(2),
    [0, 1, 2, 3, 6, 7, 8, 9, 10].map(slice),
    'the slices not held, in order, each once',
  )
  await settled(edge)

  const hit = await get(`${edge.url}${PATH}`)
  t.equal(hit.body, latin1(body))
  t.match(hit.h('x-cache'), /^HIT-/)
  const head = await get(`${edge.url}${PATH}`, {}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.h('content-length'), String(SIZE))
  const tail = await get(`${edge.url}${PATH}`, { range: 'bytes=-100' })
  t.equal(tail.status, 206)
  t.equal(tail.h('content-range'), `bytes ${SIZE - 100}-${SIZE - 1}/${SIZE}`)
  t.equal(tail.body, latin1(body.subarray(SIZE - 100)))
  const past = await get(`${edge.url}${PATH}`, { range: `bytes=${SIZE + 10}-` })
  t.equal(past.status, 416, 'a range past the end: 416')
  const cond = await get(`${edge.url}${PATH}`, { 'if-none-match': '"v1"' })
  t.equal(cond.status, 304, "conditionals against the lead slice's validators")
  t.equal(up.seen.length, 11, 'all of it answered from the slices held')
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'fetched' }), 11)
})

t.test('concurrent requests for one slice make one upstream fetch', async (t) => {
  const body = pattern(SIZE, 3)
  const up = await rangeUpstream(t, body)
  let open!: () => void
  up.state.gate = new Promise((resolve) => (open = resolve))
  const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE })
  const asks = [0, 1, 2].map(() => get(`${edge.url}${PATH}`, { range: 'bytes=2100-2200' }))
  await until(
    async () => (await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'joined' })) === 2,
  )
  open()
  const got = await Promise.all(asks)
  for (const g of got) {
    t.equal(g.status, 206)
    t.equal(g.body, latin1(body.subarray(2100, 2201)))
  }
  t.same(got.map((g) => g.h('x-cache')).sort(), ['COALESCED', 'COALESCED', 'MISS'], 'one fetched, two joined')
  t.same(up.seen, [slice(2)], 'slice 2 asked once')
})

t.test(
  'an ETag that changes mid-object: no splice, every slice dropped, the next request whole',
  async (t) => {
    const v1 = pattern(SIZE, 1)
    const v2 = pattern(SIZE, 2)
    const up = await rangeUpstream(t, v1)
    const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE })
    const first = await get(`${edge.url}${PATH}`, { range: 'bytes=0-99' })
    t.equal(first.body, latin1(v1.subarray(0, 100)))
    await settled(edge)
    t.ok(edge.app.edge.store.has(`${PATH}#s=0`), 'slice 0 of v1 held')

    up.state.body = v2
    up.state.etag = '"v2"'
    const torn = await fetchRaw(`${edge.url}${PATH}`)
    t.equal(torn.status, 200, 'the head came from the held slice 0 (v1)')
    t.equal(torn.length, SIZE)
    t.notOk(torn.complete, 'the connection is closed rather than finished with v2 bytes')
    t.ok(torn.body.length <= SLICE, 'nothing past slice 0 was sent')
    t.same(torn.body, v1.subarray(0, torn.body.length), 'what was sent is v1 only')
    await until(() => !edge.app.edge.store.has(`${PATH}#s=0`))
    t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'version-changed' }), 1)

    await settled(edge)
    const after = await get(`${edge.url}${PATH}`)
    t.equal(after.status, 200)
    t.equal(after.h('etag'), '"v2"')
    t.equal(after.body, latin1(v2), 'the new version, whole and alone')
  },
)

t.test('an upstream that ignores Range: the whole object is served and cached under the URL', async (t) => {
  const body = pattern(SIZE, 4)
  const up = await rangeUpstream(t, body)
  up.state.honour = false
  const edge = await startEdge(t, { upstream: up.url, sliceSize: SLICE })
  const r = await get(`${edge.url}${PATH}`, { range: 'bytes=3000-3999' })
  t.equal(r.status, 206, "the client's range cut from the whole answer")
  t.equal(r.h('content-range'), `bytes 3000-3999/${SIZE}`)
  t.equal(r.body, latin1(body.subarray(3000, 4000)))
  t.same(up.seen, [slice(2)], 'slice 2 was asked')
  await settled(edge)
  t.ok(edge.app.edge.store.has(PATH), 'stored whole under the URL')
  const again = await get(`${edge.url}${PATH}`, { range: 'bytes=0-9' })
  t.equal(again.status, 206)
  t.equal(again.body, latin1(body.subarray(0, 10)))
  t.match(again.h('x-cache'), /^HIT-/)
  t.equal(up.seen.length, 1, 'served from the whole object held')
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_slices_total', { result: 'range-ignored' }), 1)
})

t.test('a purge of the title and an invalidation of the URL drop every slice', async (t) => {
  const body = pattern(SIZE, 5)
  const up = await rangeUpstream(t, body)
  const token = 'slices-admin-token'
  const edge = await startEdge(t, {
    upstream: up.url,
    sliceSize: SLICE,
    adminToken: token,
    passThrough: ['POST'],
  })
  t.equal((await get(`${edge.url}${PATH}`)).body, latin1(body))
  await settled(edge)
  t.equal(up.seen.length, 11)
  const purged = await fetch(`${edge.url}/admin/cache/vod/t`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  })
  t.equal(purged.status, 200)
  t.equal(((await purged.json()) as { purged: number }).purged, 11, 'every slice counted')
  for (let i = 0; i <= 10; i++) t.notOk(edge.app.edge.store.has(`${PATH}#s=${i}`), `slice ${i} gone`)
  t.equal((await get(`${edge.url}${PATH}`)).body, latin1(body))
  await settled(edge)
  t.equal(up.seen.length, 22, 'fetched again, slice by slice')

  const post = await get(`${edge.url}${PATH}`, {}, 'POST', 'x')
  t.equal(post.status, 204)
  await until(() => !edge.app.edge.store.has(`${PATH}#s=0`))
  for (let i = 0; i <= 10; i++) t.notOk(edge.app.edge.store.has(`${PATH}#s=${i}`), `slice ${i} invalidated`)
})

t.test('--slice-size above --max-object-size is refused', async (t) => {
  await t.rejects(startEdge(t, { upstream: 'http://127.0.0.1:9', sliceSize: 2048, maxObjectSize: 1024 }), {
    code: 'CDN_ERR_CONFIG',
    message: /--slice-size: must be at most --max-object-size/,
  })
})
