/**
 * Eviction and admission by expected demand (`--disk-eviction demand`, `--disk-admission
 * demand`; the model is demand.ts). Eviction samples: the victim is the record of least
 * expected demand among `samples` ordinary records drawn at random (LHD's and Redis's sampled
 * eviction), so every rate is read when it is compared, after the title's popularity and its
 * playheads have moved, with no priority queue to keep up to date on every hit; a hit costs
 * one store of a time. Records the model cannot place (outside /vod/, master playlists) are
 * weighed by their own recency: one request per idle time.
 *
 * The draws come from a seeded generator, so the same requests evict the same records (the
 * hit-ratio replay and a real disk store agree request by request).
 */
import type { DiskAdmission } from './admission.js'
import type { DemandModel } from './demand.js'
import type { DiskRecord } from './disk-record.js'

export type EvictionMode = 'lru' | 'demand'
export const EVICTION_MODES: readonly EvictionMode[] = ['lru', 'demand']

/** A rate as eviction and admission compare it: NaN as none. */
function ranked(rate: number): number {
  return Number.isNaN(rate) ? 0 : rate
}

/** Records drawn per eviction. */
export const SAMPLES = 32

export class DemandOrder {
  /** Ordinary records, in no order: each knows its slot (swap-remove keeps this O(1)). */
  private readonly pool: DiskRecord[] = []
  private readonly slots = new Map<DiskRecord, number>()
  private seed = 0x2545f491
  /** The victim last chosen and not yet evicted: an admission's victim is the one evicted next. */
  private chosen: DiskRecord | undefined

  constructor(
    readonly model: DemandModel,
    readonly samples = SAMPLES,
  ) {}

  get size(): number {
    return this.pool.length
  }

  add(rec: DiskRecord): void {
    if (this.slots.has(rec)) return
    this.slots.set(rec, this.pool.length)
    this.pool.push(rec)
    rec.used = this.model.now()
  }

  remove(rec: DiskRecord): void {
    const at = this.slots.get(rec)
    if (at === undefined) return
    this.slots.delete(rec)
    const last = this.pool.pop()!
    if (last !== rec) {
      this.pool[at] = last
      this.slots.set(last, at)
    }
    if (this.chosen === rec) this.chosen = undefined
  }

  touch(rec: DiskRecord): void {
    rec.used = this.model.now()
  }

  /** Expected requests per ms for a record, now. */
  rate(rec: DiskRecord, now: number): number {
    let k = rec.demand
    // A key of a stream since dropped from the model is placed again (its counts start anew).
    if (k === undefined || k?.stream.dropped) {
      k = this.model.keyOf(rec.key) ?? null
      rec.demand = k
    }
    if (k) return this.model.rate(k, now)
    return 1 / Math.max(1, now - (rec.used ?? 0))
  }

  /**
   * The record to evict next, never `keep` (undefined when there is none other): the victim an
   * admission was last shown, if it is still here, else a fresh draw.
   */
  next(keep: DiskRecord | undefined): DiskRecord | undefined {
    const c = this.chosen
    this.chosen = undefined
    if (c && c !== keep && this.slots.has(c)) return c
    return this.victim(keep)
  }

  /** The least demanded of a fresh draw (kept as the next eviction's victim). */
  victim(keep: DiskRecord | undefined): DiskRecord | undefined {
    const n = this.pool.length
    const now = this.model.now()
    let best: DiskRecord | undefined
    let bestRate = Number.POSITIVE_INFINITY
    const consider = (rec: DiskRecord) => {
      if (rec === keep) return
      // A rate that is not a number counts as none, and the first record drawn is a victim
      // whatever its rate: one is always found, so the tier never outgrows its size whatever
      // the model says.
      const r = ranked(this.rate(rec, now))
      // Ties go to the record idle longest.
      if (!best || r < bestRate || (r === bestRate && (rec.used ?? 0) < (best.used ?? 0))) {
        best = rec
        bestRate = r
      }
    }
    if (n <= this.samples) for (const rec of this.pool) consider(rec)
    else for (let i = 0; i < this.samples; i++) consider(this.pool[this.draw(n)]!)
    this.chosen = best
    return best
  }

  /** A uniform index below `n` (xorshift32). */
  private draw(n: number): number {
    let x = this.seed
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.seed = x >>> 0
    return this.seed % n
  }
}

/**
 * Admission by expected demand: a viewer's miss goes to disk when the disk has room, or when
 * the model expects it asked for at least as often as the record the disk would evict for it.
 * Every request is recorded into the model here (the tiered store's `noteRequest`), and into
 * `inner` too when another admission decides (`--disk-eviction demand` with `all`, `frequency`
 * or `tinylfu`).
 */
export class DemandAdmission implements DiskAdmission {
  admitted = 0
  refused = 0

  constructor(
    readonly model: DemandModel,
    /** Decides instead of the model when set (the model then only learns). */
    readonly inner: DiskAdmission | undefined,
    readonly decides: boolean,
  ) {}

  record(key: string): void {
    this.model.record(key)
    this.inner?.record?.(key)
  }

  admit(key: string, victim?: () => string | undefined): boolean {
    if (!this.decides) return this.inner ? this.inner.admit(key, victim) : true
    const v = victim?.()
    let ok = true
    if (v !== undefined) {
      const cand = this.model.keyOf(key)
      const held = this.model.keyOf(v)
      if (cand && held) {
        const now = this.model.now()
        ok = ranked(this.model.rate(cand, now)) >= ranked(this.model.rate(held, now))
      }
    }
    if (ok) this.admitted++
    else this.refused++
    return ok
  }
}
