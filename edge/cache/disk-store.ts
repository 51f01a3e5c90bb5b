/**
 * The disk tier: one file per object (disk-format.ts), an in-memory index rebuilt by
 * scanning at start (disk-index.ts, disk-scan.ts), LRU by bytes. Writes go to a temp file as
 * bytes arrive and are renamed into place only when complete and verified (disk-writer.ts);
 * reads are disk-reader.ts's (fds, pooled bodies, crc32 checks). A corrupt or vanished file
 * is dropped and is a miss. Disk errors are counted, logged (rate-limited, code and role, never
 * the path: disk-errors.ts) and never reach a request: the edge keeps serving from memory and
 * upstream.
 *
 * Concurrency: every record holds its file's identity (file-id.ts), which reads check; files
 * are installed (renamed into place) and unlinked through one queue per path, an unlink only
 * of the record's own inode (disk-install.ts); no file in place is ever written (a 304's
 * refresh is a new file too); and purges are stamped (purge-generations.ts) so that a write or
 * refresh that started before a purge is not installed after it.
 *
 * A cluster primary mirrors this index to its workers (edge/cluster): `index.listener`.
 */

import { promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Clock, systemClock } from '../../src/clock.js'
import { fsyncDir } from '../../src/fs/atomic.js'
import { titleOfPath } from '../../src/http/paths.js'
import { DiskCapacity, type Space, type SpaceLogger } from './disk-capacity.js'
import { fileSize, objectDir, objectName } from './disk-format.js'
import type { DemandModel } from './demand.js'
import { DiskIndex, DiskRecord } from './disk-index.js'
import { PathQueue } from './disk-install.js'
import { forEachLimit } from '../prefill/pool.js'
import { IndexPersistence } from './disk-persist.js'
import type { DiskReaderHooks } from './disk-fds.js'
import { DiskReader } from './disk-reader.js'
import type { DiskErrorLog } from './disk-errors.js'
import { DiskErrors, DiskReads } from './disk-tier.js'
import type { RebuildTarget } from './disk-rebuild.js'
import { refreshMeta } from './disk-refresh.js'
import { DiskWriter } from './disk-writer.js'
import { type DirLock, lockDir } from './dir-lock.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry, pathOfKey } from './entry.js'
import { type FileId, fileIdOf, sameInode } from './file-id.js'
import { type ProtectedShare, protectedShareOf } from './protected-share.js'
import { PurgeGenerations } from './purge-generations.js'
import type { CacheStore, CacheWriter, StoreStats, Validators } from './store.js'
import type { SendFile } from '../native/sendfile.js'

/** Directory syncs a purge runs at once. */
const SYNCS_AT_ONCE = 2

export interface DiskStoreOptions extends EntryOptions {
  dir: string
  maxBytes: number
  protectedShare: number
  /** Ladder-aware eviction (--disk-low-rendition; ladder.ts): 0 or absent for plain LRU. */
  lowRendition?: number
  /** Eviction by expected demand (--disk-eviction demand; demand.ts); LRU when absent. */
  demand?: DemandModel
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /** Largest read done on the event loop, of a hot file only (--disk-sync-read-max; disk-reader.ts). */
  syncReadMax?: number
  /** Streamed bodies are sent with it (sendfile(2), edge/native/sendfile.ts; --disk-sendfile). */
  sendfile?: SendFile
  /** Wall clock for file ctimes, monotonic for read hotness (default: the system clock). */
  clock?: Clock
  /** statfs of the cache directory (default: fs.statfs); see disk-capacity.ts. */
  statfs?: (dir: string) => Promise<Space>
  /** Variants kept per URL (variants.ts); unbounded when not given. */
  maxVariants?: number
  /** Test hooks (undefined in production). */
  hooks?: DiskStoreHooks
  /** Most files kept mapped for sends on the loop (disk-stream.ts MAX_KEPT_MAPS; tests set it low). */
  maxMaps?: number
  /** Most bytes of one send on the event loop (--disk-sendfile-max-chunk; disk-reader.ts). */
  loopChunk?: number
  /** Changed buckets a start scans before it serves (default 256; more are scanned while serving: disk-rebuild.ts). */
  scanBeforeReady?: number
}

/** Points where a concurrent change matters, awaited when set (tests only; see DiskReaderHooks). */
export interface DiskStoreHooks extends DiskReaderHooks {
  /** updateMeta has opened the object's file and not yet written anything. */
  metaSource?(key: string): Promise<void>
  /** The start-up's background scan has read a bucket (these keys) and not yet indexed it. */
  validating?(keys: string[]): Promise<void>
}

