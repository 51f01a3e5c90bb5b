/**
 * Memory in front of disk. A write goes to both tiers at once (memory only if the object
 * fits its share); a disk hit is promoted to memory when it fits; purge and delete reach
 * both, and neither tier stores afterwards what a read or write started before the purge
 * brought (purge-generations.ts). The tiered store is what the edge app is given. Its disk tier is the disk store, or
 * in a cluster worker a read-only mirror of the primary's (edge/cluster/disk-mirror.ts).
 */
import type { DiskAdmission } from './admission.js'
import type { DiskStore } from './disk-store.js'
import type { DiskTier } from './disk-tier.js'
import type { CacheEntry, EntryMeta } from './entry.js'
import type { MemoryStore } from './memory-store.js'
import type { BodyStream, CacheStore, CacheWriter, GetResult, StoreStats, Validators } from './store.js'
import { type RequestFields, variantKey } from './variants.js'

/**
 * Which tiers a write goes to. A prefill writes for tomorrow's viewers: to disk only, so it
 * never pushes today's hot objects out of memory (a later disk hit promotes what viewers
 * actually ask for). A viewer's miss goes to both, or to memory only when the disk tier's
 * admission (admission.ts, `--disk-admission`) refuses it; it is asked once per write, with
 * `victim` (the key the disk would evict for the write) to weigh the candidate against. The
 * hit-ratio replay (bench/hit-ratio) makes the same choice through here.
 */
export function writeTiers(
  meta: Pick<EntryMeta, 'protected' | 'key'>,
  diskDisabled: boolean,
  admission?: DiskAdmission,
  victim?: () => string | undefined,
): 'disk' | 'both' | 'memory' {
  if (diskDisabled) return 'both'
  if (meta.protected) return 'disk'
  return admission && !admission.admit(meta.key, victim) ? 'memory' : 'both'
}

/** Whether a disk hit is promoted to memory: when memory would keep an object of its size. */
export function promotesOnDiskHit(memory: Pick<MemoryStore, 'fits'>, bodyLength: number): boolean {
  return memory.fits(bodyLength)
}

export class TieredStore<Disk extends DiskTier = DiskStore> implements CacheStore {
  constructor(
    readonly memory: MemoryStore,
    readonly disk: Disk,
    /** Admission to the disk tier for viewers' misses (none: every write goes to disk). */
    readonly admission?: DiskAdmission,
  ) {}

  getInMemory(key: string): CacheEntry | undefined {
    return this.memory.getInMemory(key)
  }

  /** One content request for `key` (hit or miss), for an admission that counts requests. */
  noteRequest(key: string): void {
    this.admission?.record?.(key)
  }

  async get(key: string): Promise<GetResult | undefined> {
    const hit = this.memory.getInMemory(key)
    if (hit) return { entry: hit, tier: 'memory' }
    // A purge while the disk read is under way: the read is then a miss on disk (its record
    // left the index), and memory refuses what started before the purge either way.
    const ticket = this.memory.ticket()
    const fromDisk = await this.disk.get(key)
    if (fromDisk?.entry.body && promotesOnDiskHit(this.memory, fromDisk.entry.body.length))
      this.memory.put(fromDisk.entry, ticket)
    return fromDisk
  }

  /** The hit path's get: a disk body that memory will not take is lent from the disk tier's pool. */
  async getToSend(key: string): Promise<GetResult | undefined> {
    const hit = this.memory.getInMemory(key)
    if (hit) return { entry: hit, tier: 'memory' }
    const rec = this.disk.record(key)
    if (rec && promotesOnDiskHit(this.memory, rec.entry.meta.bodyLength)) return this.get(key)
    return this.disk.getToSend(key)
  }

  /** Only what memory will not take: an object that fits is promoted by a whole read instead. */
  stream(key: string, minLength: number, sendMinLength?: number): BodyStream | undefined {
    if (this.memory.has(key)) return undefined
    const rec = this.disk.record(key)
    if (!rec || promotesOnDiskHit(this.memory, rec.entry.meta.bodyLength)) return undefined
    return this.disk.stream(key, minLength, sendMinLength)
  }

