/**
 * What the disk tier holds and what to evict: an in-memory index of object files, least
 * recently used first, bounded by bytes. Two partitions share the byte bound: protected
 * objects (prefill) are evicted only when the protected share itself is exceeded; ordinary
 * objects are evicted first. The I/O lives in disk-store.ts and disk-reader.ts; this file does
 * no I/O.
 *
 * Prefill (edge/prefill) decides what is protected: `protect` moves a held record into the
 * share under a title and rank, `unprotectTitle` releases a title. Inside the share the
 * least popular title goes first (highest rank number; unranked, e.g. restored from disk and
 * not claimed again, before any ranked one), oldest object first within it.
 */
import type { DemandModel } from './demand.js'
import { DemandOrder } from './demand-order.js'
import type { DiskRecord } from './disk-record.js'
import { isLowRung, LOW_AGE_FACTOR } from './ladder.js'
import { TitleIndex } from './store.js'
import { isVariantKey, VariantIndex } from './variants.js'

export { DiskRecord } from './disk-record.js'

/** Told of every record that enters or leaves the index (a cluster primary mirrors it to its workers). */
export interface DiskIndexListener {
  added(rec: DiskRecord): void
  removed(rec: DiskRecord): void
}

/** One protected title's records (oldest first) and their bytes. */
interface Guard {
  readonly title: string
  readonly recs: Map<string, DiskRecord>
  bytes: number
}

export class DiskIndex {
  listener: DiskIndexListener | undefined
  /** Map iteration order is recency: oldest first. Ordinary records, top renditions (or all). */
  private readonly general = new Map<string, DiskRecord>()
  /** Ordinary records low in their ladder, with `lowRendition` set (ladder.ts). */
  private readonly low = new Map<string, DiskRecord>()
  /** Counts adds and uses: a record's age is the ticks since its last use. */
  private tick = 0
  /** The oldest record of each ordinary partition, found without rescanning (LruHead). */
  private readonly generalHead = new LruHead()
  private readonly lowHead = new LruHead()
  private readonly guarded = new Map<string, DiskRecord>()
  /** The protected records by title, each oldest first: eviction and per-title bytes without a scan. */
  private readonly guards = new Map<string, Guard>()
  /**
   * Protected titles, least popular first (eviction order), rebuilt only when a title enters the
   * share or a rank changes; titles that left it are skipped. Keeps an eviction O(1) in objects.
   */
  private worstFirst: Guard[] = []
  private worstDirty = false
  private readonly titles = new TitleIndex()
  /** The variants of each URL held here (variants.ts); the store sets the bound. */
  readonly variants = new VariantIndex()
  /** Rank of each protected title (0 = most popular). */
  private readonly ranks = new Map<string, number>()
  bytes = 0
  protectedBytes = 0
  evictions = 0
  /** Records added and removed so far (the store rewrites its snapshot when this moved). */
  changes = 0
  /** The byte bounds in force: --disk-size and its share, or less while the filesystem is full (setLimit). */
  maxBytes: number
  protectedMaxBytes: number
  /** Eviction by expected demand (demand-order.ts), instead of LRU, when a model is given. */
  readonly order: DemandOrder | undefined

  constructor(
    maxBytes: number,
    protectedMaxBytes: number,
    /** Called for each record evicted (to unlink its file). */
    private readonly onEvict: (rec: DiskRecord) => void,
    /** Ladder-aware eviction: renditions up to this height are kept longer (0: plain LRU). */
    readonly lowRendition = 0,
    /** `--disk-eviction demand`: the model the ordinary records are evicted by. */
    demand?: DemandModel,
  ) {
    this.maxBytes = maxBytes
    this.protectedMaxBytes = protectedMaxBytes
    this.order = demand ? new DemandOrder(demand) : undefined
  }

  /**
   * The index of a disk tier of `maxBytes` with `protectedShare` of it reserved for prefill:
   * what the disk store builds, and what the hit-ratio replay (bench/hit-ratio) drives.
   */
  static forTier(
    tier: { maxBytes: number; protectedShare: number; lowRendition?: number; demand?: DemandModel },
    onEvict: (rec: DiskRecord) => void,
  ): DiskIndex {
    return new DiskIndex(
      tier.maxBytes,
      Math.floor(tier.maxBytes * tier.protectedShare),
      onEvict,
      tier.lowRendition ?? 0,
      tier.demand,
    )
  }

  get size(): number {
    return this.general.size + this.low.size + this.guarded.size
  }

  get(key: string): DiskRecord | undefined {
    return this.general.get(key) ?? this.low.get(key) ?? this.guarded.get(key)
  }

  /** The ordinary partition a record belongs to. */
  private ordinary(rec: DiskRecord): Map<string, DiskRecord> {
    return rec.low ? this.low : this.general
  }

