/**
 * The simulated world of the steering simulation: metros, sites, edges, coverage zones and
 * clients, all drawn from one seeded generator (fixtures/prng.ts), so a run is repeatable
 * and its parameters can be published beside its figures.
 *
 * - Sites sit around real metros (the cities below, by metro population, in a few
 *   clusters: North America, Europe, South and East Asia, Latin America, Africa, Oceania),
 *   spread within a radius that grows with the number of sites a metro gets.
 * - Clients are placed by population: a metro by its population, then a point around its
 *   centre at an exponentially distributed distance. Steering sees a client as its coverage
 *   zone (a grid cell with its own address block), as it would from a zones file.
 * - Each metro's edges are provisioned for its expected peak: edges per metro in proportion
 *   to its clients, capacity such that the metro's peak load is `targetPeakLoad` when spread
 *   evenly; a share of edges are twice the size, with weight 2 (rendezvous gives them twice
 *   the titles).
 */
import { prng } from '../../fixtures/prng.js'
import type { EdgeConfig } from '../../steering/registry.js'
import { distanceKm } from '../../steering/select.js'

/** Metro areas: name, lat, lon, population in millions (approximate). */
export const METROS: readonly (readonly [string, number, number, number])[] = [
  ['tokyo', 35.68, 139.69, 37],
  ['delhi', 28.61, 77.21, 32],
  ['shanghai', 31.23, 121.47, 28],
  ['dhaka', 23.81, 90.41, 22],
  ['sao-paulo', -23.55, -46.63, 22],
  ['mexico-city', 19.43, -99.13, 22],
  ['cairo', 30.04, 31.24, 21],
  ['beijing', 39.9, 116.4, 21],
  ['mumbai', 19.08, 72.88, 21],
  ['osaka', 34.69, 135.5, 19],
  ['new-york', 40.71, -74.01, 19],
  ['karachi', 24.86, 67.01, 17],
  ['lagos', 6.52, 3.38, 15],
  ['istanbul', 41.01, 28.98, 15],
  ['buenos-aires', -34.6, -58.38, 15],
  ['kolkata', 22.57, 88.36, 15],
  ['manila', 14.6, 120.98, 14],
  ['guangzhou', 23.13, 113.26, 14],
  ['lahore', 31.55, 74.34, 13],
  ['bangalore', 12.97, 77.59, 13],
  ['rio', -22.91, -43.17, 13],
  ['moscow', 55.76, 37.62, 12.6],
  ['los-angeles', 34.05, -118.24, 12.5],
  ['bogota', 4.71, -74.07, 11.3],
  ['paris', 48.86, 2.35, 11],
  ['jakarta', -6.21, 106.85, 11],
  ['lima', -12.05, -77.04, 11],
  ['bangkok', 13.76, 100.5, 11],
  ['seoul', 37.57, 126.98, 10],
  ['london', 51.51, -0.13, 9.5],
  ['chicago', 41.88, -87.63, 9],
  ['tehran', 35.69, 51.39, 9],
  ['ho-chi-minh', 10.82, 106.63, 9],
  ['hong-kong', 22.32, 114.17, 7.6],
  ['dallas', 32.78, -96.8, 7.6],
  ['riyadh', 24.71, 46.68, 7.5],
  ['houston', 29.76, -95.37, 7.1],
  ['santiago', -33.45, -70.67, 7],
  ['madrid', 40.42, -3.7, 6.7],
  ['san-francisco', 37.77, -122.42, 6.7],
  ['toronto', 43.65, -79.38, 6.3],
  ['washington', 38.91, -77.04, 6.3],
  ['miami', 25.76, -80.19, 6.1],
  ['atlanta', 33.75, -84.39, 6.1],
  ['johannesburg', -26.2, 28.05, 6],
  ['berlin', 52.52, 13.4, 6],
  ['singapore', 1.35, 103.82, 5.9],
  ['frankfurt', 50.11, 8.68, 5.6],
  ['sydney', -33.87, 151.21, 5.4],
  ['melbourne', -37.81, 144.96, 5.1],
  ['nairobi', -1.29, 36.82, 5],
  ['phoenix', 33.45, -112.07, 4.9],
  ['rome', 41.9, 12.5, 4.3],
  ['milan', 45.46, 9.19, 4.3],
  ['montreal', 45.5, -73.57, 4.3],
  ['casablanca', 33.57, -7.59, 4.3],
  ['seattle', 47.61, -122.33, 4],
  ['kyiv', 50.45, 30.52, 3.5],
  ['dubai', 25.2, 55.27, 3.5],
  ['warsaw', 52.23, 21.01, 3.1],
  ['denver', 39.74, -104.99, 3],
  ['manchester', 53.48, -2.24, 2.8],
  ['vancouver', 49.28, -123.12, 2.6],
  ['amsterdam', 52.37, 4.9, 2.5],
  ['stockholm', 59.33, 18.07, 2.4],
  ['auckland', -36.85, 174.76, 1.7],
]

