/**
 * The read side of a disk tier: hits for the keys an index holds, read from their files and
 * verified. Shared by the disk store (which owns the files) and a cluster worker's mirror of
 * the primary's index (edge/cluster/disk-mirror.ts), which reads the same files and owns none.
 *
 * Hit path: a small LRU of open file descriptors (ref-counted, so eviction never closes an
 * fd under a read) and one positioned read of the body into a pooled buffer (buffer-pool.ts).
 * The crc32 is checked as `intact` says; a mismatch or a vanished file drops the record (the
 * owner's `dropped` decides what that means for the file) and is a miss. Errors are counted,
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
 */
import { closeSync, fstatSync, open, read, readSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { LRUCache } from 'lru-cache'
import type { Clock } from '../../src/clock.js'
import { BufferPool } from './buffer-pool.js'
import { type FileId, fileIdOf, sameFile, sameInode } from './file-id.js'
import type { DiskIndex, DiskRecord } from './disk-index.js'
import type { CacheEntry } from './entry.js'
import type { DiskErrors } from './disk-tier.js'
import type { BodyStream, GetResult } from './store.js'

/** A file's ctime must be this much older than a verification for it to be trusted later. */
const CTIME_SETTLE_MS = 2_000
/** A file read within this long (monotonic ms) is taken to be in the page cache. */
const HOT_MS = 5_000
/** Default bound on a synchronous read (--disk-sync-read-max). */
export const DEFAULT_SYNC_READ_MAX = 64 * 1024
/** Idle bytes kept in the pool of disk-hit body buffers. */
const READ_POOL_BYTES = 32 * 1024 * 1024
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
  errors: DiskErrors
  /** A record was dropped after a failed read (already out of the index, its fd forgotten). */
  dropped(rec: DiskRecord): void
  /** A key was read (a hit): a mirror reports these to the index's owner. */
  read?(key: string): void
  /** Test hooks (undefined in production). */
  hooks?: DiskReaderHooks
}

/**
 * Points where a concurrent change matters, awaited when set: tests pause a read there and
 * rename, purge or rewrite under it. Never set in production.
 */
export interface DiskReaderHooks {
  /** A file was opened for a read; its fd is not yet checked nor cached. */
  opened?(file: string): Promise<void>
}

interface Fd {
  fd: number
  /** The inode this fd reads (fstat after open): an fd never changes file. */
  id: FileId
  refs: number
  closed: boolean
  /** ctime (ms) of the file when its body last matched the crc32 through this fd; NaN: never. */
  verifiedCtimeMs: number
  /** Monotonic ms of the last good read through this fd (-Infinity: none). */
  lastReadMono: number
}

type Body = { body: Buffer; release?: () => void }

export class DiskReader {
  private readonly fds: LRUCache<string, Fd> | undefined
  private readonly index: DiskIndex
  /** Body buffers lent to disk hits (getToSend) and chunk buffers to streams. */
  readonly pool = new BufferPool(READ_POOL_BYTES, { maxLength: READ_POOL_MAX_LENGTH })
  /** Bodies handed out to be sent in chunks (`stream`), for tests and figures. */
  streamed = 0
  /** Body reads (whole bodies and stream chunks) done on the event loop and on the threadpool. */
  readonly reads = { sync: 0, async: 0 }
  private readonly syncReadMax: number

  constructor(private readonly opts: DiskReaderOptions) {
    this.index = opts.index
    this.syncReadMax = opts.syncReadMax ?? DEFAULT_SYNC_READ_MAX
    if (opts.maxFds > 0)
      this.fds = new LRUCache<string, Fd>({
        max: opts.maxFds,
        dispose: (handle) => {
          handle.closed = true
          if (handle.refs === 0) closeQuietly(handle.fd)
        },
      })
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
    this.fds?.delete(file)
  }

