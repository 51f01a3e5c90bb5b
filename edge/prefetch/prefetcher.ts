/**
 * Next-segment prefetch driven by what the player says (CMCD, cmcd.ts). On every content
 * request carrying CMCD for a media segment, the next object the player will ask for is named
 * by `nor` (relative to the request URL) or, when absent, found after the requested segment in
 * the media playlist this edge holds for its directory; it is fetched into the cache through
 * the one single-flight (edge/upstream/single-flight.ts `fill`), so the player's own request
 * for it joins or hits, and a prefetch never fetches what a viewer or prefill already is.
 *
 * Budget: at most `concurrency` prefetches in flight, and no new one while the objects
 * prefetched and not yet asked for add up to `maxBytes` or more (so what prefetch may waste is
 * bounded by about maxBytes plus `concurrency` objects). Accounting: a prefetched object is
 * `used` when a request for it finds it held, `late` when the request came while the prefetch
 * was still in flight (it joins it), `wasted` when it was evicted before anyone asked.
 * Nothing here can fail a request: errors are counted and dropped.
 *
 * In a cluster (edge/cluster) each worker prefetches for the requests it gets, and the player's
 * next request may land on another worker: `peers` tells the others the keys this one starts
 * prefetching (they `watch` them) and tells back when a request for one came to them, which
 * settles it here (`servedElsewhere`), as if the request had come here. Unsettled, those
 * prefetches stayed outstanding until evicted, and their bytes filled the budget for good.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { LRUCache } from 'lru-cache'
import type { Clock } from '../../src/clock.js'
import { parseMediaPlaylist } from '../../src/hls/playlist.js'
import type { DemandStatus } from '../../src/http/status.js'
import { type CacheTarget, cacheTarget, type KeyOptions } from '../cache/key.js'
import type { CacheStore } from '../cache/store.js'
import type { FillResult } from '../upstream/fill.js'
import type { Target } from '../upstream/single-flight.js'
import { isSegment, readCmcd } from './cmcd.js'

export interface PrefetchOptions {
  /** Prefetches in flight at once; 0 turns prefetch off (CMCD is still read and counted). */
  readonly concurrency: number
  /** Bytes of prefetched objects not yet asked for, past which no prefetch starts. */
  readonly maxBytes: number
}

export interface PrefetchDeps {
  readonly flights: {
    fill(target: Target): Promise<FillResult>
    current(key: string): unknown
  }
  readonly store: Pick<CacheStore, 'has' | 'get' | 'titleIndex'>
  readonly keyOptions: KeyOptions
  readonly clock: Clock
  readonly options: PrefetchOptions
}

/** What the prefetcher counts: the prefetch part of /status's demand (src/http/status.ts). */
export type PrefetchCounts = Omit<DemandStatus['prefetch'], 'upstreamBytes' | 'cmcd'>

/** Prefetched objects remembered for accounting, at most (besides the byte budget). */
const MAX_OUTSTANDING = 4096
/** Other workers' prefetches remembered (least recently started forgotten first). */
const MAX_WATCHED = 4 * MAX_OUTSTANDING
/** Media playlists kept parsed (segment paths in order), for `nor`-less requests. */
const MAX_PLAYLISTS = 256

/** A cluster worker's link to the others (edge/cluster/worker-main.ts). */
export interface PrefetchPeers {
  /** A prefetch of `key` started here: the other workers watch for it. */
  started(key: string): void
  /** A request for `key`, another worker's prefetch, came here: that worker settles it. */
  served(key: string): void
}

export class Prefetcher {
  readonly counts: PrefetchCounts = {
    started: 0,
    used: 0,
    late: 0,
    wasted: 0,
    failed: 0,
    skipped: 0,
    held: 0,
  }
  /** Requests carrying CMCD, by whether it could be read. */
  readonly cmcd = { valid: 0, malformed: 0 }
  /** Body bytes prefetches fetched from the upstream. */
  upstreamBytes = 0
  /** Keys being prefetched; `claimed` once a request for the key came meanwhile. */
  private readonly inflight = new Map<string, { claimed: boolean }>()
  /** Prefetched and held, not yet asked for: key → bytes. */
  private readonly outstanding = new Map<string, number>()
  private outstandingBytes = 0
  private readonly playlists = new LRUCache<string, readonly string[]>({ max: MAX_PLAYLISTS })
  /** Keys other workers are prefetching (or hold, prefetched): a request for one here is told. */
  private readonly watched = new LRUCache<string, true>({ max: MAX_WATCHED })
  /** Set by a cluster worker. */
  peers: PrefetchPeers | undefined

  constructor(private readonly deps: PrefetchDeps) {}

  /** Another worker started prefetching these keys. */
  watch(keys: readonly string[]): void {
    for (const key of keys) this.watched.set(key, true)
  }

  /** Another worker had a request for these keys: prefetches of them here are settled as if it came here. */
  servedElsewhere(keys: readonly string[]): void {
    for (const key of keys) if (this.inflight.has(key) || this.outstanding.has(key)) this.account(key)
  }

  /** The counts for /status, wasted ones swept first. */
  status(): DemandStatus['prefetch'] {
    this.sweep()
    return { ...this.counts, upstreamBytes: this.upstreamBytes, cmcd: { ...this.cmcd } }
  }

  /** Whether a prefetch of `key` is in flight (a request for it now is a late prefetch). */
  inFlight(key: string): boolean {
    return this.inflight.has(key)
  }

