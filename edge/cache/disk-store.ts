/**
 * The disk tier: one file per object (disk-format.ts), an in-memory index rebuilt by
 * scanning at start (disk-index.ts), LRU by bytes. Writes go to a temp file as bytes arrive
 * and are renamed into place only when complete and verified. Reads check the crc32 (see
 * `intact` for when); a mismatch drops the file and is a miss. Disk errors are counted, logged
 * (rate-limited, code and role, never the path: disk-errors.ts) and never reach a request: the edge keeps serving from memory and upstream.
 *
 * Hit path: a small LRU of open file descriptors (ref-counted, so eviction never closes an
 * fd under a read) and one positioned read of the body into a pooled buffer (buffer-pool.ts).
 * Writes: disk-writer.ts. The index rebuild at start: disk-scan.ts.
 *
 * A follower (a cluster worker, edge/cluster) reads a disk tier that another process owns: it
 * never scans, writes, rewrites or unlinks; its index is a mirror fed by `follow()` with the
 * owner's changes, and the keys it read are handed back (`takeTouched`) for the owner's LRU.
 */

import { closeSync, promises as fsp, fstatSync, open, read, readSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { LRUCache } from 'lru-cache'
import { type Clock, systemClock } from '../../src/clock.js'
import { BufferPool } from './buffer-pool.js'
import { encodeTrailer } from './disk-format.js'
import { type DiskRole, DiskErrorLog } from './disk-errors.js'
import { DiskIndex, type DiskRecord } from './disk-index.js'
import { scanObjects } from './disk-scan.js'
import { DiskWriter } from './disk-writer.js'
import { type ProtectedShare, protectedShareOf } from './protected-share.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry } from './entry.js'
import type { BodyStream, CacheStore, CacheWriter, GetResult, StoreStats } from './store.js'

export interface DiskStoreOptions extends EntryOptions {
  dir: string
  maxBytes: number
  protectedShare: number
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /** Wall clock for file ctimes, monotonic for read hotness (default: the system clock). */
  clock?: Clock
  /** Read-only mirror of a tier another process owns (see the file comment). */
  follower?: boolean
}

/** One change to the owner's index, as a follower applies it. */
export type DiskEvent =
  { op: 'add'; file: string; size: number; meta: EntryMeta } | { op: 'remove'; key: string; file: string }

/** What a follower's writer does: accepts bytes, stores nothing (the owner writes). */
const NO_WRITE: CacheWriter = {
  write: () => undefined,
  commit: async () => undefined,
  abort: () => undefined,
}

/** A file's ctime must be this much older than a verification for it to be trusted later. */
const CTIME_SETTLE_MS = 2_000
/** A file read within this long (monotonic ms) is taken to be in the page cache. */
const HOT_MS = 5_000
/** Idle bytes kept in the pool of disk-hit body buffers. */
const READ_POOL_BYTES = 64 * 1024 * 1024

function shortRead(): Error {
  return Object.assign(new Error('short read'), { code: 'ESHORT' })
}

interface Fd {
  fd: number
  refs: number
  closed: boolean
  /** ctime (ms) of the file when its body last matched the crc32 through this fd; NaN: never. */
  verifiedCtimeMs: number
  /** Monotonic ms of the last good read through this fd (-Infinity: none). */
  lastReadMono: number
}

export class DiskStore implements CacheStore {
  readonly index: DiskIndex
  private readonly fds: LRUCache<string, Fd> | undefined
  private errorCount = 0
  readonly errorsByCode = new Map<string, number>()
  /** Disk errors logged, rate-limited (attach a logger once the app has one). */
  readonly errorLog: DiskErrorLog
  /** Bodies handed out to be sent in chunks (`stream`), for tests and figures. */
  streamed = 0
  /** Body buffers lent to disk hits (lend). */
  readonly pool = new BufferPool(READ_POOL_BYTES)
  private readonly clock: Clock
  /** Follower only: keys read since the last `takeTouched`. */
  private touched: Set<string> | undefined

  private constructor(private readonly opts: DiskStoreOptions) {
    this.clock = opts.clock ?? systemClock
    this.errorLog = new DiskErrorLog(() => this.clock.monotonic())
    const bound = opts.follower ? Number.POSITIVE_INFINITY : opts.maxBytes
    const protectedBound = opts.follower ? bound : Math.floor(opts.maxBytes * opts.protectedShare)
    this.index = new DiskIndex(bound, protectedBound, (rec) => this.unlink(rec.file))
    if (opts.follower) this.touched = new Set()
    if (opts.maxFds > 0)
      this.fds = new LRUCache<string, Fd>({
        max: opts.maxFds,
        dispose: (h) => {
          h.closed = true
          if (h.refs === 0) closeQuietly(h.fd)
        },
      })
  }

  /** Opens the tier and rebuilds the index from what is on disk (temp, partial and corrupt files are deleted). */
  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    const store = new DiskStore(opts)
    if (opts.maxBytes > 0 && !opts.follower) await store.scan()
    return store
  }

  get disabled(): boolean {
    return this.opts.maxBytes <= 0
  }

  private countError(err: unknown, role: DiskRole): void {
    const code = (err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN'
    this.errorCount++
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1)
    this.errorLog.record(err, role)
  }

  private unlink(file: string): void {
    this.fds?.delete(file)
    if (this.opts.follower) return
    fsp.unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.countError(err, 'body')
    })
  }

  private async scan(): Promise<void> {
    const found = await scanObjects(this.opts.dir, this.opts, (err) => this.countError(err, 'index'))
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { rec } of found) if (!this.index.add(rec)) this.unlink(rec.file)
  }

  peek(): CacheEntry | undefined {
    return undefined
  }

  has(key: string): boolean {
    return this.index.get(key) !== undefined
  }

  lookup(key: string): CacheEntry | undefined {
    return this.index.get(key)?.entry
  }

  /** The protected share, for prefill (protected-share.ts). */
  protectedShare(): ProtectedShare {
    return protectedShareOf(this.index)
  }

  /** Record for a key, without I/O (for the tiered store and the fast path). */
  record(key: string): DiskRecord | undefined {
    return this.index.get(key)
  }

  async get(key: string): Promise<GetResult | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const got = await this.readBody(rec, false)
    if (!got) return undefined
    this.index.touch(rec)
    this.touched?.add(key)
    return { entry: { ...rec.entry, body: got.body }, tier: 'disk' }
  }

  /**
   * `get` for a response that only sends the body: the body may be a pooled buffer, lent until
   * the caller calls `release` (after the response finished). It must not be kept or stored.
   */
  async lend(key: string): Promise<GetResult | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const got = await this.readBody(rec, this.pool.pools(rec.entry.meta.bodyLength))
    if (!got) return undefined
    this.index.touch(rec)
    this.touched?.add(key)
    return { entry: { ...rec.entry, body: got.body }, tier: 'disk', release: got.release }
  }

  /**
   * A body of at least `minLength` bytes to send in chunks (see BodyStream), without reading it
   * whole: only when its fd is
   * open, its body was verified through that fd and the file is unchanged since (same size
   * and ctime, one fstat), and it was read within HOT_MS (in the page cache). Otherwise
   * undefined: the caller reads it whole with `lend`, which verifies it and warms the fd.
   */
  stream(key: string, minLength: number): BodyStream | undefined {
    const rec = this.index.get(key)
    if (!rec || rec.entry.meta.bodyLength < minLength) return undefined
    const h = this.fds?.get(rec.file)
    if (!h || h.closed || this.clock.monotonic() - h.lastReadMono >= HOT_MS) return undefined
    try {
      const st = fstatSync(h.fd)
      if (st.size !== rec.size || st.ctimeMs !== h.verifiedCtimeMs) return undefined
    } catch {
      return undefined
    }
    h.refs++
    this.index.touch(rec)
    this.touched?.add(key)
    this.streamed++
    let open = true
    return {
      entry: rec.entry,
      length: rec.entry.meta.bodyLength,
      read: (buf, offset) => {
        for (let off = 0; off < buf.length;) {
          const n = readSync(h.fd, buf, off, buf.length - off, offset + off)
          if (n === 0) throw shortRead()
          off += n
        }
      },
      lend: (length) => this.pool.lend(length),
      fail: (err) => {
        this.countError(err, 'body')
        this.dropRecord(rec)
      },
      close: () => {
        if (!open) return
        open = false
        h.lastReadMono = this.clock.monotonic()
        h.refs--
        if (h.closed && h.refs === 0) closeQuietly(h.fd)
      },
    }
  }

  /**
   * The verified body (in a pooled buffer when `lend`), or undefined (file gone or corrupt:
   * dropped, counted). A file read through its cached fd within HOT_MS is in the page cache,
   * so it is read with one synchronous pread (cheaper than the threadpool round trip, measured);
   * a cold file is read on the threadpool so a slow disk never blocks the event loop.
   */
  readBody(rec: DiskRecord, lend: boolean): Promise<{ body: Buffer; release?: () => void } | undefined> {
    const len = rec.entry.meta.bodyLength
    return new Promise((resolve) => {
      this.withFd(rec.file, (err, h, releaseFd) => {
        if (err || !h) {
          if ((err as NodeJS.ErrnoException)?.code !== 'ENOENT') this.countError(err, 'body')
          this.dropRecord(rec)
          return resolve(undefined)
        }
        const lease = lend ? this.pool.lend(len) : undefined
        const buf = lease ? lease.buf : Buffer.allocUnsafeSlow(len)
        const done = (e: unknown): void => {
          const ok = e === null && this.intact(h, rec, buf)
          releaseFd()
          if (!ok) {
            lease?.release()
            this.countError(e ?? Object.assign(new Error('checksum mismatch'), { code: 'ECHECKSUM' }), 'body')
            this.dropRecord(rec)
            resolve(undefined)
            return
          }
          h.lastReadMono = this.clock.monotonic()
          resolve({ body: buf, ...(lease ? { release: lease.release } : {}) })
        }
        if (this.clock.monotonic() - h.lastReadMono < HOT_MS) {
          let e: unknown = null
          try {
            for (let off = 0; off < len;) {
              const n = readSync(h.fd, buf, off, len - off, off)
              if (n === 0) throw shortRead()
              off += n
            }
          } catch (err) {
            e = err
          }
          return done(e)
        }
        const step = (off: number): void => {
          if (off >= len) {
            done(null)
            return
          }
          read(h.fd, buf, off, len - off, off, (e, n) => {
            if (e || n === 0) return done(e ?? shortRead())
            step(off + n)
          })
        }
        step(0)
      })
    })
  }

  /**
   * Is `buf` (just read through `h`) the body that was stored? The crc32 is checked the first
   * time a body is read through an fd, and again whenever the file's ctime or size differs from
   * that verified read. Why this is enough: the edge never writes a body in place (temp file +
   * rename; updateMeta rewrites only the trailer, and drops the cached fd), an fd keeps its
   * inode, and any write to that inode (ours or anyone's) moves its ctime, which user space
   * cannot set back. Timestamps are coarse (a jiffy), so a ctime is only trusted once it is
   * CTIME_SETTLE_MS old: a write in the same tick as the verification cannot hide. Fds leave
   * the LRU and are reopened (and re-verified) on eviction and restart.
   */
  private intact(h: Fd, rec: DiskRecord, buf: Buffer): boolean {
    let ctimeMs = Number.NaN
    try {
      const st = fstatSync(h.fd)
      if (st.size === rec.size) ctimeMs = st.ctimeMs
    } catch (err) {
      this.countError(err, 'body')
    }
    if (ctimeMs === h.verifiedCtimeMs) return true
    if (crc32(buf) !== rec.entry.meta.crc32) return false
    if (ctimeMs < this.clock.now() - CTIME_SETTLE_MS) h.verifiedCtimeMs = ctimeMs
    return true
  }

  private dropRecord(rec: DiskRecord): void {
    if (this.index.get(rec.key) === rec) this.index.remove(rec.key)
    this.unlink(rec.file)
  }

  private withFd(file: string, cb: (err: unknown, h: Fd | undefined, release: () => void) => void): void {
    const cached = this.fds?.get(file)
    const release = (h: Fd) => () => {
      h.refs--
      if (h.closed && h.refs === 0) closeQuietly(h.fd)
    }
    if (cached && !cached.closed) {
      cached.refs++
      cb(null, cached, release(cached))
      return
    }
    open(file, 'r', (err, fd) => {
      if (err) return cb(err, undefined, () => undefined)
      const h: Fd = {
        fd,
        refs: 1,
        closed: !this.fds,
        verifiedCtimeMs: Number.NaN,
        lastReadMono: Number.NEGATIVE_INFINITY,
      }
      if (this.fds) {
        const prev = this.fds.get(file)
        if (prev && !prev.closed) {
          // A concurrent open won the race; use the cached one.
          closeSync(fd)
          prev.refs++
          return cb(null, prev, release(prev))
        }
        this.fds.set(file, h)
      }
      cb(null, h, release(h))
    })
  }

  createWriter(meta: EntryMeta): CacheWriter {
    return this.opts.follower ? NO_WRITE : new DiskWriter(this, meta)
  }

  /** The owner's side of a follower: its index changes, as events (see `follow`). */
  static eventOf(rec: DiskRecord, op: 'add' | 'remove'): DiskEvent {
    return op === 'add'
      ? { op, file: rec.file, size: rec.size, meta: rec.entry.meta }
      : { op, key: rec.key, file: rec.file }
  }

  /** Follower: applies the owner's index changes (a replaced or removed file's cached fd is dropped). */
  follow(events: readonly DiskEvent[]): void {
    for (const ev of events) {
      this.fds?.delete(ev.file)
      if (ev.op === 'remove') {
        this.index.remove(ev.key)
        continue
      }
      const entry = makeEntry(ev.meta, undefined, this.opts)
      this.index.add({ key: ev.meta.key, file: ev.file, size: ev.size, entry, protected: false })
    }
  }

  /** Follower: the keys read since the last call (the owner marks them recently used). */
  takeTouched(): string[] {
    if (!this.touched?.size) return []
    const keys = [...this.touched]
    this.touched.clear()
    return keys
  }

  /** Owner: marks keys a follower read as recently used. */
  touchKeys(keys: readonly string[]): void {
    for (const key of keys) {
      const rec = this.index.get(key)
      if (rec) this.index.touch(rec)
    }
  }

  /** Called by a writer once its file is in place. */
  adopt(file: string, meta: EntryMeta): CacheEntry | undefined {
    this.fds?.delete(file)
    const entry = makeEntry(meta, undefined, this.opts)
    const size = meta.bodyLength + encodeTrailer(meta).length
    if (!this.index.add({ key: meta.key, file, size, entry, protected: meta.protected === true })) {
      this.unlink(file)
      return undefined
    }
    return entry
  }

  async updateMeta(key: string, meta: EntryMeta): Promise<CacheEntry | undefined> {
    const rec = this.index.get(key)
    if (!rec || this.opts.follower) return undefined
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
      this.countError(err, 'trailer')
      this.dropRecord(rec)
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

  async purgeTitle(title: string): Promise<number> {
    let n = 0
    for (const key of this.index.keysOf(title)) if (await this.delete(key)) n++
    return n
  }

  titles(): string[] {
    return this.index.titleList()
  }

  titleIndex(title: string) {
    return this.index.titleIndex(title)
  }

  get errors(): number {
    return this.errorCount
  }

  /** A writer's error (its temp file, or the rename into place). */
  recordError(err: unknown): void {
    this.countError(err, 'temp')
  }

  get dir(): string {
    return this.opts.dir
  }

  get maxBytes(): number {
    return this.opts.maxBytes
  }

  stats(): StoreStats {
    // A follower's bytes are the owner's, counted there once.
    if (this.opts.follower) return { diskErrors: this.errorCount }
    return {
      disk: {
        bytes: this.index.bytes,
        capacityBytes: this.opts.maxBytes,
        objects: this.index.size,
        evictions: this.index.evictions,
      },
      diskErrors: this.errorCount,
    }
  }

  async close(): Promise<void> {
    this.fds?.clear()
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Already closed: nothing to release.
  }
}
