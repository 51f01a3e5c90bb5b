/**
 * Large memory hits sent by sendfile from the disk copy's page cache. A memory-tier body goes to
 * the socket through node: one copy of every byte from our buffer into the kernel, which nginx,
 * sending page-cache pages, does not make (a 4.2 MB memory hit cost 2.5x nginx's CPU, against
 * 1.3x for a disk hit sent by sendfile: docs/bench.md). When the disk tier holds the same body
 * (same length and crc32) and its file was verified through the open fd, the memory tier's entry
 * answers and the disk file's pages are sent by sendfile on the event loop, only while every page
 * of a send's range is in the page cache. A memory hit never waits on the disk: a range not
 * resident goes through node from the memory buffer, as before.
 *
 * A disk copy not verified yet (written with the miss, never read since) is read and checked in
 * the background, a few at a time (`HeldVerifier`), so that the next hit can go by sendfile.
 */
import type { CacheEntry } from './entry.js'
import type { DiskRecord } from './disk-index.js'
import type { BodyStream, GetResult } from './store.js'

/** errno a held stream's send answers instead of a send that could wait on the disk (pump-body: node writes the rest). */
const ENOSYS = 38

/** Whether the disk record holds the memory entry's body (same length and crc32, no encoded form). */
export function sameBody(mem: CacheEntry, rec: DiskRecord | undefined): boolean {
  return (
    rec !== undefined &&
    mem.body !== undefined &&
    mem.encoded === undefined &&
    rec.entry.meta.bodyLength === mem.body.length &&
    rec.entry.meta.crc32 === mem.meta.crc32 &&
    rec.entry.meta.status === mem.meta.status
  )
}

/**
 * `disk` (a stream of the disk copy, with sendNow) answered as the memory hit `mem`: its head and
 * freshness, its bytes for whatever goes through node (the nudges, and the rest when a range is
 * not resident), the disk file only for sends on the loop.
 */
export function heldStream(mem: CacheEntry, disk: BodyStream): BodyStream {
  const body = mem.body!
  return {
    entry: mem,
    length: body.length,
    tier: 'memory',
    read: (buf, offset, done) => {
      body.copy(buf, 0, offset, offset + buf.length)
      done(null)
    },
    lend: (length) => disk.lend(length),
    sendTo: (_out, _offset, _count, done) => done(ENOSYS, 0),
    sendNow: (out, offset, count) => disk.sendNow!(out, offset, count),
    fail: (err) => disk.fail(err),
    close: () => disk.close(),
  }
}

/** A key's disk copy is checked again at most this often (ms): a file just written is trusted only once its ctime settled. */
const RETRY_MS = 2_500
/** Keys whose last check is remembered (the oldest forgotten first). */
const REMEMBERED = 4096

/**
 * Background checks of disk copies of large memory bodies: at most `limit` at once, one per key,
 * and one per key per RETRY_MS. Each reads the whole body once, on the threadpool, through the
 * disk tier's hit read (verified, its fd kept), outside any request.
 */
export class HeldVerifier {
  private readonly busy = new Map<string, Promise<void>>()
  private readonly tried = new Map<string, number>()
  /** Checks started, for tests and figures. */
  started = 0

  constructor(
    private readonly read: (key: string) => Promise<GetResult | undefined>,
    private readonly monotonic: () => number = () => performance.now(),
    private readonly limit = 2,
  ) {}

  /** Reads `key`'s disk copy (verifying it and keeping its fd) unless one is under way, too many are, or it was tried lately. */
  verify(key: string): void {
    if (this.busy.has(key) || this.busy.size >= this.limit) return
    const now = this.monotonic()
    const last = this.tried.get(key)
    if (last !== undefined && now - last < RETRY_MS) return
    this.tried.delete(key)
    this.tried.set(key, now)
    if (this.tried.size > REMEMBERED) this.tried.delete(this.tried.keys().next().value!)
    this.started++
    const done = (): void => {
      this.busy.delete(key)
    }
    this.busy.set(
      key,
      this.read(key).then((got) => {
        got?.release?.()
        done()
      }, done),
    )
  }

  /** Resolves once every check started so far is over (tests). */
  async settled(): Promise<void> {
    await Promise.all(this.busy.values())
  }
}