export interface WorldParams {
  readonly seed: number
  readonly sites: number
  readonly edges: number
  readonly clients: number
  /** Mean distance of a client from its metro's centre, km (exponential). */
  readonly clientSpreadKm: number
  /** Coverage zones are cells of this many degrees. */
  readonly zoneCellDeg: number
  /** Load of a metro's edges at its expected peak, were it spread evenly. */
  readonly targetPeakLoad: number
  /** Share of edges twice the size (capacity and rendezvous weight 2). */
  readonly bigEdgeShare: number
  /** Expected concurrent sessions per client at the local peak (from the workload). */
  readonly peakSessionsPerClient: number
  /** One session's egress, bytes/s (the load signal is egress / capacity). */
  readonly sessionBytesPerSec: number
}

export interface Site {
  readonly name: string
  readonly metro: number
  readonly lat: number
  readonly lon: number
  /** Edge numbers (indexes into World.edges) of this site. */
  readonly edges: number[]
}

export interface Zone {
  /** The zone's place: the same object steering's zone table hands back. */
  readonly lat: number
  readonly lon: number
  /** Its address block's first three octets' worth: addresses are `base` + host. */
  readonly prefix: string
  /** The nearest site by great-circle distance, and how far it is (km). */
  nearestSite: number
  nearestKm: number
}

export interface World {
  readonly params: WorldParams
  readonly sites: Site[]
  readonly edges: EdgeConfig[]
  /** Site number of each edge. */
  readonly edgeSite: Int32Array
  readonly zones: Zone[]
  /** Zone number of each client. */
  readonly clientZone: Int32Array
  /** The zones document steering loads (geo.ts parseZones). */
  readonly zonesDoc: { zones: { cidr: string; lat: number; lon: number }[] }
}

const RAD = Math.PI / 180
const EARTH_KM = 6371.0088

/** The point `km` away from (lat, lon) on `bearing` radians. */
export function offset(lat: number, lon: number, km: number, bearing: number): { lat: number; lon: number } {
  const d = km / EARTH_KM
  const la = lat * RAD
  const lo = lon * RAD
  const lat2 = Math.asin(Math.sin(la) * Math.cos(d) + Math.cos(la) * Math.sin(d) * Math.cos(bearing))
  const lon2 =
    lo +
    Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(la), Math.cos(d) - Math.sin(la) * Math.sin(lat2))
  const wrapped = ((((lon2 / RAD + 180) % 360) + 360) % 360) - 180
  return { lat: Math.round((lat2 / RAD) * 1e4) / 1e4, lon: Math.round(wrapped * 1e4) / 1e4 }
}

