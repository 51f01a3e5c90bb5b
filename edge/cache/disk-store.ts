/**
 * The disk tier: one file per object (disk-format.ts), an in-memory index rebuilt by
 * scanning at start (disk-index.ts, disk-scan.ts), LRU by bytes. Writes go to a temp file as
 * bytes arrive and are renamed into place only when complete and verified (disk-writer.ts);
 * reads are disk-reader.ts's (fds, pooled bodies, crc32 checks). A corrupt or vanished file
 * is dropped and is a miss. Disk errors are counted, logged (rate-limited, code and role, never
 * the path: disk-errors.ts) and never reach a request: the edge keeps serving from memory and
 * upstream.
 *
 * A cluster primary mirrors this index to its workers (edge/cluster): `index.listener`.
 */

import { promises as fsp } from 'node:fs'
import { type Clock, systemClock } from '../../src/clock.js'
import { encodeTrailer, fileSize } from './disk-format.js'
import { DiskIndex } from './disk-index.js'
import { DiskReader } from './disk-reader.js'
import type { DiskErrorLog } from './disk-errors.js'
import { DiskErrors, DiskReads } from './disk-tier.js'
import { scanObjects } from './disk-scan.js'
import { DiskWriter } from './disk-writer.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry } from './entry.js'
import { type ProtectedShare, protectedShareOf } from './protected-share.js'
import type { CacheStore, CacheWriter, StoreStats } from './store.js'

export interface DiskStoreOptions extends EntryOptions {
  dir: string
  maxBytes: number
  protectedShare: number
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /** Wall clock for file ctimes, monotonic for read hotness (default: the system clock). */
  clock?: Clock
}

export class DiskStore extends DiskReads implements CacheStore {
  readonly index: DiskIndex
  protected readonly reader: DiskReader
  private readonly errorCounts: DiskErrors

  private constructor(private readonly opts: DiskStoreOptions) {
    super()
    const clock = opts.clock ?? systemClock
    this.errorCounts = new DiskErrors(() => clock.monotonic())
    this.index = DiskIndex.forTier(opts, (rec) => this.unlink(rec.file))
    this.reader = new DiskReader({
      index: this.index,
      maxFds: opts.maxFds,
      clock,
      errors: this.errorCounts,
      dropped: (rec) => this.unlink(rec.file),
    })
  }

  /** Opens the tier and rebuilds the index from what is on disk (temp, partial and corrupt files are deleted). */
  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    const store = new DiskStore(opts)
    if (opts.maxBytes > 0) await store.scan()
    return store
  }

  get disabled(): boolean {
    return this.opts.maxBytes <= 0
  }

  private unlink(file: string): void {
    this.reader.forget(file)
    fsp.unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.errorCounts.add(err, 'body')
    })
  }

  private async scan(): Promise<void> {
    const found = await scanObjects(this.opts.dir, this.opts, (err) => this.errorCounts.add(err, 'index'))
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { rec } of found) if (!this.index.add(rec)) this.unlink(rec.file)
  }

  /** The protected share, for prefill (protected-share.ts). */
  protectedShare(): ProtectedShare {
    return protectedShareOf(this.index)
  }

  createWriter(meta: EntryMeta): CacheWriter {
    return new DiskWriter(this, meta)
  }

  /** Called by a writer once its file is in place. */
  adopt(file: string, meta: EntryMeta): CacheEntry | undefined {
    this.reader.forget(file)
    const entry = makeEntry(meta, undefined, this.opts)
    const size = fileSize(meta)
    if (!this.index.add({ key: meta.key, file, size, entry, protected: meta.protected === true })) {
      this.unlink(file)
      return undefined
    }
    return entry
  }

  async updateMeta(key: string, meta: EntryMeta): Promise<CacheEntry | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const next: EntryMeta = { ...meta, bodyLength: rec.entry.meta.bodyLength, crc32: rec.entry.meta.crc32 }
    const trailer = encodeTrailer(next)
    try {
      const fh = await fsp.open(rec.file, 'r+')
      try {
        await fh.truncate(next.bodyLength)
        await fh.write(trailer, 0, trailer.length, next.bodyLength)
      } finally {
        await fh.close()
      }
    } catch (err) {
      this.errorCounts.add(err, 'trailer')
      if (this.index.get(rec.key) === rec) this.index.remove(rec.key)
      this.unlink(rec.file)
      return undefined
    }
    return this.adopt(rec.file, next)
  }

  async delete(key: string): Promise<boolean> {
    const rec = this.index.remove(key)
    if (!rec) return false
    this.unlink(rec.file)
    return true
  }

  get errors(): number {
    return this.errorCounts.count
  }

  /** Disk errors by errno code, for /metrics. */
  get errorsByCode(): ReadonlyMap<string, number> {
    return this.errorCounts.byCode
  }

  /** A writer's error (its temp file, or the rename into place). */
  recordError(err: unknown): void {
    this.errorCounts.add(err, 'temp')
  }

  /** Disk errors logged, rate-limited (attach a logger once the app has one). */
  get errorLog(): DiskErrorLog {
    return this.errorCounts.log
  }

  get dir(): string {
    return this.opts.dir
  }

  get maxBytes(): number {
    return this.opts.maxBytes
  }

  stats(): StoreStats {
    return {
      disk: {
        bytes: this.index.bytes,
        capacityBytes: this.opts.maxBytes,
        objects: this.index.size,
        evictions: this.index.evictions,
      },
      diskErrors: this.errorCounts.count,
    }
  }

  async close(): Promise<void> {
    this.reader.close()
  }
}