  /** Marks a record most recently used. */
  touch(rec: DiskRecord): void {
    // A record that left the index (or was replaced) while it was read stays out.
    if (this.get(rec.key) !== rec) return
    rec.used = ++this.tick
    if (!rec.protected) {
      if (this.order) {
        this.order.touch(rec)
        return
      }
      const map = this.ordinary(rec)
      if (map.delete(rec.key)) map.set(rec.key, rec)
      return
    }
    if (!this.guarded.delete(rec.key)) return
    this.guarded.set(rec.key, rec)
    const recs = this.guards.get(guardTitle(rec))?.recs
    if (recs?.delete(rec.key)) recs.set(rec.key, rec)
  }

  /** New bounds (the filesystem holds less, or more again); evicts down to them. */
  setLimit(maxBytes: number, protectedMaxBytes: number): void {
    this.maxBytes = maxBytes
    this.protectedMaxBytes = protectedMaxBytes
    this.evict(undefined)
  }

  /** Adds (or replaces) a record, then evicts down to the bounds. Returns false if it cannot fit at all. */
  add(rec: DiskRecord): boolean {
    // A rewrite of a protected object (revalidation) stays protected.
    if (this.guarded.has(rec.key)) rec.protected = true
    const limit = rec.protected ? this.protectedMaxBytes : this.maxBytes
    if (rec.size > limit) return false
    this.remove(rec.key)
    // Ladder-aware eviction is LRU's; the demand order weighs renditions by their own demand.
    rec.low = !this.order && isLowRung(rec.key, this.lowRendition)
    rec.used = ++this.tick
    if (rec.protected) this.guard(rec)
    else {
      this.ordinary(rec).set(rec.key, rec)
      this.order?.add(rec)
    }
    this.bytes += rec.size
    this.changes++
    this.titles.add(rec.title, rec.key)
    this.listener?.added(rec)
    // A URL holds one plain object or its variants, a bounded number of them (variants.ts).
    // (A plain key's fields are not needed: a restored record's entry is not built for them.)
    const fields = isVariantKey(rec.key) ? rec.entry.meta.varyKey : undefined
    for (const k of this.variants.add(rec.key, fields)) {
      const old = this.remove(k)
      if (old) this.onEvict(old)
    }
    this.evict(rec)
    return true
  }

  remove(key: string): DiskRecord | undefined {
    const rec = this.get(key)
    if (!rec) return undefined
    if (rec.protected) this.unguard(rec)
    else {
      this.ordinary(rec).delete(key)
      this.order?.remove(rec)
    }
    this.bytes -= rec.size
    this.changes++
    this.titles.remove(rec.title, key)
    this.variants.remove(key)
    this.listener?.removed(rec)
    return rec
  }

  /** Moves a held record into the protected share under `title` at `rank`. False if not held or too large. */
  protect(key: string, title: string, rank: number): boolean {
    if (this.ranks.get(title) !== rank) {
      this.ranks.set(title, rank)
      this.worstDirty = true
    }
    const rec = this.get(key)
    if (!rec) return false
    if (rec.protected) return true
    if (rec.size > this.protectedMaxBytes) return false
    this.ordinary(rec).delete(key)
    this.order?.remove(rec)
    this.guard(rec)
    this.changes++
    this.evict(rec)
    return rec.protected && this.guarded.has(key)
  }

  /** Releases a title's protected records to ordinary LRU (as most recently used). */
  unprotectTitle(title: string): number {
    this.ranks.delete(title)
    this.worstDirty = true
    const g = this.guards.get(title)
    if (!g) return 0
    const recs = [...g.recs.values()]
    for (const rec of recs) {
      this.unguard(rec)
      rec.used = ++this.tick
      this.ordinary(rec).set(rec.key, rec)
      this.order?.add(rec)
    }
    this.changes += recs.length
    if (recs.length) this.evict(undefined)
    return recs.length
  }

  /** Protected bytes per title, with each title's rank (undefined when unranked). */
  protectedTitles(): Array<{ title: string; rank: number | undefined; bytes: number }> {
    return [...this.guards.values()].map((g) => ({
      title: g.title,
      rank: this.ranks.get(g.title),
      bytes: g.bytes,
    }))
  }

  protectedBytesOf(title: string): number {
    return this.guards.get(title)?.bytes ?? 0
  }

  private guard(rec: DiskRecord): void {
    rec.protected = true
    this.guarded.set(rec.key, rec)
    this.protectedBytes += rec.size
    const title = guardTitle(rec)
    let g = this.guards.get(title)
    if (!g) {
      g = { title, recs: new Map(), bytes: 0 }
      this.guards.set(title, g)
      this.worstDirty = true
    }
    g.recs.set(rec.key, rec)
    g.bytes += rec.size
  }

