import t from 'tap'
import { prng } from '../../fixtures/prng.js'
import { FleetIndex } from '../../steering/fleet-index.js'
import { DEFAULT_SELECT_OPTIONS, type EdgeInput, type SelectOptions, select } from '../../steering/select.js'

const ids = (r: { edge: EdgeInput }[]) => r.map((x) => x.edge.id)

function randomEdge(rnd: () => number, id: string, sites: number): EdgeInput {
  const s = Math.floor(rnd() * sites)
  // Sites sit on a coarse grid (edges of one site share a spot, or nearly), some crowded.
  const crowd = s % 4 === 0
  const lat = crowd ? 45 + (s % 7) * 0.05 : ((s * 37) % 170) - 85
  const lon = crowd ? 9 + (s % 5) * 0.05 : ((s * 91) % 350) - 175
  const off = rnd() < 0.2
  // Most off-site edges are near their site; some are far (a site whose edges span a region).
  const spread = rnd() < 0.5 ? 1 : 30
  return {
    id,
    url: `http://${id}`,
    site: `s${s}`,
    lat: off ? Math.max(-90, Math.min(90, lat + (rnd() - 0.5) * spread)) : lat,
    lon: off ? Math.max(-180, Math.min(180, lon + (rnd() - 0.5) * spread)) : lon,
    weight: rnd() < 0.1 ? 2 : 1,
    load: rnd(),
    usable: rnd() > 0.2,
    titlesComplete: new Set(rnd() < 0.2 ? ['t1'] : []),
  }
}

t.test(
  'cached candidate lists rank exactly as a full scan through joins, leaves and health flips',
  async (t) => {
    const rnd = prng(2024)
    let compared = 0
    let hitsBefore = 0
    for (let f = 0; f < 12; f++) {
      const sites = 10 + Math.floor(rnd() * 120)
      const index = new FleetIndex()
      const bySlot: (EdgeInput | undefined)[] = []
      const live = new Map<string, number>()
      let made = 0
      const join = () => {
        const e = randomEdge(rnd, `f${f}-e${made++}`, sites)
        const slot = index.add(e.site, e)
        bySlot[slot] = e
        live.set(e.id, slot)
      }
      for (let i = 0, n = 20 + Math.floor(rnd() * 400); i < n; i++) join()
      // Fixed places (the same objects every time, as zones are), some right on a site.
      const places = Array.from({ length: 25 }, (_, i) => {
        if (i % 3 === 0) {
          const e = bySlot[[...live.values()][Math.floor(rnd() * live.size)]!]!
          return { lat: e.lat, lon: e.lon }
        }
        return { lat: Math.asin(2 * rnd() - 1) * (180 / Math.PI), lon: rnd() * 360 - 180 }
      })
      const optionSets: SelectOptions[] = [1, 3, 5].map((maxResults) => ({
        ...DEFAULT_SELECT_OPTIONS,
        bandKm: f % 3 === 0 ? 500 : 50,
        maxResults,
      }))
      for (let step = 0; step < 150; step++) {
        const r = rnd()
        if (r < 0.15) join()
        else if (r < 0.3 && live.size > 1) {
          const [id, slot] = [...live.entries()][Math.floor(rnd() * live.size)]!
          index.remove(slot)
          bySlot[slot] = undefined
          live.delete(id)
        } else if (r < 0.6) {
          // A health round flips a few edges (usability in the caller's array, then touch).
          for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) {
            const slot = [...live.values()][Math.floor(rnd() * live.size)]!
            const e = bySlot[slot]!
            bySlot[slot] = { ...e, usable: !e.usable, load: rnd() }
            index.touch(slot)
          }
        } else if (r < 0.7) {
          // Load and titles move without any touch: they are read at ranking time.
          const slot = [...live.values()][Math.floor(rnd() * live.size)]!
          const e = bySlot[slot]!
          bySlot[slot] = { ...e, load: rnd() * 2, titlesComplete: new Set(rnd() < 0.5 ? ['t1'] : []) }
        }
        const fleet = [...live.values()].map((s) => bySlot[s]!)
        for (let q = 0; q < 6; q++) {
          const place = places[Math.floor(rnd() * places.length)]!
          const options = optionSets[Math.floor(rnd() * optionSets.length)]!
          const title = rnd() < 0.3 ? 't1' : `t${Math.floor(rnd() * 50)}`
          const want = ids(select(place, fleet, title, options))
          const got = ids(index.select(place, bySlot, title, options, true))
          if (JSON.stringify(got) !== JSON.stringify(want))
            t.fail(`fleet ${f} step ${step}`, { got, want, place, options })
          compared++
        }
      }
      hitsBefore += index.cachedPlaces
    }
    t.equal(compared, 12 * 150 * 6, 'every decision compared')
    t.ok(hitsBefore > 0, 'lists were cached')
  },
)

t.test('a change far away keeps a cached list; a change near it or a new edges array does not', async (t) => {
  const index = new FleetIndex()
  const bySlot: EdgeInput[] = []
  const mk = (id: string, site: string, lat: number, lon: number): EdgeInput => ({
    id,
    url: `http://${id}`,
    site,
    lat,
    lon,
    weight: 1,
    load: 0,
    usable: true,
  })
  for (const e of [
    mk('rome-1', 'rome', 41.9, 12.5),
    mk('rome-2', 'rome', 41.9, 12.5),
    mk('milan-1', 'milan', 45.46, 9.19),
    mk('paris-1', 'paris', 48.86, 2.35),
    mk('madrid-1', 'madrid', 40.42, -3.7),
    mk('berlin-1', 'berlin', 52.52, 13.4),
    mk('tokyo-1', 'tokyo', 35.68, 139.69),
    mk('tokyo-2', 'tokyo', 35.68, 139.69),
  ])
    bySlot[index.add(e.site, e)] = e
  const rome = { lat: 41.9, lon: 12.5 }
  const opts = { ...DEFAULT_SELECT_OPTIONS, maxResults: 2 }
  const first = index.select(rome, bySlot, 'x', opts, true)
  t.same(ids(first).sort(), ['rome-1', 'rome-2'])
  const walks = () => index.walks
  const before = walks()
  index.select(rome, bySlot, 'y', opts, true)
  t.equal(walks(), before, 'the second decision at the same place does not walk')
  // Tokyo's edge fails: far beyond Rome's horizon.
  bySlot[6] = { ...bySlot[6]!, usable: false }
  index.touch(6)
  index.select(rome, bySlot, 'x', opts, true)
  t.equal(walks(), before, 'a change in Tokyo leaves Rome alone')
  // A Rome edge fails: Rome walks again and its list follows.
  bySlot[0] = { ...bySlot[0]!, usable: false }
  index.touch(0)
  const after = index.select(rome, bySlot, 'x', opts, true)
  t.equal(walks(), before + 1, 'a change in Rome walks again')
  t.notOk(ids(after).includes('rome-1'), 'the failed edge is out')
  index.select(rome, [...bySlot], 'x', opts, true)
  t.equal(walks(), before + 2, 'another edges array walks again')
})
