/**
 * The steering decision, as a pure function: (client location, edges with their health and
 * load, title, options) → a ranked list. No I/O, no clock, no randomness: the same inputs
 * give the same answer, so it is tested as a table of cases and benchmarked in isolation.
 *
 * 1. Only usable edges (healthy and not overloaded) are ranked.
 * 2. The nearest usable edge by great-circle distance fixes the "band": every usable edge of
 *    its site, and every usable edge within `bandKm` of the nearest distance. Edges in the
 *    band are equally good places to serve from, so the title decides among them.
 * 3. In the band, rendezvous (highest-random-weight) hashing orders edges per title: each
 *    title lands on the same edge of a site (its cache stays hot, the title is cached once
 *    per site, not on every edge), and many titles spread across the site's edges. Weighted
 *    HRW: score = -weight / ln(u), u uniform in (0,1) from a hash of (title, edge id).
 * 4. Bounded load: an edge whose load is over its share of the band (`boundedLoadFactor`
 *    times the band's mean load, and above `boundedLoadFloor`) moves behind the others, so
 *    its titles spill to the next edge in each title's own order rather than piling up.
 * 5. Edges that report holding the title complete (`titlesComplete`) come first among the
 *    band's edges that are within their share.
 * 6. Failover order: with a client key (from the client's address), the band after the first
 *    edge is ordered per client (rendezvous over (title, edge, client), within the same ranks):
 *    when the first edge fails, its players spread over the band instead of every viewer of a
 *    title landing on the title's second edge at once, before any load report can spill them.
 *    The first choice, and so each title's place in the caches, does not depend on the key.
 * 7. The rest follow by distance (ties by the title's HRW order), up to `maxResults`.
 */
import type { Location } from './geo.js'

export interface EdgeInput {
  readonly id: string
  readonly url: string
  readonly site: string
  readonly lat: number
  readonly lon: number
  readonly weight: number
  /** Egress over capacity, as last reported (0 when unknown). */
  readonly load: number
  /** In rotation: healthy and not overloaded. */
  readonly usable: boolean
  readonly titlesComplete?: ReadonlySet<string>
}

export interface SelectOptions {
  /** Edges within this many km of the nearest one share its titles by rendezvous hashing. */
  readonly bandKm: number
  /** How many edges to return (the first is the choice). */
  readonly maxResults: number
  /** An edge over this multiple of the band's mean load spills titles to the next edge. */
  readonly boundedLoadFactor: number
  /** ...but never below this load: spreading idle edges' titles around would only cool caches. */
  readonly boundedLoadFloor: number
  /**
   * Rank as if every edge were in rotation and unloaded (the preferred edge the /play reason
   * compares with), without copying the fleet.
   */
  readonly asIfAllUp?: boolean
}

export const DEFAULT_SELECT_OPTIONS: SelectOptions = Object.freeze({
  bandKm: 50,
  maxResults: 5,
  boundedLoadFactor: 1.25,
  boundedLoadFloor: 0.2,
})

export interface Ranked {
  readonly edge: EdgeInput
  readonly distanceKm: number
  /** Why it is where it is in the list. */
  readonly reason: 'holder' | 'rendezvous' | 'spill' | 'distance'
}

const EARTH_KM = 6371.0088
const RAD = Math.PI / 180

/** Great-circle distance (haversine), in km. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const dLat = (b.lat - a.lat) * RAD
  const dLon = (b.lon - a.lon) * RAD
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(s)))
}

/** FNV-1a over UTF-16 code units, then a murmur3 finaliser for avalanche. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return fmix32(h)
}

export function fmix32(x: number): number {
  let h = x >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Weighted rendezvous score of an edge for a title; higher wins. */
export function rendezvousScore(titleHash: number, edgeId: string, weight: number): number {
  return weightedScore(hash32(edgeId, titleHash), weight)
}

/** -weight / ln(u), u in (0, 1) from a 32-bit hash. */
function weightedScore(h: number, weight: number): number {
  return -weight / Math.log((h + 1) / 4294967297)
}

/**
 * The fleet with each edge's position as a unit vector, computed once per health round:
 * ranking by distance is then a dot product per edge (no trigonometry per decision).
 */
export interface PreparedFleet {
  readonly edges: readonly EdgeInput[]
  readonly x: Float64Array
  readonly y: Float64Array
  readonly z: Float64Array
}

