/**
 * The ONE place misses coalesce. The first request for a key starts the upstream fetch;
 * every request for that key until the cache write is committed joins the same Flight and
 * gets the same bytes as they arrive. A client leaving never aborts the fetch. Revalidation
 * of stale entries, background refreshes (stale-while-revalidate) and prefill's `fill()`
 * all go through here, so a viewer and a prefill never fetch one object twice.
 *
 * Nothing is cached unless the whole body arrived with the announced length; a truncated
 * body fails every sink (those past headers get their connection destroyed) and the next
 * request refetches. The flight is removed from the table in `finally`. One fetch's course is
 * flight-run.ts (headers) and flight-body.ts (body); prefill's `fill` is fill.ts.
 */
import type { Clock } from '../../src/clock.js'
import { LRUCache } from 'lru-cache'
import { CdnError } from '../../src/errors.js'
import type { CacheEntry } from '../cache/entry.js'
import type { Outcome } from '../cache/outcome.js'
import type { CacheStore } from '../cache/store.js'
import { primaryOf } from '../cache/variants.js'
import type { InflightBudget } from '../inflight-budget.js'
import { type Upstream, upstreamError } from './client.js'
import { type FillOptions, type FillResult, fillTarget } from './fill.js'
import { Flight, type FlightSink } from './flight.js'
import { type RunContext, runFlight } from './flight-run.js'
import type { UpstreamRequest } from './forward.js'
import { findFlight } from './variant-flights.js'
import { armWaiterTimeout } from './waiter-timeout.js'

export interface FlightObserver {
  fetchStarted(): void
  fetchFinished(seconds: number, result: 'ok' | 'not-modified' | 'error' | 'truncated'): void
  coalesced(): void
  /** A request went upstream alone, not collapsed, its URL's last answer being personal (hit-for-miss). */
  hitForMiss?(): void
  /** A body cut after its headers was taken over by a Range request (resumable-body.ts), or not. */
  resumed?(result: 'ok' | 'refused' | 'failed'): void
}

export interface SingleFlightOptions {
  upstream: Upstream
  store: CacheStore
  clock: Clock
  observer: FlightObserver
  maxObjectSize: number
  maxInflight: number
  waiterTimeout: number
  heuristicMax: number
  /** The edge encodes playlists and JSON (--compress): a miss of one says Vary: Accept-Encoding. */
  compress?: boolean
  /**
   * How long a URL whose answer was personal (private, no-store, Set-Cookie, Vary: *) is fetched
   * for each request without collapsing (ms; 0: never remembered): its next requests go upstream
   * at once instead of queueing behind one fetch whose answer they could not share (a
   * hit-for-miss, as Varnish keeps one). A shareable answer forgets it, and so does a purge.
   */
  hitForMiss?: number
  /** Floor on the freshness of stored 404/410 answers (ms; 0: as the upstream says). */
  notFoundTtl?: number
  /** Floor on the freshness of 500/502/503/504 answers, stored only when above 0 (ms). */
  errorTtl?: number
  /** Bytes in flight: a body is reserved here before it is read (waiting up to waiterTimeout). */
  budget: InflightBudget
  /** The fields of a request the edge makes for itself, with no client (prefill): Via, the add list. */
  ownRequest?: UpstreamRequest
  /** Where a client dropped for falling behind a shared stream is reported. */
  log?: { warn(obj: Record<string, unknown>, msg: string): void }
  /** Told each key whose object was committed to the store (miss causes remember what was held). */
  stored?: (key: string) => void
  /**
   * Told each URL whose answer was larger than --max-object-size (it is sliced from then on):
   * returns the slice size its stream is stored in as it passes (0: the stream is not stored).
   */
  large?: (key: string, length: number) => number
}

export interface Target {
  key: string
  path: string
}

/** URLs remembered as personal (`hitForMiss`) at most: each costs its path and a number. */
const HIT_FOR_MISS_MAX = 10_000