  /**
   * Every content request (hits included, before it is answered): settles a prefetched key's
   * accounting, then prefetches the next object when the request is a segment with CMCD.
   */
  request(target: CacheTarget, headers?: IncomingHttpHeaders): void {
    if (this.inflight.size > 0 || this.outstanding.size > 0) this.account(target.key)
    // Told once: a later request for it here settles nothing more there.
    if (this.watched.size > 0 && this.watched.delete(target.key)) this.peers?.served(target.key)
    if (target.cmcd === undefined && headers === undefined) return
    const facts = readCmcd(target.cmcd, headers)
    if (facts === undefined) return
    if (facts === 'malformed') {
      this.cmcd.malformed++
      return
    }
    this.cmcd.valid++
    if (this.deps.options.concurrency <= 0 || !isSegment(target.path, facts.ot)) return
    void this.next(target, facts.nor)
  }

  /** Prefetched objects dropped before anyone asked for them are counted as wasted (scrape time). */
  sweep(): void {
    for (const [key, bytes] of this.outstanding) {
      if (this.deps.store.has(key)) continue
      this.outstanding.delete(key)
      this.outstandingBytes -= bytes
      this.counts.wasted++
    }
  }

  private account(key: string): void {
    const running = this.inflight.get(key)
    if (running) {
      // Committed already (the fill has yet to hear it): a hit, so used; else the request joins.
      if (!running.claimed) this.counts[this.deps.store.has(key) ? 'used' : 'late']++
      running.claimed = true
      return
    }
    const bytes = this.outstanding.get(key)
    if (bytes === undefined) return
    this.outstanding.delete(key)
    this.outstandingBytes -= bytes
    if (this.deps.store.has(key)) this.counts.used++
    else this.counts.wasted++
  }

  private async next(target: CacheTarget, nor: string | undefined): Promise<void> {
    let path: string | undefined
    try {
      path = nor !== undefined ? resolvePath(nor, target.path) : await this.fromPlaylist(target)
    } catch {
      this.counts.failed++
      return
    }
    const next = path === undefined ? undefined : this.targetOf(path, target)
    if (next === undefined) return
    const { store, flights, options } = this.deps
    if (store.has(next.key) || this.inflight.has(next.key) || flights.current(next.key) !== undefined) {
      this.counts.held++
      return
    }
    if (this.outstandingBytes >= options.maxBytes || this.outstanding.size >= MAX_OUTSTANDING) this.sweep()
    if (
      this.inflight.size >= options.concurrency ||
      this.outstandingBytes >= options.maxBytes ||
      this.outstanding.size >= MAX_OUTSTANDING
    ) {
      this.counts.skipped++
      return
    }
    const slot = { claimed: false }
    this.inflight.set(next.key, slot)
    this.counts.started++
    this.peers?.started(next.key)
    try {
      const r = await flights.fill({ key: next.key, path: next.path })
      if (r.how === 'fetched') this.upstreamBytes += r.bytes
      if (r.stored && !slot.claimed && !this.outstanding.has(next.key)) {
        this.outstanding.set(next.key, r.bytes)
        this.outstandingBytes += r.bytes
      }
    } catch {
      this.counts.failed++
    } finally {
      this.inflight.delete(next.key)
    }
  }

  /** The next object's target: a segment of the same title, other than the one requested. */
  private targetOf(path: string, from: CacheTarget): CacheTarget | undefined {
    let t: CacheTarget
    try {
      // The request was verified (signed URLs); its title's objects need no token of their own.
      const nowSec = Math.floor(this.deps.clock.now() / 1000)
      t = cacheTarget(path, { ...this.deps.keyOptions, signingKeys: undefined }, nowSec)
    } catch {
      return undefined
    }
    if (t.title === undefined || t.title !== from.title || t.key === from.key) return undefined
    return isSegment(t.path, undefined) ? t : undefined
  }

  /** The segment after `target`'s in the media playlist held for its directory, if any. */
  private async fromPlaylist(target: CacheTarget): Promise<string | undefined> {
    if (target.title === undefined) return undefined
    const dir = target.path.slice(0, target.path.lastIndexOf('/') + 1)
    let segments: readonly string[] | undefined
    for (const keys of this.deps.store.titleIndex(target.title).values()) {
      for (const key of keys) {
        if (!key.startsWith(dir) || !/^[^/?]+\.m3u8(?:\?.*)?$/.test(key.slice(dir.length))) continue
        segments = this.playlists.get(key) ?? (await this.readPlaylist(key))
        if (segments?.includes(target.path)) break
      }
      if (segments?.includes(target.path)) break
    }
    if (segments === undefined) return undefined
    const i = segments.lastIndexOf(target.path)
    return i === -1 ? undefined : segments.slice(i + 1).find((p) => p !== target.path)
  }

  private async readPlaylist(key: string): Promise<readonly string[] | undefined> {
    const got = await this.deps.store.get(key)
    const body = got?.entry.body
    if (body === undefined || got!.entry.meta.status !== 200) return undefined
    const base = key.split('?')[0]!
    const paths = parseMediaPlaylist(body.toString('utf8'), `playlist ${base}`).segments.map((s) =>
      resolvePath(s.uri, base),
    )
    this.playlists.set(key, paths)
    return paths
  }
}

/** `ref` resolved against `base` (a path), as a path with its query; refused off this host. */
function resolvePath(ref: string, base: string): string {
  const root = 'http://edge.invalid'
  const u = new URL(ref, root + base)
  if (u.origin !== root) throw new Error('another host')
  return u.pathname + u.search
}
