import t from 'tap'
import { prng } from '../../fixtures/prng.js'
import type { Location } from '../../steering/geo.js'
import {
  bandMinDot,
  DEFAULT_SELECT_OPTIONS,
  distanceKm,
  type EdgeInput,
  hash32,
  prepareFleet,
  type Ranked,
  rendezvousScore,
  type SelectOptions,
  select,
  type Slots,
  unitVector,
} from '../../steering/select.js'

/**
 * The ranking as it was written before it was tuned (closures, a sort, arrays per call),
 * kept here as the plain reference the tuned one must equal.
 */
function referenceSelect(
  client: Location,
  f: Slots,
  candidates: ArrayLike<number> | null,
  title: string,
  options: SelectOptions,
): Ranked[] {
  const { edges, x, y, z } = f
  const n = candidates ? candidates.length : edges.length
  const slot = candidates ? (j: number) => candidates[j]! : (j: number) => j
  const [cx, cy, cz] = unitVector(client)
  const dot = (i: number) => x[i]! * cx + y[i]! * cy + z[i]! * cz

  // Pass 1: the nearest usable edge (largest dot product; ties to the smaller id).
  let nearest = -1
  let best = -2
  for (let j = 0; j < n; j++) {
    const i = slot(j)
    if (!edges[i]?.usable) continue
    const d = dot(i)
    if (d > best || (d === best && edges[i]!.id < edges[nearest]!.id)) {
      best = d
      nearest = i
    }
  }
  if (nearest === -1) return []
  const minDot = bandMinDot(best, options.bandKm)
  const site = edges[nearest]!.site
  const titleHash = hash32(title)
  const max = options.maxResults > 0 ? options.maxResults : n

  // Pass 2: the band (rendezvous-ordered below) and the nearest `max` others by distance,
  // kept in a small sorted array: O(n × max), no sort of the whole fleet.
  const band: { i: number; score: number }[] = []
  let loadSum = 0
  const rest: number[] = []
  const restDot: number[] = []
  const before = (i: number, di: number, j: number, dj: number): boolean => {
    if (di !== dj) return di > dj
    const si = rendezvousScore(titleHash, edges[i]!.id, edges[i]!.weight)
    const sj = rendezvousScore(titleHash, edges[j]!.id, edges[j]!.weight)
    return si !== sj ? si > sj : edges[i]!.id < edges[j]!.id
  }
  for (let j = 0; j < n; j++) {
    const i = slot(j)
    const e = edges[i]
    if (!e?.usable) continue
    const d = dot(i)
    if (d >= minDot || e.site === site) {
      band.push({ i, score: rendezvousScore(titleHash, e.id, e.weight) })
      loadSum += e.load
      continue
    }
    const full = rest.length === max
    if (full && !before(i, d, rest[max - 1]!, restDot[max - 1]!)) continue
    let k = full ? max - 1 : rest.length
    while (k > 0 && before(i, d, rest[k - 1]!, restDot[k - 1]!)) {
      rest[k] = rest[k - 1]!
      restDot[k] = restDot[k - 1]!
      k--
    }
    rest[k] = i
    restDot[k] = d
  }
  const share = Math.max(options.boundedLoadFactor * (loadSum / band.length), options.boundedLoadFloor)
  const rank = (b: { i: number }): number => {
    const e = edges[b.i]!
    if (e.load > share) return 2
    return e.titlesComplete?.has(title) ? 0 : 1
  }
  band.sort((a, b) => rank(a) - rank(b) || b.score - a.score || (edges[a.i]!.id < edges[b.i]!.id ? -1 : 1))
  const out: Ranked[] = []
  for (const b of band.slice(0, max)) {
    const r = rank(b)
    out.push({
      edge: edges[b.i]!,
      distanceKm: distanceKm(client, edges[b.i]!),
      reason: r === 0 ? 'holder' : r === 1 ? 'rendezvous' : 'spill',
    })
  }
  for (const i of rest.slice(0, max - out.length))
    out.push({ edge: edges[i]!, distanceKm: distanceKm(client, edges[i]!), reason: 'distance' })
  return out
}

t.test('the tuned ranking equals the plain reference on random fleets, health and loads', async (t) => {
  const rnd = prng(31337)
  let compared = 0
  for (let f = 0; f < 40; f++) {
    const edges: EdgeInput[] = []
    const sites = 3 + Math.floor(rnd() * 60)
    for (let s = 0; s < sites; s++) {
      const lat = rnd() < 0.3 ? 45 + rnd() : Math.asin(2 * rnd() - 1) * (180 / Math.PI)
      const lon = rnd() < 0.3 ? 9 + rnd() : rnd() * 360 - 180
      for (let k = 0, n = 1 + Math.floor(rnd() * 5); k < n; k++)
        edges.push({
          id: `s${s}-e${k}`,
          url: `http://s${s}-e${k}`,
          site: `s${s}`,
          lat: rnd() < 0.2 ? Math.max(-90, Math.min(90, lat + rnd() - 0.5)) : lat,
          lon,
          weight: rnd() < 0.2 ? 1 + Math.floor(rnd() * 3) : 1,
          load: rnd() < 0.3 ? rnd() * 2 : rnd() * 0.3,
          usable: rnd() > 0.25,
          titlesComplete: new Set(rnd() < 0.3 ? ['t1'] : []),
        })
    }
    const prepared = prepareFleet(edges)
    for (let q = 0; q < 30; q++) {
      const options: SelectOptions = {
        ...DEFAULT_SELECT_OPTIONS,
        bandKm: [0, 50, 300, 5000][Math.floor(rnd() * 4)]!,
        maxResults: Math.floor(rnd() * 9),
        boundedLoadFloor: rnd() < 0.5 ? 0 : 0.2,
      }
      const on = edges[Math.floor(rnd() * edges.length)]!
      const client: Location =
        rnd() < 0.4 ? { lat: on.lat, lon: on.lon } : { lat: rnd() * 180 - 90, lon: rnd() * 360 - 180 }
      const title = rnd() < 0.3 ? 't1' : `t${q}`
      const want = referenceSelect(client, prepared, null, title, options)
      const got = select(client, prepared, title, options)
      if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`fleet ${f} query ${q}`, { got, want })
      compared++
    }
  }
  t.equal(compared, 1200)
})