export class SingleFlight {
  /** Flights by key; a private flight (a client's credentials) under a slot nobody looks up. */
  private readonly inflight = new Map<string, Flight>()
  private privateSlots = 0
  /**
   * Upstream fetches running, each counted once: a variant's fetch is listed under its slot and
   * its variant's key, and a stream too large to keep leaves the table while it still runs, so
   * the table's size is not the number of fetches (--max-inflight bounds this one).
   */
  private running = 0
  /** Every fetch running, listed or not (a stream too large to keep leaves the table). */
  private readonly flying = new Set<Flight>()
  /**
   * URLs whose last answer was personal, with when that stops counting (the clock's ms): their
   * requests fetch alone (`hitForMiss`). Bounded: the least recently marked go first.
   */
  private readonly personalUntil = new LRUCache<string, number>({ max: HIT_FOR_MISS_MAX })
  /** Told of each title a purge begins for (prefill stops filling it: edge/prefill/wiring.ts). */
  private readonly purging = new Set<(title: string) => void>()
  /** Told of each key committed (prefill hears of a title's new master: edge/prefill/wiring.ts). */
  private readonly storing = new Set<(key: string) => void>()

  /** What each fetch needs of this table (flight-run.ts). */
  private readonly context: RunContext

  constructor(private readonly options: SingleFlightOptions) {
    this.context = {
      options,
      entryOptions: { heuristicMaxMs: options.heuristicMax, compress: options.compress ?? false },
      inflight: this.inflight,
      move: (from, sink, request) => this.move(from, sink, request),
      unlist: (f) => this.unlist(f),
      alone: (from, sink, request) => this.alone(from, sink, request),
      answered: (path, own) => this.answered(path, own),
      stored: (key) => {
        options.stored?.(key)
        for (const fn of this.storing) fn(key)
      },
    }
  }

  /** Upstream fetches running (one per fetch, until it and its cache write are over). */
  get size(): number {
    return this.running
  }

  /** Tells `fn` of each key committed to the cache by a fetch; the answer stops it. */
  onStored(fn: (key: string) => void): () => void {
    this.storing.add(fn)
    return () => this.storing.delete(fn)
  }

  /** Tells `fn` of each title whose purge begins (`purge`); the answer stops it. */
  onPurge(fn: (title: string) => void): () => void {
    this.purging.add(fn)
    return () => this.purging.delete(fn)
  }

  /**
   * A purge of `title` begins; it waits for none of the title's fetches, so a slow one never
   * holds the purge's answer. Every fetch running for the title stores nothing from now on: its
   * cache write is dropped before its commit (flight-body.ts), a commit already under way is
   * refused by the tiers' purge generations (purge-generations.ts), and a stream too large to keep
   * stores none of the slices it had yet to reach (slice-writer.ts). They still answer the
   * clients they have, and leave the table: a request from now on starts a fetch of its own rather
   * than joining one that may carry what the purge removed.
   */
  purge(title: string): void {
    const prefix = `/vod/${title}/`
    for (const fn of this.purging) fn(title)
    this.drop((key) => key.startsWith(prefix))
  }

  /**
   * The stored answers of `key` (and its variants) are invalidated one by one (RFC 9111 §4.4: a
   * relayed unsafe request's answer): as a purge does for a title, every fetch of them under way
   * stores nothing more and leaves the table, so a request from now on fetches anew rather than
   * joining a fetch that carries the old answer.
   */
  forget(key: string): void {
    const primary = primaryOf(key)
    this.drop((k) => primaryOf(k) === primary)
  }

  /** The fetches, listed or not, of the keys `dropped` names: they store nothing more, nobody joins them. */
  private drop(dropped: (key: string) => boolean): void {
    for (const f of this.flying)
      if (dropped(f.key)) {
        f.purged = true
        // A paced prefill's body is not held at its pace: the rest comes at the upstream's.
        f.throttle = undefined
        f.unthrottle?.()
      }
    for (const path of [...this.personalUntil.keys()]) if (dropped(path)) this.personalUntil.delete(path)
    for (const [key, f] of [...this.inflight]) if (dropped(key)) this.unlist(f)
  }