export function prepareFleet(edges: readonly EdgeInput[]): PreparedFleet {
  const n = edges.length
  const x = new Float64Array(n)
  const y = new Float64Array(n)
  const z = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const e = edges[i]!
    const cl = Math.cos(e.lat * RAD)
    x[i] = cl * Math.cos(e.lon * RAD)
    y[i] = cl * Math.sin(e.lon * RAD)
    z[i] = Math.sin(e.lat * RAD)
  }
  return { edges, x, y, z }
}

/** The smallest dot product (unit vectors) still in the band of a nearest edge at `best`. */
export function bandMinDot(best: number, bandKm: number): number {
  const bandAngle = Math.acos(Math.min(1, best)) + bandKm / EARTH_KM
  return bandAngle >= Math.PI ? -2 : Math.cos(bandAngle) - 1e-12
}

function isPrepared(f: PreparedFleet | readonly EdgeInput[]): f is PreparedFleet {
  return !Array.isArray(f)
}

export function select(
  client: Location,
  fleet: PreparedFleet | readonly EdgeInput[],
  title: string,
  options: SelectOptions = DEFAULT_SELECT_OPTIONS,
  clientKey?: number,
): Ranked[] {
  const f = isPrepared(fleet) ? fleet : prepareFleet(fleet)
  return rankCandidates(client, f, null, title, options, clientKey)
}

/** The client's position as a unit vector. */
export function unitVector(at: { lat: number; lon: number }): [number, number, number] {
  const cl = Math.cos(at.lat * RAD)
  return [cl * Math.cos(at.lon * RAD), cl * Math.sin(at.lon * RAD), Math.sin(at.lat * RAD)]
}

/** Positions and edges by slot: a prepared fleet, or a spatial index's slots (fleet-index.ts). */
export interface Slots {
  readonly edges: readonly (EdgeInput | undefined)[]
  readonly x: Float64Array
  readonly y: Float64Array
  readonly z: Float64Array
}

/**
 * The ranking itself, over every slot (`candidates` null) or over the given slots only. The
 * spatial index (fleet-index.ts) passes the slots that can matter (the band, the nearest
 * site, and enough of the nearest others, ties included), so both ways give the same list.
 */
/** Scratch space for one ranking (decisions are synchronous): no arrays allocated per decision. */
const scratch = {
  band: [] as number[],
  bandHash: [] as number[],
  bandScore: [] as number[],
  clientScore: [] as number[],
  bandRank: [] as number[],
  order: [] as number[],
  rest: [] as number[],
  restDot: [] as number[],
  /** A rest slot's rendezvous score, computed only when a distance tie needs it (NaN: not yet). */
  restScore: [] as number[],
}

