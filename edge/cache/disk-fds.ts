/**
 * The disk reader's open files (disk-reader.ts): a small LRU of fds keyed by path,
 * ref-counted so eviction never closes an fd under a read, each fd used only for the record
 * whose inode it reads (file-id.ts: checked by fstat after each open, and before each use of
 * a cached fd). Also the positioned reads that fill a buffer through one.
 */
import { closeSync, fstatSync, open, read, readSync } from 'node:fs'
import { LRUCache } from 'lru-cache'
import { type FileId, fileIdOf, sameInode } from './file-id.js'
import type { DiskRecord } from './disk-index.js'

/**
 * Points where a concurrent change matters, awaited when set: tests pause a read there and
 * rename, purge or rewrite under it. Never set in production.
 */
export interface DiskReaderHooks {
  /** A file was opened for a read; its fd is not yet checked nor cached. */
  opened?(file: string): Promise<void>
}

export interface Fd {
  fd: number
  /** The inode this fd reads (fstat after open): an fd never changes file. */
  id: FileId
  refs: number
  closed: boolean
  /** ctime (ms) of the file when its body last matched the crc32 through this fd; NaN: never. */
  verifiedCtimeMs: number
  /** Monotonic ms of the last good read through this fd (-Infinity: none). */
  lastReadMono: number
  /**
   * What else the fd's holder keeps for it (disk-reader.ts: a mapping of the file for residency
   * checks; null when it could not be made), undone by `unmap` when the fd closes.
   */
  map?: object | null
  unmap?: () => void
}

/** withFd's answer when the path holds another file than the record's. */
export const OTHER_FILE = Symbol('other file')

export class DiskFds {
  private readonly fds: LRUCache<string, Fd> | undefined

  /** `maxFds`: open fds kept for hits (0 = open per read). */
  constructor(
    maxFds: number,
    private readonly hooks: DiskReaderHooks | undefined,
  ) {
    if (maxFds > 0)
      this.fds = new LRUCache<string, Fd>({
        max: maxFds,
        dispose: (handle) => {
          handle.closed = true
          if (handle.refs === 0) closeHandle(handle)
        },
      })
  }

  /** The cached fd of `file`, if any (not held: the caller takes a ref). */
  cached(file: string): Fd | undefined {
    return this.fds?.get(file)
  }

  /** The fd of a file that changed or went away is closed (once no read holds it). */
  forget(file: string): void {
    this.fds?.delete(file)
  }

  clear(): void {
    this.fds?.clear()
  }

  /**
   * Calls back with a held fd of the record's file (the caller releases it), from the LRU or
   * newly opened, or with OTHER_FILE when the path names another inode than the record's (a
   * file renamed over it after the record was taken, or by anyone else): that is a miss, never
   * the record's bytes. The LRU is keyed by path, so a cached fd is used only when its inode is
   * the record's; one of another inode is dropped from the LRU (closed once no read holds it).
   */
  withFd(rec: DiskRecord, cb: (err: unknown, handle: Fd | undefined) => void): void {
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
      const opened = this.hooks?.opened
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

export function release(handle: Fd): void {
  handle.refs--
  if (handle.closed && handle.refs === 0) closeHandle(handle)
}

function closeHandle(handle: Fd): void {
  handle.unmap?.()
  handle.unmap = undefined
  closeQuietly(handle.fd)
}

/** Fills `buf` from `position` on the threadpool (as many preads as it takes); a short file is ESHORT. */
export function readAsync(fd: number, buf: Buffer, position: number, done: (err: unknown) => void): void {
  const step = (off: number): void => {
    if (off >= buf.length) return done(null)
    read(fd, buf, off, buf.length - off, position + off, (e, n) => {
      if (e || n === 0) return done(e ?? shortRead())
      step(off + n)
    })
  }
  step(0)
}

export function readFully(fd: number, buf: Buffer, length: number, position: number): void {
  for (let off = 0; off < length;) {
    const n = readSync(fd, buf, off, length - off, position + off)
    if (n === 0) throw shortRead()
    off += n
  }
}

function shortRead(): Error {
  return Object.assign(new Error('short read'), { code: 'ESHORT' })
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Already closed: nothing to release.
  }
}