  /**
   * Resolves once every fetch listed for a title is over (committed or failed), for tests. A
   * stream too large to keep has left the table and is not waited for (it may last as long as its
   * slowest client).
   */
  async settled(title: string): Promise<void> {
    const prefix = `/vod/${title}/`
    const pending: Promise<unknown>[] = []
    for (const [key, f] of this.inflight)
      if (key.startsWith(prefix)) pending.push(f.done.catch(() => undefined))
    await Promise.all(pending)
  }

  /** The flight for a key, if one is running and can still be joined from byte 0. */
  current(key: string): Flight | undefined {
    const f = this.inflight.get(key)
    return f?.joinable ? f : undefined
  }

  /** The running fetch a request for `key` would join, and the key it would start one under otherwise. */
  find(key: string, upstream: UpstreamRequest | undefined): { flight: Flight | undefined; key: string } {
    return findFlight((k) => this.current(k), key, upstream)
  }

  /**
   * Joins the running fetch for `target.key` or starts one (revalidating `stale` when given)
   * with the fields of `opts.upstream` (the first client's: those who join share its answer).
   * A request carrying the client's credentials never joins nor is joined (RFC 9111 §3.5: the
   * answer to it is not another client's until it says so). `joined`: the sink joined a fetch.
   */
  request(
    target: Target,
    sink: FlightSink,
    opts: {
      stale?: CacheEntry
      protect?: boolean
      upstream?: UpstreamRequest
      byRequest?: boolean
      /** The URL's answer varies and is held, not for this request's fields (Cache-Status fwd=vary-miss). */
      varyMiss?: boolean
      /** The bytes of a slice (edge/cache/slices.ts), asked with Range: `target.key` is the slice's. */
      slice?: { start: number; end: number }
      /** A fetch of its own that nobody joins (the request's answer is its own: flight-run.ts). */
      alone?: boolean
    } = {},
  ): { flight: Flight; joined: boolean } {
    if (!opts.alone && this.personalNow(target.key)) {
      opts = { ...opts, alone: true }
      this.options.observer.hitForMiss?.()
    }
    const found = opts.alone ? { flight: undefined, key: target.key } : this.find(target.key, opts.upstream)
    let running = found.flight
    if (found.key !== target.key) target = { key: found.key, path: target.path }
    // A finished flight only bridges the gap until its commit lands; a request that already
    // holds a stale copy wants a newer answer than that, so it starts its own fetch.
    if (running?.state === 'done' && opts.stale) running = undefined
    const flight = running ?? this.start(target, opts.stale, opts.upstream, opts.slice, opts.alone)
    if (!running && opts.byRequest) flight.forwarded.fwd = 'request'
    else if (!running && opts.varyMiss && !opts.stale) flight.forwarded.fwd = 'vary-miss'
    if (opts.protect) flight.protect = true
    if (running) {
      this.options.observer.coalesced()
      // Someone joined a paced prefill: the rest of the body comes at the upstream's pace.
      running.throttle = undefined
      running.unthrottle?.()
    }
    if (flight.state === 'waiting') {
      armWaiterTimeout(flight, sink, this.options.waiterTimeout)
      flight.requests.set(sink, opts.upstream ?? flight.request)
    }
    flight.join(sink)
    return { flight, joined: running !== undefined }
  }

  /** Starts a background refresh (stale-while-revalidate) unless one is already running. */
  refresh(target: Target, stale: CacheEntry, upstream?: UpstreamRequest): void {
    const running = this.current(target.key)
    if (running && running.state !== 'done') return
    try {
      this.start(target, stale, upstream)
    } catch {
      // Overloaded: the stale copy is still served; a later request will refresh.
    }
  }

