/**
 * What the disk tier holds and what to evict: an in-memory index of object files, least
 * recently used first, bounded by bytes. Two partitions share the byte bound: protected
 * objects (prefill) are evicted only when the protected share itself is exceeded; ordinary
 * objects are evicted first. The I/O lives in disk-store.ts; this file does no I/O.
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

export class DiskIndex {
  /** Map iteration order is recency: oldest first. */
  private readonly general = new Map<string, DiskRecord>()
  private readonly guarded = new Map<string, DiskRecord>()
  private readonly titles = new TitleIndex()
  bytes = 0
  protectedBytes = 0
  evictions = 0

  constructor(
    readonly maxBytes: number,
    readonly protectedMaxBytes: number,
    /** Called for each record evicted (to unlink its file). */
    private readonly onEvict: (rec: DiskRecord) => void,
  ) {}

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
    const limit = rec.protected ? this.protectedMaxBytes : this.maxBytes
    if (rec.size > limit) return false
    this.remove(rec.key)
    const map = rec.protected ? this.guarded : this.general
    map.set(rec.key, rec)
    this.bytes += rec.size
    if (rec.protected) this.protectedBytes += rec.size
    this.titles.add(rec.entry.title, rec.key)
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
    return rec
  }

  private evict(keep: DiskRecord): void {
    while (this.protectedBytes > this.protectedMaxBytes) if (!this.evictOldest(this.guarded, keep)) break
    while (this.bytes > this.maxBytes) {
      if (this.evictOldest(this.general, keep)) continue
      if (!this.evictOldest(this.guarded, keep)) break
    }
  }

  private evictOldest(map: Map<string, DiskRecord>, keep: DiskRecord): boolean {
    for (const rec of map.values()) {
      if (rec === keep) continue
      this.remove(rec.key)
      this.evictions++
      this.onEvict(rec)
      return true
    }
    return false
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
