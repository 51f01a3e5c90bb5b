/**
 * The read side of a disk tier: hits for the keys an index holds, read from their files and
 * verified. Shared by the disk store (which owns the files) and a cluster worker's mirror of
 * the primary's index (edge/cluster/disk-mirror.ts), which reads the same files and owns none.
 *
 * Hit path: a small LRU of open file descriptors (disk-fds.ts: ref-counted, so eviction never
 * closes an fd under a read) and one positioned read of the body into a pooled buffer
 * (buffer-pool.ts).
 * The crc32 is checked as `intact` (disk-verify.ts) says; a mismatch or a vanished file drops the record (the
 * owner's `dropped` decides what that means for the file) and is a miss; an open refused for want
 * of descriptors (EMFILE, ENFILE) is a miss that keeps it. Errors are counted,
 * never thrown at a request.
 *
 * Identity: the fd LRU is keyed by path, but every fd is used only for the record whose inode
 * it reads (file-id.ts: checked by fstat after each open, and before each use of a cached fd),
 * and a read whose record left the index while it ran (purged, evicted, replaced) is a miss,
 * so a file renamed over a path under an open in flight, or a purge under a read, can never
 * put one object's bytes under another's record.
 *
 * The event loop never waits on a disk: a read is synchronous (one pread on the loop, cheaper
 * than the threadpool's round trip for a small body) only when it is small (at most
 * `syncReadMax`, --disk-sync-read-max) and its file was read through the same cached fd within
 * HOT_MS, so it is almost surely in the page cache and, if not, costs the loop one small read.
 * Every other read (a larger body, a cold file, each chunk of a streamed body) goes to the
 * threadpool. Reads are counted by mode (`reads`, cdn_edge_disk_reads_total{mode}).
 *
 * A streamed body (`stream`: its chunks, and its sends by sendfile(2), on the threadpool or on
 * the event loop) is disk-stream.ts, counted in this reader's `reads` through a StreamHost.
 */
import { fstatSync } from 'node:fs'
import type { Clock } from '../../src/clock.js'
import { BufferPool } from './buffer-pool.js'
import {
  DiskFds,
  type DiskReaderHooks,
  type Fd,
  OTHER_FILE,
  readAsync,
  readFully,
  release,
} from './disk-fds.js'
import { openStream, type StreamHost } from './disk-stream.js'
import { checksumMismatch, intact } from './disk-verify.js'
import { fileIdOf, sameFile, sameInode } from './file-id.js'
import type { DiskIndex, DiskRecord } from './disk-index.js'
import type { CacheEntry } from './entry.js'
import { DEFAULT_LOOP_CHUNK } from './store.js'
import type { DiskErrors } from './disk-tier.js'
import type { BodyStream, GetResult } from './store.js'
import type { SendFile } from '../native/sendfile.js'

/** A file read within this long (monotonic ms) is taken to be in the page cache. */
const HOT_MS = 5_000
/** Default bound on a synchronous read (--disk-sync-read-max). */
export const DEFAULT_SYNC_READ_MAX = 64 * 1024
/**
 * Idle bytes kept in the pool of disk-hit body buffers (and never more than the in-flight budget
 * leaves: the edge bounds them by it, BufferPool.boundIdle, so lent + idle stay within the budget).
 * Under load the bytes lent swing by tens of megabytes from one moment to the next (100 clients of
 * 1 MB hits: 3-41 MB, measured); an idle bound below that swing gave buffers back and committed
 * new ones all the time (a third of all lends were new buffers at 32 MB), and a new buffer costs
 * its page faults, a memset when given back and a major GC for its external memory: 0.84 ms of
 * CPU per 1 MB read against 0.13 ms into a reused one (docs/bench.md). Idle buffers still give their
 * pages back after 10 s.
 */
export const READ_POOL_BYTES = 128 * 1024 * 1024
/**
 * Errors of an open that say the process is short of something (descriptors, kernel memory),
 * not that the file is bad: the read is a miss and the object is kept.
 */
const PROCESS_LIMITS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOMEM'])
/** Longest body read into a pooled buffer. */
const READ_POOL_MAX_LENGTH = 16 * 1024 * 1024

