/**
 * The cache store contract. The memory tier, the disk tier and the tiered store (memory in
 * front of disk) all implement it and all pass one contract test
 * (test/edge/cache/store-contract.ts). Stores hold bytes and decide eviction within their
 * byte bound; freshness is the caller's business.
 */
import type { CacheEntry, EntryMeta } from './entry.js'
import type { RequestFields } from './variants.js'

export type TierName = 'memory' | 'disk'

export interface TierStats {
  bytes: number
  capacityBytes: number
  /** The disk tier's bound in force: capacityBytes, or less while its filesystem holds less. */
  effectiveBytes?: number
  objects: number
  evictions: number
}

export interface StoreStats {
  memory?: TierStats
  disk?: TierStats
  /** Disk errors (ENOSPC, EACCES, EIO...) counted, never thrown at a request. */
  diskErrors?: number
  /** Bytes held by the pool of body buffers (lent and idle; buffer-pool.ts). */
  poolBytes?: number
  /** Disk body reads by where they ran: the event loop (small, hot) or the threadpool. */
  diskReads?: { sync: number; async: number; sendfile: number; sendfileLoop: number }
}

/**
 * A write in progress. Bytes arrive in order with `write`; `commit` makes the entry visible
 * only if the bytes match `meta.bodyLength` (when given) and their checksum; `abort` drops
 * everything. A store that cannot take the entry (too large, disk failing) accepts the calls
 * and commits nothing.
 */
export interface CacheWriter {
  /**
   * Known when the writer was made: it will store nothing (the body's Content-Length is more than
   * the store can hold), so it writes nothing either; Cache-Status then does not say `stored`.
   */
  readonly refused?: boolean
  write(chunk: Buffer): void
  /** Resolves to the committed entry, or undefined when nothing was stored. */
  commit(final: { bodyLength: number; crc32: number }): Promise<CacheEntry | undefined>
  abort(): void
}

export interface GetResult {
  entry: CacheEntry
  tier: TierName
  /**
   * Set by `getToSend` when the body is a pooled buffer: call it once the response no longer needs
   * the bytes (its 'finish'); until then the body must not be kept, stored or given to anyone.
   */
  release?: () => void
}

/**
 * Most bytes of one send on the event loop (every page of the range in the page cache, so the
 * send only hands page references to the socket, as nginx's sendfile does; --disk-sendfile-max-chunk).
 * A send that took all of them is followed by a turn of the loop, so one large body never holds
 * the loop for more than one such send. On loopback the client's receive path runs in the
 * context of whoever puts the packets on the wire, so the size moves who is charged for it:
 * under wrk -c100 on 4.2 MB hits, sends of 1 MiB and more always ran in nginx's regime (the edge
 * about half the CPU per hit, the machine, edge + client + kernel, 15-30 % more, fewer hits),
 * 128 KiB ones never, 512 KiB either way from one round to the next (docs/bench.md, "Who pays for
 * a loopback send").
 */
export const DEFAULT_LOOP_CHUNK = 512 * 1024

/**
 * A verified disk body sent in chunks rather than read whole (large hits): the response reads
 * `length` bytes chunk by chunk into buffers from `pool`, then calls `close` exactly once.
 */
export interface BodyStream {
  readonly entry: CacheEntry
  readonly length: number
  /**
   * Fills `buf` with the body bytes at `offset`, then calls `done` (null or the error): at once
   * when the read was small and hot enough to be done on the event loop, later when it went to
   * the threadpool (disk-reader.ts). One read at a time.
   */
  read(buf: Buffer, offset: number, done: (err: unknown) => void): void
  /** Reusable chunk buffers (returned with the lease's release once the socket has taken them). */
  lend(length: number): { buf: Buffer; release: () => void }
  /**
   * Sends `count` body bytes from `offset` from the file straight to the socket behind `out` (a
   * descriptor the caller owns): sendfile(2) on the threadpool, until every byte is sent, the
   * socket is full (EAGAIN) or a failure; then `done(errno, sent)`. One send or read at a time.
   * Present only where the sendfile addon loaded and the tier allows it (--disk-sendfile).
   */
  sendTo?(out: number, offset: number, count: number, done: (errno: number, sent: number) => void): void
  /**
   * `sendTo` done at once on the event loop, when every page of the range is in the page cache
   * (so it cannot wait on the disk): bytes sent, or a negative errno as SendFile.sendNow says
   * (-ENODATA: not resident, nothing sent: use `sendTo`). Present with `sendTo`.
   */
  sendNow?(out: number, offset: number, count: number): number
  /** Most bytes one `sendNow` is asked for (--disk-sendfile-max-chunk); present with `sendNow`. */
  readonly loopChunk?: number
  /** A read failed: the object is dropped and the error counted. */
  fail(err: unknown): void
  close(): void
}

