import t from 'tap'
import { prng } from '../../fixtures/prng.js'
import { FleetIndex } from '../../steering/fleet-index.js'
import { DEFAULT_SELECT_OPTIONS, type EdgeInput, type SelectOptions, select } from '../../steering/select.js'

/** A random fleet: sites of 1–6 edges, some edges off their site's spot, some clustered. */
function randomFleet(rnd: () => number, sites: number): EdgeInput[] {
  const edges: EdgeInput[] = []
  for (let s = 0; s < sites; s++) {
    // A quarter of the sites crowd into one small area, so bands hold several sites.
    const crowd = rnd() < 0.25
    const lat = crowd ? 45 + rnd() * 0.5 : Math.asin(2 * rnd() - 1) * (180 / Math.PI)
    const lon = crowd ? 9 + rnd() * 0.5 : rnd() * 360 - 180
    const n = 1 + Math.floor(rnd() * 6)
    for (let k = 0; k < n; k++) {
      const off = rnd() < 0.2
      edges.push({
        id: `s${s}-e${k}`,
        url: `http://s${s}-e${k}`,
        site: `s${s}`,
        lat: off ? Math.max(-90, Math.min(90, lat + rnd() * 4 - 2)) : lat,
        lon: off ? Math.max(-180, Math.min(180, lon + rnd() * 4 - 2)) : lon,
        weight: rnd() < 0.1 ? 2 : 1,
        load: rnd(),
        usable: rnd() > 0.2,
        titlesComplete: new Set(rnd() < 0.2 ? ['t1'] : []),
      })
    }
  }
  return edges
}

function indexed(edges: readonly EdgeInput[]): { index: FleetIndex; bySlot: (EdgeInput | undefined)[] } {
  const index = new FleetIndex()
  const bySlot: (EdgeInput | undefined)[] = []
  for (const e of edges) bySlot[index.add(e.site, e)] = e
  return { index, bySlot }
}

const ids = (r: { edge: EdgeInput }[]) => r.map((x) => x.edge.id)

t.test('the index ranks exactly as a full scan, on random fleets and options', async (t) => {
  const rnd = prng(42)
  let compared = 0
  for (let f = 0; f < 30; f++) {
    const edges = randomFleet(rnd, 5 + Math.floor(rnd() * 200))
    const { index, bySlot } = indexed(edges)
    t.equal(index.size, edges.length)
    for (let q = 0; q < 40; q++) {
      const options: SelectOptions = {
        ...DEFAULT_SELECT_OPTIONS,
        bandKm: [0, 50, 500, 3000][Math.floor(rnd() * 4)]!,
        maxResults: 1 + Math.floor(rnd() * 8),
      }
      // Clients anywhere, and clients sitting exactly on an edge (distance ties).
      const on = edges[Math.floor(rnd() * edges.length)]!
      const client =
        rnd() < 0.3
          ? { lat: on.lat, lon: on.lon }
          : { lat: Math.asin(2 * rnd() - 1) * (180 / Math.PI), lon: rnd() * 360 - 180 }
      const title = rnd() < 0.5 ? 't1' : `t${q}`
      // Half the queries with a client's failover order (select.ts), which both must follow.
      const key = rnd() < 0.5 ? Math.floor(rnd() * 2 ** 32) : undefined
      const want = select(client, edges, title, options, key)
      const got = index.select(client, bySlot, title, options, false, key)
      if (JSON.stringify(ids(got)) !== JSON.stringify(ids(want)))
        t.fail(`fleet ${f} query ${q}`, { got: ids(got), want: ids(want), client, options })
      compared++
    }
  }
  t.equal(compared, 1200, 'every query compared')
})