export function rankCandidates(
  client: Location,
  f: Slots,
  candidates: ArrayLike<number> | null,
  title: string,
  options: SelectOptions,
  clientKey?: number,
): Ranked[] {
  const { edges, x, y, z } = f
  const n = candidates ? candidates.length : edges.length
  const cl = Math.cos(client.lat * RAD)
  const cx = cl * Math.cos(client.lon * RAD)
  const cy = cl * Math.sin(client.lon * RAD)
  const cz = Math.sin(client.lat * RAD)
  const allUp = options.asIfAllUp === true

  // Pass 1: the nearest usable edge (largest dot product; ties to the smaller id).
  let nearest = -1
  let best = -2
  for (let j = 0; j < n; j++) {
    const i = candidates ? candidates[j]! : j
    const e = edges[i]
    if (e === undefined || (!e.usable && !allUp)) continue
    const d = x[i]! * cx + y[i]! * cy + z[i]! * cz
    if (d > best || (d === best && e.id < edges[nearest]!.id)) {
      best = d
      nearest = i
    }
  }
  if (nearest === -1) return []
  const minDot = bandMinDot(best, options.bandKm)
  const site = edges[nearest]!.site
  const titleHash = hash32(title)
  const max = options.maxResults > 0 ? options.maxResults : n

  // Pass 2: the band (rendezvous-ordered below) and the nearest `max` others by distance
  // (ties by the title's rendezvous order, then id), kept in a small sorted array: O(n × max).
  const { band, bandHash, bandScore, bandRank, order, rest, restDot, restScore } = scratch
  let bandLen = 0
  let restLen = 0
  let loadSum = 0
  for (let j = 0; j < n; j++) {
    const i = candidates ? candidates[j]! : j
    const e = edges[i]
    if (e === undefined || (!e.usable && !allUp)) continue
    const d = x[i]! * cx + y[i]! * cy + z[i]! * cz
    if (d >= minDot || e.site === site) {
      const h = hash32(e.id, titleHash)
      band[bandLen] = i
      bandHash[bandLen] = h
      bandScore[bandLen++] = weightedScore(h, e.weight)
      if (!allUp) loadSum += e.load
      continue
    }
    let score = NaN
    // Does slot i (at d) go before rest entry k?
    const before = (k: number): boolean => {
      const dk = restDot[k]!
      if (d !== dk) return d > dk
      if (score !== score) score = rendezvousScore(titleHash, e.id, e.weight)
      let sk = restScore[k]!
      if (sk !== sk) {
        const o = edges[rest[k]!]!
        restScore[k] = sk = rendezvousScore(titleHash, o.id, o.weight)
      }
      return score !== sk ? score > sk : e.id < edges[rest[k]!]!.id
    }
    const full = restLen === max
    if (full && !before(max - 1)) continue
    let k = full ? max - 1 : restLen
    while (k > 0 && before(k - 1)) {
      rest[k] = rest[k - 1]!
      restDot[k] = restDot[k - 1]!
      restScore[k] = restScore[k - 1]!
      k--
    }
    rest[k] = i
    restDot[k] = d
    restScore[k] = score
    if (!full) restLen++
  }
  const share = Math.max(options.boundedLoadFactor * (loadSum / bandLen), options.boundedLoadFloor)
  // The band's first `max` in order: holders, then the rest within their share, then spills;
  // each by the title's score (higher first), ties by id.
  for (let b = 0; b < bandLen; b++) {
    const e = edges[band[b]!]!
    bandRank[b] = !allUp && e.load > share ? 2 : e.titlesComplete?.has(title) ? 0 : 1
  }
  let placed = topOfBand(edges, bandLen, bandScore, 0, Math.min(max, bandLen), -1)
  if (clientKey !== undefined && placed > 1) {
    // After the first, the client's own order (step 6 above), with the same ranks.
    const { clientScore } = scratch
    for (let b = 0; b < bandLen; b++)
      clientScore[b] = weightedScore(fmix32((bandHash[b]! ^ clientKey) >>> 0), edges[band[b]!]!.weight)
    placed = 1 + topOfBand(edges, bandLen, clientScore, 1, placed - 1, order[0]!)
  }
  const out: Ranked[] = []
  for (let b = 0; b < placed; b++) {
    const o = order[b]!
    const r = bandRank[o]!
    const e = edges[band[o]!]!
    out.push({
      edge: e,
      distanceKm: distanceKm(client, e),
      reason: r === 0 ? 'holder' : r === 1 ? 'rendezvous' : 'spill',
    })
  }
  for (let k = 0; k < restLen && out.length < max; k++) {
    const e = edges[rest[k]!]!
    out.push({ edge: e, distanceKm: distanceKm(client, e), reason: 'distance' })
  }
  return out
}

/**
 * Puts the best `limit` band entries (all but `skip`) into `order` from `from` on, best first:
 * by rank (lower first), then `score` (higher first), then id. A bounded insertion, O(band ×
 * limit): a band can hold a metro's hundreds of edges, and only the first few are handed out.
 */
function topOfBand(
  edges: readonly (EdgeInput | undefined)[],
  bandLen: number,
  score: readonly number[],
  from: number,
  limit: number,
  skip: number,
): number {
  const { band, bandRank, order } = scratch
  const end = from + limit
  let top = from
  const before = (b: number, o: number): boolean =>
    bandRank[b]! !== bandRank[o]!
      ? bandRank[b]! < bandRank[o]!
      : score[b]! !== score[o]!
        ? score[b]! > score[o]!
        : edges[band[b]!]!.id < edges[band[o]!]!.id
  for (let b = 0; b < bandLen; b++) {
    if (b === skip || (top === end && !before(b, order[end - 1]!))) continue
    let k = top === end ? end - 1 : top++
    while (k > from && before(b, order[k - 1]!)) {
      order[k] = order[k - 1]!
      k--
    }
    order[k] = b
  }
  return top - from
}
