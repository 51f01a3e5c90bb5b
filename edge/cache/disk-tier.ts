/**
 * What a disk tier is to the tiered store (DiskTier), and what its two kinds share: the disk
 * store, which owns the files, and a cluster worker's mirror (edge/cluster/disk-mirror.ts),
 * which reads the primary's. Both read through a DiskReader and count errors in DiskErrors.
 */
import type { BufferPool } from './buffer-pool.js'
import { DiskErrorLog, type DiskRole } from './disk-errors.js'
import type { DiskIndex, DiskRecord } from './disk-index.js'
import type { DiskReader } from './disk-reader.js'
import type { CacheEntry } from './entry.js'
import type { BodyStream, CacheStore, GetResult } from './store.js'

/** What the tiered store needs of its disk tier: a store with the record look-up and hit reads. */
export interface DiskTier extends CacheStore {
  /** No disk tier at all (a size of 0): writes are not sent to it. */
  readonly disabled: boolean
  record(key: string): DiskRecord | undefined
  getToSend(key: string): Promise<GetResult | undefined>
  stream(key: string, minLength: number, sendMinLength?: number): BodyStream | undefined
  getResident(key: string): GetResult | undefined
  lookup(key: string): CacheEntry | undefined
  /** The pool of body buffers its hits read into (shared with misses through the tiered store). */
  readonly pool: BufferPool
  /** The fields a URL's variants are keyed by, undefined when it has none here (variants.ts). */
  variantFields(primary: string): readonly string[] | undefined
  /** The key a write of `bytes` would evict first (DiskIndex.victim), for the admission. */
  victimKey(bytes: number): string | undefined
}

/**
 * Disk errors, counted by errno code (ENOSPC, EACCES, EIO, ECHECKSUM...) for /status and
 * /metrics, and logged rate-limited by code and file role (disk-errors.ts).
 */
export class DiskErrors {
  count = 0
  readonly byCode = new Map<string, number>()
  readonly log: DiskErrorLog

  constructor(monotonic: () => number) {
    this.log = new DiskErrorLog(monotonic)
  }

  add(err: unknown, role: DiskRole): void {
    const code = (err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN'
    this.count++
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1)
    this.log.record(err, role)
  }
}

/**
 * What a disk tier's CacheStore does by reading its index and files only, shared by the disk
 * store and the cluster's mirror; each says what `delete` means for it.
 */
export abstract class DiskReads {
  protected abstract readonly reader: DiskReader
  protected abstract readonly index: DiskIndex

  abstract delete(key: string): Promise<boolean>

  async purgeTitle(title: string): Promise<number> {
    let n = 0
    for (const key of this.index.keysOf(title)) if (await this.delete(key)) n++
    return n
  }

  titles(): string[] {
    return this.index.titleList()
  }

  titleIndex(title: string): Map<string, Set<string>> {
    return this.index.titleIndex(title)
  }

  /** Never: a disk hit needs I/O. */
  getInMemory(): CacheEntry | undefined {
    return undefined
  }

  has(key: string): boolean {
    return this.reader.has(key)
  }

  lookup(key: string): CacheEntry | undefined {
    return this.reader.lookup(key)
  }

  variantFields(primary: string): readonly string[] | undefined {
    return this.index.variants.fields(primary)
  }

  victimKey(bytes: number): string | undefined {
    return this.index.victim(bytes)?.key
  }

  /** Record for a key, without I/O (for the tiered store and the fast path). */
  record(key: string): DiskRecord | undefined {
    return this.reader.record(key)
  }

  get(key: string): Promise<GetResult | undefined> {
    return this.reader.get(key, false)
  }

  getToSend(key: string): Promise<GetResult | undefined> {
    return this.reader.get(key, true)
  }

  stream(key: string, minLength: number, sendMinLength?: number): BodyStream | undefined {
    return this.reader.stream(key, minLength, sendMinLength)
  }

  getResident(key: string): GetResult | undefined {
    return this.reader.resident(key)
  }

  /** Body buffers lent to disk hits, for tests and figures. */
  get pool(): BufferPool {
    return this.reader.pool
  }

  /** Bodies sent in chunks (`stream`), for tests and figures. */
  get streamed(): number {
    return this.reader.streamed
  }

  /** Files kept mapped for residency checks now (disk-stream.ts `mapOf`), for tests. */
  get mapsKept(): number {
    return this.reader.mapsKept
  }

  /** Body reads done on the event loop (small and hot) and on the threadpool (disk-reader.ts). */
  get reads(): Readonly<{ sync: number; async: number; sendfile: number; sendfileLoop: number }> {
    return this.reader.reads
  }
}