  close(): void {
    this.fds?.clear()
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
   * A body of at least `minLength` bytes to send in chunks (see BodyStream), without reading it
   * whole: only when its fd is open, its body was verified through that fd and the file is
   * unchanged since (same size and ctime, one fstat). Otherwise undefined: the caller reads it
   * whole with `get`, which verifies it and warms the fd. Its chunks are read on the threadpool,
   * unless they fit `syncReadMax` and the file was read within HOT_MS.
   */
  stream(key: string, minLength: number): BodyStream | undefined {
    const rec = this.index.get(key)
    if (!rec || rec.entry.meta.bodyLength < minLength) return undefined
    const handle = this.fds?.get(rec.file)
    if (!handle || handle.closed || !sameInode(handle.id, rec.id)) return undefined
    try {
      const st = fstatSync(handle.fd)
      if (!sameFile(fileIdOf(st), rec.id) || st.ctimeMs !== handle.verifiedCtimeMs) return undefined
    } catch {
      return undefined
    }
    const hot = this.hot(handle)
    handle.refs++
    this.hit(rec)
    this.streamed++
    let open = true
    /** A chunk read is on the threadpool: the fd is released only once it is back. */
    let reading = false
    const finish = (): void => {
      handle.lastReadMono = this.opts.clock.monotonic()
      release(handle)
    }
    return {
      entry: rec.entry,
      length: rec.entry.meta.bodyLength,
      read: (buf, offset, done) => {
        if (!open) return done(new Error('stream closed'))
        if (hot && buf.length <= this.syncReadMax) {
          this.reads.sync++
          let err: unknown = null
          try {
            readFully(handle.fd, buf, buf.length, offset)
          } catch (failure) {
            err = failure
          }
          return done(err)
        }
        this.reads.async++
        reading = true
        readAsync(handle.fd, buf, offset, (err) => {
          reading = false
          if (!open) finish()
          done(err)
        })
      },
      lend: (length) => this.pool.lend(length),
      fail: (err) => {
        this.opts.errors.add(err, 'body')
        this.drop(rec)
      },
      close: () => {
        if (!open) return
        open = false
        if (!reading) finish()
      },
    }
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
      this.withFd(rec, (err, handle) => {
        if (err === OTHER_FILE) return resolve(undefined)
        if (err || !handle) {
          if ((err as NodeJS.ErrnoException)?.code !== 'ENOENT') this.opts.errors.add(err, 'body')
          this.drop(rec)
          return resolve(undefined)
        }
        const lease = pooled ? this.pool.lend(len) : undefined
        const buf = lease ? lease.buf : Buffer.allocUnsafeSlow(len)
        const done = (e: unknown): void => {
          const ok = e === null && this.intact(handle, rec, buf)
          release(handle)
          if (!ok) {
            lease?.release()
            this.opts.errors.add(
              e ?? Object.assign(new Error('checksum mismatch'), { code: 'ECHECKSUM' }),
              'body',
            )
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

  /**
   * Is `buf` (just read through `handle`) the body that was stored? The crc32 is checked the
   * first time a body is read through an fd, and again whenever the file's ctime or size differs
   * from that verified read, or the file is not the record's generation of its inode (size and
   * mtime, file-id.ts). Why this is enough: the edge never writes a file in place (every object,
   * and every refreshed meta, is a new file renamed into place), the fd was checked to be the
   * record's inode when it was opened (withFd) and an fd keeps its inode, and any write to that
   * inode (ours or anyone's) moves its ctime, which user space cannot set back. Timestamps are coarse (a jiffy), so a ctime is only trusted once it is
   * CTIME_SETTLE_MS old: a write in the same tick as the verification cannot hide. Fds leave
   * the LRU and are reopened (and re-verified) on eviction and restart.
   */
  private intact(handle: Fd, rec: DiskRecord, buf: Buffer): boolean {
    let ctimeMs = Number.NaN
    try {
      const st = fstatSync(handle.fd)
      if (sameFile(fileIdOf(st), rec.id)) ctimeMs = st.ctimeMs
    } catch (err) {
      this.opts.errors.add(err, 'body')
    }
    if (ctimeMs === handle.verifiedCtimeMs) return true
    if (crc32(buf) !== rec.entry.meta.crc32) return false
    if (ctimeMs < this.opts.clock.now() - CTIME_SETTLE_MS) handle.verifiedCtimeMs = ctimeMs
    return true
  }

  /**
   * Calls back with a held fd of the record's file (the caller releases it), from the LRU or
   * newly opened, or with OTHER_FILE when the path names another inode than the record's (a
   * file renamed over it after the record was taken, or by anyone else): that is a miss, never
   * the record's bytes. The LRU is keyed by path, so a cached fd is used only when its inode is
   * the record's; one of another inode is dropped from the LRU (closed once no read holds it).
   */
  private withFd(rec: DiskRecord, cb: (err: unknown, handle: Fd | undefined) => void): void {
    const file = rec.file
    const cached = this.fds?.get(file)
    if (cached && !cached.closed) {
      if (sameInode(cached.id, rec.id)) {
        cached.refs++
        return cb(null, cached)
      }
      this.fds!.delete(file)
    }
    open(file, 'r', (err, fd) => {
      if (err) return cb(err, undefined)
      const opened = this.opts.hooks?.opened
      if (opened) return void opened(file).then(() => this.adoptFd(rec, fd, cb))
      this.adoptFd(rec, fd, cb)
    })
  }

  /** A newly opened fd: checked against the record's inode, then cached (unless another of that inode already is). */
  private adoptFd(rec: DiskRecord, fd: number, cb: (err: unknown, handle: Fd | undefined) => void): void {
    let id: FileId
    try {
      id = fileIdOf(fstatSync(fd))
    } catch (err) {
      closeQuietly(fd)
      return cb(err, undefined)
    }
    if (!sameInode(id, rec.id)) {
      closeQuietly(fd)
      return cb(OTHER_FILE, undefined)
    }
    const handle: Fd = {
      fd,
      id,
      refs: 1,
      closed: !this.fds,
      verifiedCtimeMs: Number.NaN,
      lastReadMono: Number.NEGATIVE_INFINITY,
    }
    if (this.fds) {
      const prev = this.fds.get(rec.file)
      if (prev && !prev.closed && sameInode(prev.id, id)) {
        // A concurrent open of the same file won the race; use the cached one.
        closeQuietly(fd)
        prev.refs++
        return cb(null, prev)
      }
      this.fds.set(rec.file, handle)
    }
    cb(null, handle)
  }
}

/** withFd's answer when the path holds another file than the record's. */
const OTHER_FILE = Symbol('other file')

function release(handle: Fd): void {
  handle.refs--
  if (handle.closed && handle.refs === 0) closeQuietly(handle.fd)
}

/** Fills `buf` from `position` on the threadpool (as many preads as it takes); a short file is ESHORT. */
function readAsync(fd: number, buf: Buffer, position: number, done: (err: unknown) => void): void {
  const step = (off: number): void => {
    if (off >= buf.length) return done(null)
    read(fd, buf, off, buf.length - off, position + off, (e, n) => {
      if (e || n === 0) return done(e ?? shortRead())
      step(off + n)
    })
  }
  step(0)
}

function readFully(fd: number, buf: Buffer, length: number, position: number): void {
  for (let off = 0; off < length;) {
    const n = readSync(fd, buf, off, length - off, position + off)
    if (n === 0) throw shortRead()
    off += n
  }
}

function shortRead(): Error {
  return Object.assign(new Error('short read'), { code: 'ESHORT' })
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Already closed: nothing to release.
  }
}