export interface DiskReaderOptions {
  index: DiskIndex
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /**
   * Largest read done synchronously on the event loop, and only of a file read within HOT_MS
   * (default DEFAULT_SYNC_READ_MAX; 0: every read on the threadpool).
   */
  syncReadMax?: number
  /** Wall clock for file ctimes, monotonic for read hotness. */
  clock: Clock
  /** Streamed bodies may be sent with it (BodyStream.sendTo); without it they are read and written. */
  sendfile?: SendFile
  errors: DiskErrors
  /** A record was dropped after a failed read (already out of the index, its fd forgotten). */
  dropped(rec: DiskRecord): void
  /** A key was read (a hit): a mirror reports these to the index's owner. */
  read?(key: string): void
  /** Test hooks (undefined in production). */
  hooks?: DiskReaderHooks
  /** Most files kept mapped for residency checks (default MAX_KEPT_MAPS, disk-stream.ts). */
  maxMaps?: number
  /** Most bytes of one send on the event loop (--disk-sendfile-max-chunk; default DEFAULT_LOOP_CHUNK). */
  loopChunk?: number
}

type Body = { body: Buffer; release?: () => void }

export class DiskReader {
  private readonly fds: DiskFds
  private readonly index: DiskIndex
  /** Body buffers lent to disk hits (getToSend) and chunk buffers to streams. */
  readonly pool = new BufferPool(READ_POOL_BYTES, { maxLength: READ_POOL_MAX_LENGTH })
  /** Bodies handed out to be sent in chunks (`stream`), for tests and figures. */
  streamed = 0
  /** Body reads (whole bodies and stream chunks) done on the event loop and on the threadpool. */
  readonly reads = { sync: 0, async: 0, sendfile: 0, sendfileLoop: 0 }
  private readonly syncReadMax: number
  /** Sends on the event loop may be tried (false once the addon found no residency check here). */
  private loopSends = true
  /** Files mapped for residency checks now (at most maxMaps). */
  mapsKept = 0
  /** What this reader's streams count in it and read of it (disk-stream.ts). */
  private readonly host: StreamHost

  constructor(private readonly opts: DiskReaderOptions) {
    this.index = opts.index
    this.syncReadMax = opts.syncReadMax ?? DEFAULT_SYNC_READ_MAX
    this.fds = new DiskFds(opts.maxFds, opts.hooks)
    this.host = {
      reads: this.reads,
      syncReadMax: this.syncReadMax,
      clock: opts.clock,
      pool: this.pool,
      sendfile: opts.sendfile,
      errors: opts.errors,
      maxMaps: opts.maxMaps,
      loopChunk: opts.loopChunk ?? DEFAULT_LOOP_CHUNK,
      loopSends: () => this.loopSends,
      noLoopSends: () => {
        this.loopSends = false
      },
      mapsKept: () => this.mapsKept,
      countMaps: (delta) => {
        this.mapsKept += delta
      },
      drop: (rec) => this.drop(rec),
    }
  }

  /** Whether streams can send on the event loop: the addon, on a file system that allows its residency check. */
  get sendsOnLoop(): boolean {
    return this.opts.sendfile !== undefined && this.loopSends
  }

  has(key: string): boolean {
    return this.index.get(key) !== undefined
  }

  lookup(key: string): CacheEntry | undefined {
    return this.index.get(key)?.entry
  }

  /** Record for a key, without I/O (for the tiered store and the fast path). */
  record(key: string): DiskRecord | undefined {
    return this.index.get(key)
  }