  /** Only what memory will not take (an object that fits is promoted by `get` instead). */
  getResident(key: string): GetResult | undefined {
    if (this.memory.has(key) || (this.memory.variants.fields(key) ?? this.disk.variantFields(key)))
      return undefined
    const rec = this.disk.record(key)
    if (!rec || promotesOnDiskHit(this.memory, rec.entry.meta.bodyLength)) return undefined
    return this.disk.getResident(key)
  }

  lookup(key: string): CacheEntry | undefined {
    return this.memory.lookup(key) ?? this.disk.lookup(key)
  }

  /**
   * From the disk tier's pool, for a body memory will not take (memory keeps the views it is
   * written): one too large for it, or one writeTiers sends to disk only (a prefill's). A prefill
   * then allocates nothing per object: its fresh megabyte each was half the Buffer bytes a capped
   * fill allocated, and V8 counts those toward its next full GC.
   */
  lendBody(
    length: number,
    meta?: Pick<EntryMeta, 'protected' | 'key'>,
  ): { buf: Buffer; release: () => void } | undefined {
    const diskOnly = meta !== undefined && writeTiers(meta, this.disk.disabled) === 'disk'
    if ((this.memory.fits(length) && !diskOnly) || !this.disk.pool.pools(length)) return undefined
    return this.disk.pool.lend(length)
  }

  boundIdleBodies(room: () => number): void {
    this.disk.pool.boundIdle(room)
  }

  has(key: string): boolean {
    return this.memory.has(key) || this.disk.has(key)
  }

  variantOf(key: string, headers: RequestFields): string {
    const fields = this.memory.variants.fields(key) ?? this.disk.variantFields(key)
    return fields === undefined ? key : variantKey(key, fields, headers)
  }

  createWriter(meta: EntryMeta): CacheWriter {
    const tiers = writeTiers(meta, this.disk.disabled, this.admission, () =>
      this.disk.victimKey(meta.bodyLength ?? 0),
    )
    if (tiers === 'disk') return this.disk.createWriter(meta)
    if (tiers === 'memory') return this.memory.createWriter(meta)
    const writers = [this.memory.createWriter(meta), this.disk.createWriter(meta)] as const
    return {
      refused: writers[0].refused === true && writers[1].refused === true,
      write: (chunk) => {
        writers[0].write(chunk)
        writers[1].write(chunk)
      },
      commit: async (final) => {
        const [mem, disk] = await Promise.all([writers[0].commit(final), writers[1].commit(final)])
        return mem ?? disk
      },
      abort: () => {
        writers[0].abort()
        writers[1].abort()
      },
    }
  }

  async updateMeta(key: string, meta: EntryMeta, revalidated?: Validators): Promise<CacheEntry | undefined> {
    // Each tier checks its own copy: they may hold different ones (a prefill writes disk only).
    const [mem, disk] = await Promise.all([
      this.memory.updateMeta(key, meta, revalidated),
      this.disk.updateMeta(key, meta, revalidated),
    ])
    return mem ?? disk
  }

  async delete(key: string): Promise<boolean> {
    const [a, b] = await Promise.all([this.memory.delete(key), this.disk.delete(key)])
    return a || b
  }

  async purgeTitle(title: string): Promise<number> {
    const keys = new Set(
      [...this.memory.titleIndex(title).values(), ...this.disk.titleIndex(title).values()].flatMap((s) => [
        ...s,
      ]),
    )
    await Promise.all([this.memory.purgeTitle(title), this.disk.purgeTitle(title)])
    return keys.size
  }

  titles(): string[] {
    return [...new Set([...this.memory.titles(), ...this.disk.titles()])].sort()
  }

  titleIndex(title: string): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>()
    for (const src of [this.memory.titleIndex(title), this.disk.titleIndex(title)])
      for (const [v, keys] of src) {
        const set = out.get(v) ?? new Set<string>()
        for (const k of keys) set.add(k)
        out.set(v, set)
      }
    return out
  }

  stats(): StoreStats {
    return { ...this.memory.stats(), ...this.disk.stats(), poolBytes: this.disk.pool.bytesHeld }
  }

  async close(): Promise<void> {
    await Promise.all([this.memory.close(), this.disk.close()])
  }
}