export class DiskStore extends DiskReads implements CacheStore {
  readonly index: DiskIndex
  protected readonly reader: DiskReader
  private readonly errorCounts: DiskErrors
  /** Directories fsynced after a purge's or a delete's unlinks, successfully (for tests). */
  dirSyncs = 0
  /** The effective size: --disk-size, or less while the filesystem holds less (disk-capacity.ts). */
  readonly capacity: DiskCapacity
  private lock: DirLock | undefined
  /** The start-up's rebuild and the index snapshots (disk-persist.ts). */
  private readonly persist: IndexPersistence
  private closing = false
  private readonly notes: Array<{ obj: Record<string, unknown>; msg: string }> = []
  /** Purges of this tier, so that no install started before one undoes it. */
  private readonly gens = new PurgeGenerations()
  /** Installs and unlinks of each object path, one at a time (disk-install.ts). */
  private readonly paths = new PathQueue()

  private constructor(private readonly opts: DiskStoreOptions) {
    super()
    const clock = opts.clock ?? systemClock
    this.errorCounts = new DiskErrors(() => clock.monotonic())
    const protectedBound = (bytes: number) => Math.floor(bytes * opts.protectedShare)
    this.index = DiskIndex.forTier(opts, (rec) => void this.unlink(rec))
    this.persist = new IndexPersistence(opts.dir, this.index, clock, (err) =>
      this.errorCounts.add(err, 'index'),
    )
    if (opts.maxVariants !== undefined) this.index.variants.maxVariants = opts.maxVariants
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
      ...(opts.syncReadMax !== undefined ? { syncReadMax: opts.syncReadMax } : {}),
      ...(opts.sendfile ? { sendfile: opts.sendfile } : {}),
      clock,
      errors: this.errorCounts,
      dropped: (rec) => void this.unlink(rec),
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
      ...(opts.maxMaps !== undefined ? { maxMaps: opts.maxMaps } : {}),
      ...(opts.loopChunk !== undefined ? { loopChunk: opts.loopChunk } : {}),
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
      store.persist.start()
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

  /**
   * Removes a record's file, if the file at its path is still that record's inode (a newer
   * object installed there since stays). Queued behind the path's other installs and unlinks;
   * resolves once done (never rejects: an error is counted).
   */
  private unlink(rec: { file: string; id: FileId }): Promise<void> {
    this.reader.forget(rec.file)
    return this.paths.run(rec.file, async () => {
      try {
        if (sameInode(fileIdOf(await fsp.stat(rec.file)), rec.id)) await fsp.unlink(rec.file)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.errorCounts.add(err, 'body')
      }
    })
  }

  /** Rebuilds the index from the snapshot and a scan (disk-rebuild.ts). */
  private async scan(): Promise<void> {
    const hooks = this.opts.hooks
    const target: RebuildTarget = {
      index: this.index,
      unlink: (rec) => void this.unlink(rec),
      ticket: () => this.gens.ticket(),
      purgedSince: (ticket, key, title) => this.gens.purgedSince(ticket, key, title),
      closing: () => this.closing,
      ...(hooks?.validating ? { validating: (keys: string[]) => hooks.validating!(keys) } : {}),
    }
    await this.persist.rebuild(this.opts, target)
  }

  /** Buckets the start-up took from the snapshot and scanned (-1: no snapshot, all scanned). */
  get restored(): { trusted: number; scanned: number } {
    return this.persist.restored
  }

  /**
   * Resolves once the buckets the snapshot did not vouch for are scanned: the tier serves from
   * open on, and until then a key of such a bucket is a miss (disk-rebuild.ts).
   */
  get validated(): Promise<void> {
    return this.persist.validated
  }

  /** Writes the index snapshot (disk-persist.ts; not while the start-up's scan runs). */
  snapshot(): Promise<void> {
    return this.persist.snapshot()
  }

  /** The protected share, for prefill (protected-share.ts). */
  protectedShare(): ProtectedShare {
    return protectedShareOf(this.index)
  }

  createWriter(meta: EntryMeta): CacheWriter {
    return new DiskWriter(this, meta)
  }

  /** Taken by a writer when it starts; see `install`. */
  ticket(): number {
    return this.gens.ticket()
  }

  /**
   * Renames a complete temp file (whose identity is `id`) into place and indexes it, unless
   * the key or its title was purged since `ticket`, or (a metadata refresh) `replaces` is no
   * longer the key's record: then the temp file is removed and nothing changes. Runs in the
   * path's queue, so no other install or unlink of the path comes between check and rename.
   */
  install(
    tmp: string,
    meta: EntryMeta,
    id: FileId,
    ticket: number,
    replaces?: DiskRecord,
  ): Promise<CacheEntry | undefined> {
    const file = this.fileOf(meta.key)
    const title = titleOfPath(pathOfKey(meta.key))
    return this.paths.run(file, async () => {
      const stale = replaces !== undefined && this.index.get(meta.key) !== replaces
      if (stale || this.gens.purgedSince(ticket, meta.key, title)) {
        await fsp.rm(tmp, { force: true })
        return undefined
      }
      await fsp.rename(tmp, file)
      // Purged during the rename: the file just installed goes again.
      if (this.gens.purgedSince(ticket, meta.key, title)) {
        await fsp.unlink(file)
        return undefined
      }
      return this.adopt(file, meta, id)
    })
  }

  /** The path of a key's object file. */
  fileOf(key: string): string {
    const name = objectName(key)
    return join(objectDir(this.opts.dir, titleOfPath(pathOfKey(key)), name), name)
  }

  private adopt(file: string, meta: EntryMeta, id: FileId): CacheEntry | undefined {
    this.reader.forget(file)
    const entry = makeEntry(meta, undefined, this.opts)
    const size = fileSize(meta)
    const rec = new DiskRecord({ key: meta.key, file, size, id, protected: meta.protected === true }, entry)
    if (!this.index.add(rec)) {
      // Queued behind this install (which runs in the path's queue): never awaited here.
      void this.unlink(rec)
      return undefined
    }
    this.capacity.wrote()
    return entry
  }

  /** A 304's refresh: the same body under new meta, as a new file (disk-refresh.ts). */
  updateMeta(key: string, meta: EntryMeta, revalidated?: Validators): Promise<CacheEntry | undefined> {
    const hooks = this.opts.hooks
    const target = {
      index: this.index,
      capacity: this.capacity,
      errors: this.errorCounts,
      ticket: () => this.gens.ticket(),
      unlink: (rec: DiskRecord) => void this.unlink(rec),
      install: this.install.bind(this),
      ...(hooks?.metaSource ? { metaSource: (k: string) => hooks.metaSource!(k) } : {}),
    }
    return refreshMeta(target, key, meta, revalidated)
  }

  /**
   * Deleting a URL deletes its variants (variants.ts). Resolves once their files are unlinked
   * and the unlinks are durable: until then a crash would leave them to the next start, whose
   * snapshot still lists them.
   */
  async delete(key: string): Promise<boolean> {
    this.gens.purgeKey(key)
    const recs: DiskRecord[] = []
    for (const k of [key, ...this.index.variants.keys(key)]) {
      const rec = this.index.remove(k)
      if (rec) recs.push(rec)
    }
    await this.unlinkDurably(recs)
    return recs.length > 0
  }

  /**
   * Every object of a title; nothing started before this stores one of them afterwards. Resolves
   * once their files are unlinked and the unlinks durable (a purge answered is one that neither
   * a crash nor a power cut undoes).
   */
  override async purgeTitle(title: string): Promise<number> {
    this.gens.purgeTitle(title)
    const recs: DiskRecord[] = []
    for (const key of this.index.keysOf(title)) {
      const rec = this.index.remove(key)
      if (rec) recs.push(rec)
    }
    await this.unlinkDurably(recs)
    return recs.length
  }

  /**
   * Unlinks the records' files, then fsyncs each directory they were in once, a few at a time
   * (a title's purge spans up to 256 shard directories, and every sync takes a threadpool
   * thread that hits are read on): an unlink is a directory entry's removal, which the
   * filesystem may still lose in a power cut until its directory is synced. Never rejects: an
   * error is counted; a directory gone since is nothing to sync.
   */
  private async unlinkDurably(recs: readonly DiskRecord[]): Promise<void> {
    if (recs.length === 0) return
    await Promise.all(recs.map((rec) => this.unlink(rec)))
    const dirs = [...new Set(recs.map((rec) => dirname(rec.file)))]
    await forEachLimit(dirs, SYNCS_AT_ONCE, async (dir) => {
      try {
        await fsyncDir(dir)
        this.dirSyncs++
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.errorCounts.add(err, 'body')
      }
    })
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
      diskReads: { ...this.reader.reads },
    }
  }

  /** Writes the index snapshot (a clean restart then scans nothing), then releases the directory. */
  async close(): Promise<void> {
    this.capacity.stop()
    const started = this.persist.stop()
    this.closing = true
    await this.validated
    this.reader.close()
    if (started) await this.snapshot()
    await this.lock?.release()
  }
}