export interface CacheStore {
  /**
   * The entry if the memory tier holds it, as a hit: synchronous, no I/O, and it marks the
   * entry recently used (lru-cache's `get`), for the fast hit path. Undefined when a hit would
   * need I/O.
   */
  getInMemory(key: string): CacheEntry | undefined
  /** The entry with its body read and verified, or undefined (a corrupt object counts as a miss and is dropped). */
  get(key: string): Promise<GetResult | undefined>
  /**
   * `get` for a response that only sends the body and drops it (the hit path): the body may be
   * a buffer lent from a pool (GetResult.release). Optional: without it callers use `get`.
   */
  getToSend?(key: string): Promise<GetResult | undefined>
  /**
   * An object of at least `minLength` bytes held on disk only, verified and in the page cache, to send in chunks; else
   * undefined and the caller uses `getToSend`/`get` (no I/O beyond an fstat). Optional.
   * `sendMinLength`: the least length when the body can go by sendfile (the connection allows
   * it; the tier checks it has the addon), where streaming pays off for smaller bodies.
   */
  stream?(key: string, minLength: number, sendMinLength?: number): BodyStream | undefined
  /**
   * A small object held on disk only whose body can be read on the event loop now (its file
   * open, recently read and verified through the same fd: disk-reader.ts `resident`), read and
   * checked, for the raw hit path; else undefined, with no I/O, and the caller uses `get`. Optional.
   */
  getResident?(key: string): GetResult | undefined
  /**
   * A reusable buffer of `length` bytes for a miss's body that this store will not keep a
   * reference to (it copies what it stores: a disk write), lent from the pool the disk hits use
   * (buffer-pool.ts); undefined when the store would keep the body itself (a memory tier takes
   * it) or does not pool that size. Optional: without it the caller allocates.
   */
  lendBody?(
    length: number,
    meta?: Pick<EntryMeta, 'protected' | 'key'>,
  ): { buf: Buffer; release: () => void } | undefined
  /** Bounds the idle bytes of that pool by `room()` as well (BufferPool.boundIdle). */
  boundIdleBodies?(room: () => number): void
  /**
   * The key a request for the URL `key` looks up: `key` itself, or, when the URL's answers vary
   * (variants.ts), its variant for the request's fields. No I/O; no allocation without variants.
   * Optional: without it every URL is looked up by its own key.
   */
  variantOf?(key: string, headers: RequestFields): string
  /**
   * One content request for `key`, hit or miss, counted once by the request path (an admission
   * that learns from every request, admission.ts). Optional.
   */
  noteRequest?(key: string): void
  /** Is the key held in any tier (no I/O)? */
  has(key: string): boolean
  /**
   * The entry held for a key without reading its body (no I/O; `body` may be undefined), for
   * freshness and size checks (prefill). It does not count as a use (lru-cache's `peek`).
   * Optional: without it callers use `has`.
   */
  lookup?(key: string): CacheEntry | undefined
  createWriter(meta: EntryMeta): CacheWriter
  /**
   * Replace the meta (after a 304) keeping the body. With `revalidated` (the validators of the
   * response the 304 answered), a tier refreshes only a copy carrying those validators (RFC 9111
   * §4.3.4): a newer copy stored meanwhile stands.
   */
  updateMeta(key: string, meta: EntryMeta, revalidated?: Validators): Promise<CacheEntry | undefined>
  delete(key: string): Promise<boolean>
  /** Drops every object of a title, in time proportional to that title. Returns objects removed. */
  purgeTitle(title: string): Promise<number>
  /** Titles with at least one object. */
  titles(): string[]
  /** Keys held for a title, grouped by version (the path segment after the title). */
  titleIndex(title: string): Map<string, Set<string>>
  stats(): StoreStats
  close(): Promise<void>
}

/** The version segment of /vod/{title}/{version}/... ('_' for the master and non-/vod keys). */
export function versionOfKey(key: string): string {
  if (!key.startsWith('/vod/')) return '_'
  // The path's segments ['', 'vod', title, version, rendition, file, ...]: at least five slashes.
  const q = key.indexOf('?')
  const end = q === -1 ? key.length : q
  const a = key.indexOf('/', 5)
  const b = a === -1 ? -1 : key.indexOf('/', a + 1)
  const c = b === -1 ? -1 : key.indexOf('/', b + 1)
  return c !== -1 && c < end ? key.slice(a + 1, b) : '_'
}

/** A per-title index (title → version → keys), shared by the tiers. */
export class TitleIndex {
  private readonly byTitle = new Map<string, Map<string, Set<string>>>()

  add(title: string | undefined, key: string): void {
    if (title === undefined) return
    let versions = this.byTitle.get(title)
    if (!versions) {
      versions = new Map()
      this.byTitle.set(title, versions)
    }
    const v = versionOfKey(key)
    let keys = versions.get(v)
    if (!keys) {
      keys = new Set()
      versions.set(v, keys)
    }
    keys.add(key)
  }

  remove(title: string | undefined, key: string): void {
    if (title === undefined) return
    const versions = this.byTitle.get(title)
    const v = versionOfKey(key)
    const keys = versions?.get(v)
    if (!versions || !keys) return
    keys.delete(key)
    if (keys.size === 0) versions.delete(v)
    if (versions.size === 0) this.byTitle.delete(title)
  }

  keys(title: string): string[] {
    const out: string[] = []
    for (const set of this.byTitle.get(title)?.values() ?? []) out.push(...set)
    return out
  }

  get(title: string): Map<string, Set<string>> {
    return this.byTitle.get(title) ?? new Map()
  }

  titles(): string[] {
    return [...this.byTitle.keys()].sort()
  }
}

/** What selects the stored response a 304 updates: its ETag and Last-Modified. */
export interface Validators {
  readonly etag: string | undefined
  readonly lastModified: string | undefined
}

export function validatorsOf(headers: Readonly<Record<string, string | undefined>>): Validators {
  return { etag: headers.etag, lastModified: headers['last-modified'] }
}

/** A stored copy is the response a 304 answered (no `revalidated`: any copy is). */
export function isRevalidated(
  headers: Readonly<Record<string, string | undefined>>,
  revalidated: Validators | undefined,
): boolean {
  return (
    revalidated === undefined ||
    (headers.etag === revalidated.etag && headers['last-modified'] === revalidated.lastModified)
  )
}