  private unguard(rec: DiskRecord): void {
    this.guarded.delete(rec.key)
    rec.protected = false
    this.protectedBytes -= rec.size
    const title = guardTitle(rec)
    const g = this.guards.get(title)
    if (!g?.recs.delete(rec.key)) return
    g.bytes -= rec.size
    if (g.recs.size === 0) this.guards.delete(title)
  }

  private evict(keep: DiskRecord | undefined): void {
    while (this.protectedBytes > this.protectedMaxBytes) if (!this.evictProtected(keep)) break
    while (this.bytes > this.maxBytes) {
      if (this.evictOrdinary(keep)) continue
      if (!this.evictProtected(keep)) break
    }
  }

  /**
   * Evicts the least recently used ordinary record; with ladder-aware eviction the oldest top
   * rendition goes first, unless the oldest low record has been idle LOW_AGE_FACTOR times as long.
   */
  private evictOrdinary(keep: DiskRecord | undefined): boolean {
    const victim = this.nextOrdinary(keep)
    if (!victim) return false
    this.remove(victim.key)
    this.evictions++
    this.onEvict(victim)
    return true
  }

  /** The ordinary record evicted next (ladder-aware: the rule evictOrdinary states). */
  private nextOrdinary(keep: DiskRecord | undefined): DiskRecord | undefined {
    if (this.order) return this.order.next(keep)
    const high = this.generalHead.peek(this.general, keep)
    const low = this.lowHead.peek(this.low, keep)
    if (!high || !low) return high ?? low
    return this.tick - low.used! > LOW_AGE_FACTOR * (this.tick - high.used!) ? low : high
  }

  /**
   * The ordinary record an add of `bytes` would evict first, for an admission that weighs a
   * candidate against it (admission.ts, TinyLFU); undefined when the bytes fit without evicting
   * an ordinary record.
   */
  victim(bytes: number): DiskRecord | undefined {
    if (this.bytes + bytes <= this.maxBytes) return undefined
    return this.order ? this.order.victim(undefined) : this.nextOrdinary(undefined)
  }

  /**
   * Evicts the oldest object of the least popular protected title (unranked first, e.g. restored
   * from disk and not claimed again; then the highest rank number; ties by first protected).
   */
  private evictProtected(keep: DiskRecord | undefined): boolean {
    if (this.worstDirty) {
      this.worstDirty = false
      const rank = (g: Guard) => this.ranks.get(g.title) ?? Number.POSITIVE_INFINITY
      this.worstFirst = [...this.guards.values()].sort((a, b) => rank(b) - rank(a) || 0)
    }
    let skipped = 0
    for (const g of this.worstFirst) {
      // A title that left the share stays in the list (it is skipped) until the next rebuild.
      if (this.guards.get(g.title) !== g) {
        skipped++
        continue
      }
      for (const rec of g.recs.values()) {
        if (rec === keep) continue
        if (skipped) this.worstFirst = this.worstFirst.slice(skipped)
        this.remove(rec.key)
        this.evictions++
        this.onEvict(rec)
        return true
      }
    }
    return false
  }

  /** Every record, least recently used first within each partition. */
  records(): DiskRecord[] {
    return [...this.general.values(), ...this.low.values(), ...this.guarded.values()]
  }

  keysOf(title: string): string[] {
    return this.titles.keys(title)
  }

  titleIndex(title: string) {
    return this.titles.get(title)
  }

  titleList(): string[] {
    return this.titles.titles()
  }
}

/**
 * The least recently used record of a partition. A Map keeps deleted entries as holes until it
 * is rehashed, so a fresh iterator finds the first live entry only after walking every hole
 * left by the evictions before it (tens of microseconds per eviction at 10,000 records, a
 * hundred at 50,000). One iterator kept across evictions walks each hole once: entries are
 * only ever appended (a use re-inserts at the end, where the iterator meets it again), and a
 * record it returned is stale once it left the map or was used since (its tick moved).
 */
class LruHead {
  private it: Iterator<DiskRecord> | undefined
  private rec: DiskRecord | undefined
  private used: number | undefined

  peek(map: Map<string, DiskRecord>, keep: DiskRecord | undefined): DiskRecord | undefined {
    while (!this.rec || map.get(this.rec.key) !== this.rec || this.rec.used !== this.used) {
      this.it ??= map.values()
      const next = this.it.next()
      if (next.done) {
        this.it = undefined
        this.rec = undefined
        return undefined
      }
      this.rec = next.value
      this.used = next.value.used
    }
    // The record being added is the newest: it is the oldest only when it is alone.
    return this.rec === keep ? undefined : this.rec
  }
}

function guardTitle(rec: DiskRecord): string {
  return rec.title ?? '_'
}