t.test('edges join and leave without a rebuild; answers follow', async (t) => {
  const rnd = prng(7)
  const edges = randomFleet(rnd, 120)
  const { index, bySlot } = indexed(edges)
  const live = new Map(edges.map((e, i) => [e.id, { e, slot: i }]))
  const client = { lat: 45.2, lon: 9.2 }
  for (let step = 0; step < 300; step++) {
    if (rnd() < 0.5 && live.size > 1) {
      const [id, { slot }] = [...live.entries()][Math.floor(rnd() * live.size)]!
      index.remove(slot)
      bySlot[slot] = undefined
      live.delete(id)
    } else {
      const e: EdgeInput = {
        id: `n${step}`,
        url: `http://n${step}`,
        site: `ns${step % 7}`,
        lat: 45 + rnd(),
        lon: 9 + rnd(),
        weight: 1,
        load: 0,
        usable: true,
      }
      const slot = index.add(e.site, e)
      bySlot[slot] = e
      live.set(e.id, { e, slot })
    }
    const fleet = [...live.values()].map((v) => v.e)
    const want = ids(select(client, fleet, `t${step}`))
    const got = ids(index.select(client, bySlot, `t${step}`, DEFAULT_SELECT_OPTIONS))
    if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`step ${step}`, { got, want })
  }
  t.equal(index.size, live.size, 'size follows joins and leaves')
  t.ok(index.slots <= edges.length + 300, 'freed slots are reused')
})

t.test('an empty index, and an index with nothing usable, rank nothing', async (t) => {
  const index = new FleetIndex()
  t.same(index.select({ lat: 0, lon: 0 }, [], 't', DEFAULT_SELECT_OPTIONS), [])
  const e: EdgeInput = {
    id: 'a',
    url: 'http://a',
    site: 's',
    lat: 1,
    lon: 1,
    weight: 1,
    load: 0,
    usable: false,
  }
  const slot = index.add('s', e)
  t.same(index.select({ lat: 0, lon: 0 }, [e], 't', DEFAULT_SELECT_OPTIONS), [])
  index.remove(slot)
  index.remove(slot)
  t.equal(index.size, 0, 'removing twice is harmless')
})

t.test('many edges on one spot stay one leaf and all rank', async (t) => {
  const edges: EdgeInput[] = Array.from({ length: 40 }, (_, i) => ({
    id: `e${String(i).padStart(2, '0')}`,
    url: `http://e${i}`,
    site: 'one',
    lat: 10,
    lon: 10,
    weight: 1,
    load: 0,
    usable: true,
  }))
  const { index, bySlot } = indexed(edges)
  const options = { ...DEFAULT_SELECT_OPTIONS, maxResults: 40 }
  t.same(
    ids(index.select({ lat: 0, lon: 0 }, bySlot, 'x', options)),
    ids(select({ lat: 0, lon: 0 }, edges, 'x', options)),
  )
  t.equal(index.select({ lat: 0, lon: 0 }, bySlot, 'x', options).length, 40)
})

t.test('asIfAllUp ranks as a copy of the fleet with every edge up and unloaded', async (t) => {
  const rnd = prng(11)
  let compared = 0
  for (let f = 0; f < 10; f++) {
    const edges = randomFleet(rnd, 5 + Math.floor(rnd() * 100))
    const { index, bySlot } = indexed(edges)
    const ideal = edges.map((e) => ({ ...e, usable: true, load: 0 }))
    for (let q = 0; q < 20; q++) {
      const options = { ...DEFAULT_SELECT_OPTIONS, maxResults: 1 + Math.floor(rnd() * 5) }
      const client = { lat: Math.asin(2 * rnd() - 1) * (180 / Math.PI), lon: rnd() * 360 - 180 }
      const title = rnd() < 0.5 ? 't1' : `t${q}`
      const want = ids(select(client, ideal, title, options))
      const all = { ...options, asIfAllUp: true }
      const scan = ids(select(client, edges, title, all))
      const got = ids(index.select(client, bySlot, title, all, true))
      if (JSON.stringify(scan) !== JSON.stringify(want) || JSON.stringify(got) !== JSON.stringify(want))
        t.fail(`fleet ${f} query ${q}`, { got, scan, want })
      compared++
    }
  }
  t.equal(compared, 200)
})