  /** The entry with its body read and verified, or undefined. `pooled`: see CacheStore.getToSend. */
  async get(key: string, pooled: boolean): Promise<GetResult | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const got = await this.readBody(rec, pooled && this.pool.pools(rec.entry.meta.bodyLength))
    if (!got) return undefined
    // Purged, evicted or replaced while it was read: the record is no longer the key's, and its
    // bytes must not be served as the key's nor promoted (a purge is never undone by a read).
    if (this.index.get(key) !== rec) {
      got.release?.()
      return undefined
    }
    this.hit(rec)
    return {
      entry: { ...rec.entry, body: got.body },
      tier: 'disk',
      ...(got.release ? { release: got.release } : {}),
    }
  }

  /** The fd of a file that changed or went away is closed (once no read holds it). */
  forget(file: string): void {
    this.fds.forget(file)
  }

  close(): void {
    this.fds.clear()
    this.pool.close()
  }

  private hit(rec: DiskRecord): void {
    this.index.touch(rec)
    this.opts.read?.(rec.key)
  }

  private drop(rec: DiskRecord): void {
    if (this.index.get(rec.key) === rec) this.index.remove(rec.key)
    this.forget(rec.file)
    this.opts.dropped(rec)
  }

  /**
   * A small body read now, on the event loop, for the raw hit path (edge/http/raw-hits.ts):
   * only what `get` would read synchronously too, a body of at most `syncReadMax` bytes whose
   * file is open in the fd LRU (the record's inode) and was read through that fd within HOT_MS
   * (so it was verified through it and is almost surely in the page cache). The body is checked
   * as `get` checks it (`intact`: a small body by its crc32, a larger one by an fstat, and the
   * crc32 unless the file is unchanged since a verification); a failure drops the record, as
   * `get` does. Undefined when any of that does not hold, without I/O: the caller then goes
   * the full way (`get`).
   */
  resident(key: string): GetResult | undefined {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const len = rec.entry.meta.bodyLength
    if (len > this.syncReadMax) return undefined
    const handle = this.fds.cached(rec.file)
    if (!handle || handle.closed || !sameInode(handle.id, rec.id) || !this.hot(handle)) return undefined
    const body = Buffer.allocUnsafe(len)
    handle.refs++
    this.reads.sync++
    let err: unknown = null
    try {
      readFully(handle.fd, body, len, 0)
    } catch (failure) {
      err = failure
    }
    const ok = err === null && intact(handle, rec, body, this.opts.clock, this.opts.errors)
    release(handle)
    if (!ok) {
      this.opts.errors.add(err ?? checksumMismatch(), 'body')
      this.drop(rec)
      return undefined
    }
    handle.lastReadMono = this.opts.clock.monotonic()
    this.hit(rec)
    return { entry: { ...rec.entry, body }, tier: 'disk' }
  }

  /**
   * A body of at least `minLength` bytes to send in chunks (BodyStream, made by disk-stream.ts),
   * without reading it whole: only when its fd is open, its body was verified through that fd and
   * the file is unchanged since (same size and ctime, one fstat). Otherwise undefined: the caller
   * reads it whole with `get`, which verifies it and warms the fd. Its chunks are read on the
   * threadpool, unless they fit `syncReadMax` and the file was read within HOT_MS.
   */
  stream(key: string, minLength: number, sendMinLength = minLength): BodyStream | undefined {
    const rec = this.index.get(key)
    const min = this.opts.sendfile ? Math.min(minLength, sendMinLength) : minLength
    if (!rec || rec.entry.meta.bodyLength < min) return undefined
    const handle = this.fds.cached(rec.file)
    if (!handle || handle.closed || !sameInode(handle.id, rec.id)) return undefined
    let size: number
    try {
      const st = fstatSync(handle.fd)
      if (!sameFile(fileIdOf(st), rec.id) || st.ctimeMs !== handle.verifiedCtimeMs) return undefined
      size = st.size
    } catch {
      return undefined
    }
    const body = openStream(this.host, rec, handle, size, this.hot(handle))
    this.hit(rec)
    this.streamed++
    return body
  }

  /** Was this fd read within HOT_MS (its file almost surely in the page cache)? */
  private hot(handle: Fd): boolean {
    return this.opts.clock.monotonic() - handle.lastReadMono < HOT_MS
  }

  /**
   * The verified body (in a pooled buffer when `pooled`), or undefined (file gone or corrupt:
   * dropped, counted). A body of at most `syncReadMax` bytes whose file was read through its
   * cached fd within HOT_MS is read with one synchronous pread (cheaper than the threadpool
   * round trip, measured); anything else is read on the threadpool, so neither a slow disk nor
   * a large body ever blocks the event loop.
   */
  private readBody(rec: DiskRecord, pooled: boolean): Promise<Body | undefined> {
    const len = rec.entry.meta.bodyLength
    return new Promise((resolve) => {
      this.fds.withFd(rec, (err, handle) => {
        if (err === OTHER_FILE) return resolve(undefined)
        if (err || !handle) {
          const code = (err as NodeJS.ErrnoException)?.code
          if (code !== 'ENOENT') this.opts.errors.add(err, 'body')
          // Out of descriptors or memory: the process's state, not the file's, which stays.
          if (code === undefined || !PROCESS_LIMITS.has(code)) this.drop(rec)
          return resolve(undefined)
        }
        const lease = pooled ? this.pool.lend(len) : undefined
        const buf = lease ? lease.buf : Buffer.allocUnsafeSlow(len)
        const done = (e: unknown): void => {
          const ok = e === null && intact(handle, rec, buf, this.opts.clock, this.opts.errors)
          release(handle)
          if (!ok) {
            lease?.release()
            this.opts.errors.add(e ?? checksumMismatch(), 'body')
            this.drop(rec)
            return resolve(undefined)
          }
          handle.lastReadMono = this.opts.clock.monotonic()
          resolve({ body: buf, ...(lease ? { release: lease.release } : {}) })
        }
        if (len <= this.syncReadMax && this.hot(handle)) {
          this.reads.sync++
          let e: unknown = null
          try {
            readFully(handle.fd, buf, len, 0)
          } catch (failure) {
            e = failure
          }
          return done(e)
        }
        this.reads.async++
        readAsync(handle.fd, buf, 0, done)
      })
    })
  }
}
