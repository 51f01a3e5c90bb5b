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
import type { CacheEntry } from './entry.js'
import { TitleIndex } from './store.js'

export interface DiskRecord {
  key: string
  file: string
  /** File size: body + trailer. */
  size: number
  entry: CacheEntry
  protected: boolean
}

/** Told of every record that enters or leaves the index (a cluster primary mirrors it to its workers). */
export interface DiskIndexListener {
  added(rec: DiskRecord): void
  removed(rec: DiskRecord): void
}

export class DiskIndex {
  listener: DiskIndexListener | undefined
  /** Map iteration order is recency: oldest first. */
  private readonly general = new Map<string, DiskRecord>()
  private readonly guarded = new Map<string, DiskRecord>()
  private readonly titles = new TitleIndex()
  /** Rank of each protected title (0 = most popular). */
  private readonly ranks = new Map<string, number>()
  bytes = 0
  protectedBytes = 0
  evictions = 0

  constructor(
    readonly maxBytes: number,
    readonly protectedMaxBytes: number,
    /** Called for each record evicted (to unlink its file). */
    private readonly onEvict: (rec: DiskRecord) => void,
  ) {}

  /**
   * The index of a disk tier of `maxBytes` with `protectedShare` of it reserved for prefill:
   * what the disk store builds, and what the hit-ratio replay (bench/hit-ratio) drives.
   */
  static forTier(
    tier: { maxBytes: number; protectedShare: number },
    onEvict: (rec: DiskRecord) => void,
  ): DiskIndex {
    return new DiskIndex(tier.maxBytes, Math.floor(tier.maxBytes * tier.protectedShare), onEvict)
  }

  get size(): number {
    return this.general.size + this.guarded.size
  }

  get(key: string): DiskRecord | undefined {
    return this.general.get(key) ?? this.guarded.get(key)
  }

  /** Marks a record most recently used. */
  touch(rec: DiskRecord): void {
    const map = rec.protected ? this.guarded : this.general
    if (map.delete(rec.key)) map.set(rec.key, rec)
  }

  /** Adds (or replaces) a record, then evicts down to the bounds. Returns false if it cannot fit at all. */
  add(rec: DiskRecord): boolean {
    // A rewrite of a protected object (revalidation) stays protected.
    if (this.guarded.has(rec.key)) rec.protected = true
    const limit = rec.protected ? this.protectedMaxBytes : this.maxBytes
    if (rec.size > limit) return false
    this.remove(rec.key)
    const map = rec.protected ? this.guarded : this.general
    map.set(rec.key, rec)
    this.bytes += rec.size
    if (rec.protected) this.protectedBytes += rec.size
    this.titles.add(rec.entry.title, rec.key)
    this.listener?.added(rec)
    this.evict(rec)
    return true
  }

  remove(key: string): DiskRecord | undefined {
    const rec = this.get(key)
    if (!rec) return undefined
    ;(rec.protected ? this.guarded : this.general).delete(key)
    this.bytes -= rec.size
    if (rec.protected) this.protectedBytes -= rec.size
    this.titles.remove(rec.entry.title, key)
    this.listener?.removed(rec)
    return rec
  }

  /** Moves a held record into the protected share under `title` at `rank`. False if not held or too large. */
  protect(key: string, title: string, rank: number): boolean {
    this.ranks.set(title, rank)
    const rec = this.get(key)
    if (!rec) return false
    if (rec.protected) return true
    if (rec.size > this.protectedMaxBytes) return false
    this.general.delete(key)
    rec.protected = true
    this.guarded.set(key, rec)
    this.protectedBytes += rec.size
    this.evict(rec)
    return rec.protected && this.guarded.has(key)
  }

  /** Releases a title's protected records to ordinary LRU (as most recently used). */
  unprotectTitle(title: string): number {
    this.ranks.delete(title)
    let n = 0
    for (const key of this.titles.keys(title)) {
      const rec = this.guarded.get(key)
      if (!rec) continue
      this.guarded.delete(key)
      rec.protected = false
      this.protectedBytes -= rec.size
      this.general.set(key, rec)
      n++
    }
    if (n) this.evict(undefined)
    return n
  }

  /** Protected bytes per title, with each title's rank (undefined when unranked). */
  protectedTitles(): Array<{ title: string; rank: number | undefined; bytes: number }> {
    const by = new Map<string, number>()
    for (const rec of this.guarded.values()) {
      const t = rec.entry.title ?? '_'
      by.set(t, (by.get(t) ?? 0) + rec.size)
    }
    return [...by].map(([title, bytes]) => ({ title, rank: this.ranks.get(title), bytes }))
  }

  protectedBytesOf(title: string): number {
    let n = 0
    for (const key of this.titles.keys(title)) n += this.guarded.get(key)?.size ?? 0
    return n
  }

  private evict(keep: DiskRecord | undefined): void {
    while (this.protectedBytes > this.protectedMaxBytes) if (!this.evictProtected(keep)) break
    while (this.bytes > this.maxBytes) {
      if (this.evictOldest(this.general, keep)) continue
      if (!this.evictProtected(keep)) break
    }
  }

  /** Evicts the oldest object of the least popular protected title. */
  private evictProtected(keep: DiskRecord | undefined): boolean {
    let worst: string | undefined
    let worstRank = -1
    for (const rec of this.guarded.values()) {
      if (rec === keep) continue
      const t = rec.entry.title ?? '_'
      const rank = this.ranks.get(t) ?? Number.POSITIVE_INFINITY
      if (rank > worstRank) {
        worstRank = rank
        worst = t
        if (rank === Number.POSITIVE_INFINITY) break
      }
    }
    if (worst === undefined) return false
    for (const rec of this.guarded.values()) {
      if (rec === keep || (rec.entry.title ?? '_') !== worst) continue
      this.remove(rec.key)
      this.evictions++
      this.onEvict(rec)
      return true
    }
    return false
  }

  private evictOldest(map: Map<string, DiskRecord>, keep: DiskRecord | undefined): boolean {
    for (const rec of map.values()) {
      if (rec === keep) continue
      this.remove(rec.key)
      this.evictions++
      this.onEvict(rec)
      return true
    }
    return false
  }

  /** Every record, least recently used first within each partition. */
  records(): DiskRecord[] {
    return [...this.general.values(), ...this.guarded.values()]
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