/** Splits `total` into integer shares proportional to `weights`, each at least `min`. */
export function apportion(total: number, weights: readonly number[], min: number): number[] {
  const n = weights.length
  if (total < n * min) throw new Error(`cannot give ${n} shares at least ${min} each from ${total}`)
  const sum = weights.reduce((a, b) => a + b, 0)
  const spare = total - n * min
  const exact = weights.map((w) => (w / sum) * spare)
  const out = exact.map((x) => min + Math.floor(x))
  let left = total - out.reduce((a, b) => a + b, 0)
  const order = exact
    .map((x, i) => [x - Math.floor(x), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
  for (let k = 0; left > 0; k = (k + 1) % n, left--) out[order[k]![1]]!++
  return out
}

export function buildWorld(p: WorldParams): World {
  const rnd = prng(p.seed)
  const metros = METROS.length <= p.sites ? METROS : METROS.slice(0, p.sites)
  const pop = metros.map((m) => m[3])
  // Sites: one per metro at least, the rest by population.
  const sitesPer = apportion(p.sites, pop, 1)
  const sites: Site[] = []
  metros.forEach(([name, lat, lon], m) => {
    const k = sitesPer[m]!
    const radius = 15 * Math.sqrt(k)
    for (let i = 0; i < k; i++) {
      const at = i === 0 ? { lat, lon } : offset(lat, lon, radius * Math.sqrt(rnd()), rnd() * 2 * Math.PI)
      sites.push({ name: `${name}-${i + 1}`, metro: m, ...at, edges: [] })
    }
  })

  // Clients by population, around their metro's centre; zones are the grid cells they fall in.
  const clientsPer = apportion(p.clients, pop, 0)
  const zoneByCell = new Map<string, number>()
  const zones: Zone[] = []
  const clientZone = new Int32Array(p.clients)
  let c = 0
  metros.forEach(([, lat, lon], m) => {
    for (let i = 0; i < clientsPer[m]!; i++) {
      const at = offset(lat, lon, -Math.log(1 - rnd()) * p.clientSpreadKm, rnd() * 2 * Math.PI)
      const cy = Math.floor(at.lat / p.zoneCellDeg)
      const cx = Math.floor(at.lon / p.zoneCellDeg)
      const cell = `${cy},${cx}`
      let z = zoneByCell.get(cell)
      if (z === undefined) {
        z = zones.length
        if (z >= 1 << 22) throw new Error('too many zones for the address plan')
        zoneByCell.set(cell, z)
        const centre = {
          lat: Math.round(Math.min(90, (cy + 0.5) * p.zoneCellDeg) * 1e4) / 1e4,
          lon: Math.round(Math.max(-180, Math.min(180, (cx + 0.5) * p.zoneCellDeg)) * 1e4) / 1e4,
        }
        // 10.0.0.0/8 and up, one /24 per zone.
        const prefix = `${10 + (z >> 16)}.${(z >> 8) & 255}.${z & 255}`
        zones.push({ ...centre, prefix, nearestSite: -1, nearestKm: Infinity })
      }
      clientZone[c++] = z
    }
  })
  for (const z of zones)
    sites.forEach((s, i) => {
      const d = distanceKm(z, s)
      if (d < z.nearestKm) {
        z.nearestKm = d
        z.nearestSite = i
      }
    })

  // Edges: per metro by its clients (at least 2 per site), split over its sites.
  const metroSites = metros.map((_, m) => sites.flatMap((s, i) => (s.metro === m ? [i] : [])))
  const edgesPer = apportion(
    p.edges,
    clientsPer.map((n) => n + 1e-6),
    0,
  )
  fixMinimum(
    edgesPer,
    metroSites.map((s) => 2 * s.length),
  )
  const edges: EdgeConfig[] = []
  const edgeSite: number[] = []
  metros.forEach((_, m) => {
    const ms = metroSites[m]!
    const perSite = apportion(
      edgesPer[m]!,
      ms.map(() => 1),
      2,
    )
    const big = perSite.map((n) => Array.from({ length: n }, () => rnd() < p.bigEdgeShare))
    const weights = big.flat().reduce((a, b) => a + (b ? 2 : 1), 0)
    // Capacity of a weight-1 edge: the metro's expected peak over its weight, at the target load.
    const peak = clientsPer[m]! * p.peakSessionsPerClient * p.sessionBytesPerSec
    const unit = Math.max(p.sessionBytesPerSec, peak / (weights * p.targetPeakLoad))
    ms.forEach((si, k) => {
      const s = sites[si]!
      big[k]!.forEach((isBig, e) => {
        s.edges.push(edges.length)
        edgeSite.push(si)
        edges.push({
          id: `${s.name}-e${e + 1}`,
          url: `http://${s.name}-e${e + 1}.sim`,
          site: s.name,
          lat: s.lat,
          lon: s.lon,
          capacityBytesPerSec: Math.round(unit * (isBig ? 2 : 1)),
          weight: isBig ? 2 : 1,
        })
      })
    })
  })
  const zonesDoc = {
    zones: zones.map((z) => ({ cidr: `${z.prefix}.0/24`, lat: z.lat, lon: z.lon })),
  }
  return { params: p, sites, edges, edgeSite: Int32Array.from(edgeSite), zones, clientZone, zonesDoc }
}

/** Raises shares below their minimum, taking from the largest ones (sum kept). */
function fixMinimum(shares: number[], mins: readonly number[]): void {
  for (let i = 0; i < shares.length; i++)
    while (shares[i]! < mins[i]!) {
      let j = 0
      for (let k = 1; k < shares.length; k++) if (shares[k]! - mins[k]! > shares[j]! - mins[j]!) j = k
      if (shares[j]! <= mins[j]!) throw new Error('too few edges for two per site')
      shares[j]!--
      shares[i]!++
    }
}