  /** Prefill's entry point: makes sure `target` is stored, through the same coalescing path (fill.ts). */
  fill(target: Target, opts: FillOptions = {}): Promise<FillResult> {
    const { store, clock } = this.options
    const running = (key: string) => this.inflight.has(key)
    return fillTarget({ store, clock, running, request: (t, s, o) => this.request(t, s, o) }, target, opts)
  }

  private start(
    target: Target,
    stale: CacheEntry | undefined,
    upstream?: UpstreamRequest,
    slice?: { start: number; end: number },
    alone = false,
  ): Flight {
    if (this.running >= this.options.maxInflight)
      throw new CdnError('CDN_ERR_OVERLOADED', 'too many upstream fetches in flight')
    const request = upstream ?? this.options.ownRequest ?? { headers: {}, authorized: false }
    // A private flight sits under a slot of its own (purge and tests still wait for it).
    const slot = request.authorized || alone ? `${target.key}\u0000${++this.privateSlots}` : target.key
    // The URL's key is the upstream request too: the canonical path and the query parameters kept.
    // A variant's key names its URL: the URL is what is asked for (variants.ts).
    const flight = new Flight(target.key, primaryOf(target.key), stale, request, slot)
    flight.slice = slice
    this.inflight.set(slot, flight)
    this.flying.add(flight)
    this.running++
    this.options.observer.fetchStarted()
    flight.done = runFlight(this.context, flight)
    flight.done
      .catch((err: unknown) => {
        if (flight.state === 'waiting' || flight.state === 'streaming')
          flight.fail(upstreamError(err, 'edge'))
      })
      .finally(() => {
        this.running--
        this.flying.delete(flight)
        this.unlist(flight)
        flight.settle()
      })
    return flight
  }

  /** A waiter of another variant than its flight's (variant-flights.ts) goes to its own fetch. */
  private move(from: Flight, sink: FlightSink, request: UpstreamRequest): void {
    try {
      const moved = this.request({ key: from.path, path: from.path }, sink, { upstream: request })
      sink.attach?.(moved.flight, moved.joined ? 'coalesced' : 'miss')
    } catch (err) {
      sink.error(err as CdnError, false, from)
    }
  }

  /** A waiter whose fetch's answer was another request's alone (flight-run.ts) fetches on its own. */
  private alone(from: Flight, sink: FlightSink, request: UpstreamRequest): void {
    try {
      // A revalidation's joiner revalidates too (its fetch asks with the same stale copy's validators).
      const own = this.request({ key: from.key, path: from.path }, sink, {
        upstream: request,
        alone: true,
        ...(from.stale ? { stale: from.stale } : {}),
        ...(from.slice ? { slice: from.slice } : {}),
      })
      sink.attach?.(own.flight, 'miss')
    } catch (err) {
      sink.error(err as CdnError, false, from)
    }
  }

  /** A fetch of `path` was answered: personal (`own`) marks the URL for a while, shareable forgets it. */
  private answered(path: string, own: boolean): void {
    const ttl = this.options.hitForMiss ?? 0
    if (own && ttl > 0) this.personalUntil.set(path, this.options.clock.now() + ttl)
    else if (!own) this.personalUntil.delete(path)
  }

  /** The URL of `key` (a variant's is its primary's) answered personally, not long ago. */
  private personalNow(key: string): boolean {
    if (this.personalUntil.size === 0) return false
    const path = primaryOf(key)
    const until = this.personalUntil.get(path)
    if (until === undefined) return false
    if (until > this.options.clock.now()) return true
    this.personalUntil.delete(path)
    return false
  }

  /** Takes a flight out of the table (its slot and its variant's key): nobody joins it any more. */
  private unlist(f: Flight): void {
    if (this.inflight.get(f.slot) === f) this.inflight.delete(f.slot)
    if (f.alias !== undefined && this.inflight.get(f.alias) === f) this.inflight.delete(f.alias)
  }
}

export type { Outcome }
