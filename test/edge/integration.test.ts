/**
 * The edge in front of the real origin with a real ingested title: byte-identical objects,
 * a 200-client stampede counted at the origin, a two-tier chain and a restart.
 */
import { Parser } from 'm3u8-parser'
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { startEdge } from '../helpers/edge.js'
import { ingestedStore, startOrigin } from '../helpers/origin.js'

/** Sum of the origin's /vod request counter, read from its own /metrics. */
async function originVodRequests(url: string): Promise<number> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text())
  let n = 0
  for (const line of text.split('\n'))
    if (line.startsWith('cdn_origin_requests_total{') && line.includes('route="/vod'))
      n += Number(line.split(' ').pop())
  return n
}

async function titleObjects(base: string, title: string): Promise<string[]> {
  const master = `/vod/${title}/master.m3u8`
  const out = [master]
  const p = new Parser()
  p.push(await fetch(base + master).then((r) => r.text()))
  p.end()
  for (const pl of p.manifest.playlists ?? []) {
    const media = new URL(pl.uri, `http://x/vod/${title}/`).pathname
    out.push(media)
    const mp = new Parser()
    mp.push(await fetch(base + media).then((r) => r.text()))
    mp.end()
    const dir = media.slice(0, media.lastIndexOf('/') + 1)
    const init = mp.manifest.segments?.[0]?.map?.uri
    if (init) out.push(dir + init)
    for (const s of mp.manifest.segments ?? []) out.push(dir + s.uri)
  }
  return out
}

const bytes = async (url: string) => {
  const r = await fetch(url)
  return { status: r.status, cache: r.headers.get('x-cache'), body: Buffer.from(await r.arrayBuffer()) }
}

t.test('a real title through the edge, a two-tier chain and a restart', async (t) => {
  const store = await ingestedStore(t, { titles: [{ id: 'movie', seconds: 10 }] })
  const origin = await startOrigin(t, { store })
  const objects = await titleObjects(origin.url, 'movie')
  t.ok(objects.length > 8, `${objects.length} objects`)

  // The edges' clock stands still: the short-lived master stays fresh however long a busy
  // machine takes over this test (freshness over time is freshness.test.ts's).
  const clock = new ManualClock(Date.now())
  const parent = await startEdge(t, { upstream: origin.url, clock })
  const child = await startEdge(t, { upstream: parent.url, clock })
  const base = await originVodRequests(origin.url)
  for (const p of objects) {
    const want = await bytes(origin.url + p)
    const got = await bytes(child.url + p)
    t.equal(got.status, 200, p)
    t.ok(got.body.equals(want.body), `byte-identical via child → parent → origin: ${p}`)
  }
  const afterChain = await originVodRequests(origin.url)
  // The origin saw each object once more for the direct comparison fetch, once for the chain.
  t.equal(afterChain - base, objects.length * 2, 'the chain fetched each object from the origin once')
  for (const p of objects) {
    const c = (await bytes(child.url + p)).cache
    t.equal(c, 'HIT-MEM', `child hit ${p}: ${c}`)
  }
  t.equal(await originVodRequests(origin.url), afterChain, 'hits never reach the origin')

  // Stampede: 200 clients at once on one segment the edges have not seen.
  const seg = objects[objects.length - 1]!
  const fresh = await startEdge(t, { upstream: origin.url })
  const before = await originVodRequests(origin.url)
  const all = await Promise.all(Array.from({ length: 200 }, () => bytes(fresh.url + seg)))
  t.equal((await originVodRequests(origin.url)) - before, 1, 'exactly one origin request for 200 clients')
  const want = (await bytes(origin.url + seg)).body
  t.ok(
    all.every((r) => r.status === 200 && r.body.equals(want)),
    'all 200 byte-identical',
  )

  // Restart keeps the disk tier: a new edge on the same cache dir with the origin gone.
  await fresh.app.close()
  const restarted = await startEdge(t, { upstream: origin.url, cacheDir: fresh.cacheDir })
  await origin.app.close()
  const again = await bytes(restarted.url + seg)
  t.equal(again.cache, 'HIT-DISK')
  t.ok(again.body.equals(want))
})
