/**
 * Candidate lists cached per client location, so a decision at a fixed point (a coverage
 * zone, the default location) skips the k-d tree walk: it ranks the few slots cached for
 * that point (fleet-index.ts `candidates`) with the same code as a full scan.
 *
 * A cached list stays right until a change reaches it. Every change to the index (an edge
 * added, removed, or its usability flipped: `FleetIndex.touch`) is appended to a ring of
 * recent changes with the slot's position and site. A list records the horizon its walk
 * stopped at (the squared chord beyond which nothing could enter it) and the sites it took
 * whole; on its next use it replays the changes made since it was checked, and is walked
 * again only if one of them fell inside that horizon or in one of those sites (or if more
 * changes came than the ring holds). So a change costs O(1) when it happens, and moves only
 * the lists of the places near it: an edge failing in Tokyo leaves Rome's list alone.
 * Load and titles are read at ranking time, never cached.
 */
import type { EdgeInput } from './select.js'

/** Changes remembered; a list older than this many changes is walked again. */
const RING = 1024
/** Slack on the horizon: a change on the boundary invalidates (a needless walk, never a wrong list). */
const SLACK = 1e-7

export class ChangeLog {
  /** Changes so far; change `q` lives at `q % RING`. */
  seq = 0
  private readonly x = new Float64Array(RING)
  private readonly y = new Float64Array(RING)
  private readonly z = new Float64Array(RING)
  private readonly site: string[] = new Array<string>(RING).fill('')

  record(x: number, y: number, z: number, site: string): void {
    const k = this.seq % RING
    this.x[k] = x
    this.y[k] = y
    this.z[k] = z
    this.site[k] = site
    this.seq++
  }

  /** True when a change since `from` may alter the list of an entry. */
  reaches(from: number, e: CacheEntry): boolean {
    if (this.seq - from > RING) return true
    for (let q = from; q < this.seq; q++) {
      const k = q % RING
      const key = 2 - 2 * (this.x[k]! * e.cx + this.y[k]! * e.cy + this.z[k]! * e.cz)
      if (key <= e.horizon + SLACK || e.sites.includes(this.site[k]!)) return true
    }
    return false
  }
}

export interface CacheEntry {
  /** Options the list was walked for. */
  readonly maxResults: number
  readonly bandKm: number
  /** The edges-by-slot array the usability was read from (a new array is a new world). */
  edges: readonly (EdgeInput | undefined)[]
  /** The change count the list is known good at. */
  seq: number
  readonly cx: number
  readonly cy: number
  readonly cz: number
  /** Squared chord the walk stopped at (Infinity: it saw every slot). */
  horizon: number
  /** Sites taken whole (those of the nearest edges). */
  sites: string[]
  slots: number[]
  next: CacheEntry | null
}

/** Entries per location object, several when routes ask for different list lengths. */
export class CandidateCache {
  private readonly byPlace = new Map<object, CacheEntry>()

  /** `max` bounds the places held: past it the cache starts over (places come from the zones file). */
  constructor(private readonly max = 1 << 18) {}

  get size(): number {
    return this.byPlace.size
  }

  find(place: object, maxResults: number, bandKm: number): CacheEntry | undefined {
    for (let e: CacheEntry | null | undefined = this.byPlace.get(place); e; e = e.next)
      if (e.maxResults === maxResults && e.bandKm === bandKm) return e
    return undefined
  }

  add(place: object, entry: CacheEntry): void {
    if (this.byPlace.size >= this.max) this.byPlace.clear()
    entry.next = this.byPlace.get(place) ?? null
    this.byPlace.set(place, entry)
  }

  clear(): void {
    this.byPlace.clear()
  }
}
