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
import { DiskCapacity, type Space, type SpaceLogger } from './disk-capacity.js'
import { encodeTrailer, fileSize } from './disk-format.js'
import { DiskIndex } from './disk-index.js'
import { DiskReader, type DiskReaderHooks } from './disk-reader.js'
import type { DiskErrorLog } from './disk-errors.js'
import { DiskErrors, DiskReads } from './disk-tier.js'
import { scanObjects } from './disk-scan.js'
import { restore, writeSnapshot } from './disk-snapshot.js'
import { DiskWriter } from './disk-writer.js'
import { type DirLock, lockDir } from './dir-lock.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry } from './entry.js'
import { type ProtectedShare, protectedShareOf } from './protected-share.js'
import type { CacheStore, CacheWriter, StoreStats } from './store.js'

/** How often the index snapshot is rewritten while the index changes (and on close). */
const SNAPSHOT_EVERY_MS = 5 * 60_000

export interface DiskStoreOptions extends EntryOptions {
  dir: string
  maxBytes: number
  protectedShare: number
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /** Wall clock for file ctimes, monotonic for read hotness (default: the system clock). */
  clock?: Clock
  /** statfs of the cache directory (default: fs.statfs); see disk-capacity.ts. */
  statfs?: (dir: string) => Promise<Space>
  /** Test hooks (undefined in production). */
  hooks?: DiskStoreHooks
}

/** Points where a concurrent change matters, awaited when set (tests only; see DiskReaderHooks). */
export interface DiskStoreHooks extends DiskReaderHooks {
  /** updateMeta has opened the object's file and not yet written anything. */
  metaSource?(key: string): Promise<void>
}

export class DiskStore extends DiskReads implements CacheStore {
  readonly index: DiskIndex
  protected readonly reader: DiskReader
  private readonly errorCounts: DiskErrors
  /** The effective size: --disk-size, or less while the filesystem holds less (disk-capacity.ts). */
  readonly capacity: DiskCapacity
  private lock: DirLock | undefined
  private readonly clock: Clock
  private snapshots: NodeJS.Timeout | undefined
  private writing: Promise<void> | undefined
  /** index.changes when the last snapshot was taken. */
  private snapshotAt = 0
  /** Buckets the start-up took from the snapshot and scanned (-1: no snapshot, all scanned). */
  restored = { trusted: 0, scanned: -1 }
  private readonly notes: Array<{ obj: Record<string, unknown>; msg: string }> = []

  private constructor(private readonly opts: DiskStoreOptions) {
    super()
    const clock = opts.clock ?? systemClock
    this.clock = clock
    this.errorCounts = new DiskErrors(() => clock.monotonic())
    const protectedBound = (bytes: number) => Math.floor(bytes * opts.protectedShare)
    this.index = DiskIndex.forTier(opts, (rec) => this.unlink(rec.file))
    this.capacity = new DiskCapacity({
      dir: opts.dir,
      configured: opts.maxBytes,
      held: () => this.index.bytes,
      apply: (bytes) => this.index.setLimit(bytes, protectedBound(bytes)),
      monotonic: () => clock.monotonic(),
      ...(opts.statfs ? { statfs: opts.statfs } : {}),
    })
    this.reader = new DiskReader({
      index: this.index,
      maxFds: opts.maxFds,
      clock,
      errors: this.errorCounts,
      dropped: (rec) => this.unlink(rec.file),
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
    })
  }

  /**
   * Opens the tier: takes the cache directory's lock (CDN_ERR_CACHE_DIR_LOCKED when another edge
   * holds it: dir-lock.ts), rebuilds the index from what is on disk (temp, partial and corrupt
   * files are deleted) and clamps --disk-size to what the filesystem can hold.
   */
  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    const store = new DiskStore(opts)
    const clock = opts.clock ?? systemClock
    try {
      store.lock = await lockDir(
        opts.dir,
        () => clock.now(),
        (previous) =>
          store.notes.push({
            obj: { previous },
            msg: 'took over the cache directory lock of an edge that is gone',
          }),
      )
    } catch (err) {
      // Another edge holds it: refused. A directory that cannot be used at all is a disk error,
      // as every other: the edge serves from memory and upstream.
      if ((err as { code?: string }).code === 'CDN_ERR_CACHE_DIR_LOCKED') throw err
      store.errorCounts.add(err, 'index')
    }
    if (opts.maxBytes > 0) {
      await store.scan()
      await store.capacity.clamp((err) => store.errorCounts.add(err, 'index'))
      store.snapshots = setInterval(() => void store.snapshotIfChanged(), SNAPSHOT_EVERY_MS)
      store.snapshots.unref()
    }
    return store
  }

  /** Logs disk errors (rate-limited), effective size changes and start-up notes through the app's logger. */
  attachLog(log: SpaceLogger): void {
    this.errorCounts.log.attach(log)
    this.capacity.attach(log)
    for (const n of this.notes.splice(0)) log.info(n.obj, n.msg)
  }

  /** Bumped each time a full filesystem lowers the effective size (a writer notes it at start). */
  get epoch(): number {
    return this.capacity.epoch
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

  /**
   * Rebuilds the index: from the snapshot and the buckets that changed since (disk-snapshot.ts),
   * or by reading every file when there is no usable snapshot. Scanned records are ordered by
   * mtime, after the snapshot's (which keep their LRU order).
   */
  private async scan(): Promise<void> {
    const onError = (err: unknown) => this.errorCounts.add(err, 'index')
    const restored = await restore(this.opts.dir, this.opts, onError)
    const found = restored?.scanned ?? (await scanObjects(this.opts.dir, this.opts, onError))
    this.restored = restored
      ? { trusted: restored.bucketsTrusted, scanned: restored.bucketsScanned }
      : { trusted: 0, scanned: -1 }
    for (const rec of restored?.trusted ?? []) if (!this.index.add(rec)) this.unlink(rec.file)
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { rec } of found) if (!this.index.add(rec)) this.unlink(rec.file)
    this.snapshotAt = this.index.changes
  }

  /** Writes the index snapshot (see disk-snapshot.ts); one at a time. */
  snapshot(): Promise<void> {
    this.writing ??= writeSnapshot(
      this.opts.dir,
      () => this.index.records(),
      () => this.clock.now(),
      (err) => this.errorCounts.add(err, 'index'),
    ).finally(() => {
      this.writing = undefined
    })
    return this.writing
  }

  private async snapshotIfChanged(): Promise<void> {
    if (this.index.changes === this.snapshotAt) return
    this.snapshotAt = this.index.changes
    await this.snapshot()
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
    this.capacity.wrote()
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
        await this.opts.hooks?.metaSource?.(key)
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

  /**
   * A writer's error (its temp file, or the rename into place). A full filesystem lowers the
   * effective size, unless the write began (`epoch`) before the last lowering.
   */
  recordError(err: unknown, epoch = this.capacity.epoch): void {
    this.errorCounts.add(err, 'temp')
    this.capacity.failed(err, 'temp', epoch)
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
        effectiveBytes: this.capacity.effective,
        objects: this.index.size,
        evictions: this.index.evictions,
      },
      diskErrors: this.errorCounts.count,
    }
  }

  /** Writes the index snapshot (a clean restart then scans nothing), then releases the directory. */
  async close(): Promise<void> {
    this.capacity.stop()
    clearInterval(this.snapshots)
    this.reader.close()
    if (this.snapshots) await this.snapshot()
    await this.lock?.release()
  }
}
