/**
 * The ONE place misses coalesce. The first request for a key starts the upstream fetch;
 * every request for that key until the cache write is committed joins the same Flight and
 * gets the same bytes as they arrive. A client leaving never aborts the fetch. Revalidation
 * of stale entries, background refreshes (stale-while-revalidate) and prefill's `fill()`
 * all go through here, so a viewer and a prefill never fetch one object twice.
 *
 * Nothing is cached unless the whole body arrived with the announced length; a truncated
 * body fails every sink (those past headers get their connection destroyed) and the next
 * request refetches. The flight is removed from the table in `finally`.
 */
import { crc32 } from 'node:zlib'
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import {
  type CacheEntry,
  type EntryOptions,
  makeEntry,
  metaFromUpstream,
  withheldFields,
  refreshedMeta,
} from '../cache/entry.js'
import { ERROR_STATUSES, freshState, storability, usableOnError } from '../cache/freshness.js'
import type { Outcome } from '../cache/outcome.js'
import type { CacheStore, CacheWriter } from '../cache/store.js'
import { primaryOf } from '../cache/variants.js'
import { CLIENT_WINDOW_BYTES, type Hold, type InflightBudget } from '../inflight-budget.js'
import { type Upstream, upstreamError } from './client.js'
import { Flight, type FlightSink } from './flight.js'
import type { UpstreamRequest } from './forward.js'
import { findFlight, keyVariant } from './variant-flights.js'

export interface FlightObserver {
  fetchStarted(): void
  fetchFinished(seconds: number, result: 'ok' | 'not-modified' | 'error' | 'truncated'): void
  coalesced(): void
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
}

export interface Target {
  key: string
  path: string
}

export interface FillResult {
  key: string
  /** Already held and fresh, fetched by this call, or joined a fetch already running. */
  how: 'held' | 'fetched' | 'joined'
  status: number
  bytes: number
  stored: boolean
}

export class SingleFlight {
  /** Flights by key; a private flight (a client's credentials) under a slot nobody looks up. */
  private readonly inflight = new Map<string, Flight>()
  private privateSlots = 0

  private readonly entryOptions: EntryOptions

  constructor(private readonly options: SingleFlightOptions) {
    this.entryOptions = { heuristicMaxMs: options.heuristicMax, compress: options.compress ?? false }
  }

  get size(): number {
    return this.inflight.size
  }

  /** Resolves once every fetch running for a title has committed (or failed): purge waits on it. */
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
    opts: { stale?: CacheEntry; protect?: boolean; upstream?: UpstreamRequest; byRequest?: boolean } = {},
  ): { flight: Flight; joined: boolean } {
    const found = this.find(target.key, opts.upstream)
    let running = found.flight
    if (found.key !== target.key) target = { key: found.key, path: target.path }
    // A finished flight only bridges the gap until its commit lands; a request that already
    // holds a stale copy wants a newer answer than that, so it starts its own fetch.
    if (running?.state === 'done' && opts.stale) running = undefined
    const flight = running ?? this.start(target, opts.stale, opts.upstream)
    if (!running && opts.byRequest) flight.forwarded.fwd = 'request'
    if (opts.protect) flight.protect = true
    if (running) this.options.observer.coalesced()
    if (flight.state === 'waiting') {
      this.armWaiterTimeout(flight, sink)
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

  /**
   * Prefill's entry point: makes sure `target` is stored, through the same coalescing path.
   * Resolves when the object is committed (or refused), never rejects for upstream errors
   * before headers: those reject with the CdnError.
   */
  async fill(target: Target, opts: { protect?: boolean } = {}): Promise<FillResult> {
    // Held and fresh: nothing to fetch. A stale copy (a short-lived master) is fetched again.
    const entry = this.options.store.lookup?.(target.key)
    const held = entry
      ? freshState(entry.fresh, this.options.clock.now()) === 'fresh'
      : this.options.store.has(target.key)
    if (held && !this.inflight.has(target.key))
      return {
        key: target.key,
        how: 'held',
        status: entry?.meta.status ?? 200,
        bytes: entry?.meta.bodyLength ?? 0,
        stored: true,
      }
    return new Promise<FillResult>((resolve, reject) => {
      let joined = false
      let flight: Flight | undefined
      let status = 0
      const sink: FlightSink = {
        headers: (f) => {
          flight = f
          status = f.head!.status
        },
        data: () => undefined,
        end: () => {
          const f = flight!
          f.committed.then(
            (e) =>
              resolve({
                key: target.key,
                how: joined ? 'joined' : 'fetched',
                status,
                bytes: f.received,
                stored: !!e,
              }),
            reject,
          )
        },
        error: (err) => reject(err),
        entry: (e) =>
          resolve({
            key: target.key,
            how: 'joined',
            status: e.meta.status,
            bytes: e.meta.bodyLength,
            stored: true,
          }),
      }
      joined = this.request(target, sink, { protect: opts.protect ?? false }).joined
    })
  }

  private armWaiterTimeout(flight: Flight, sink: FlightSink): void {
    const timer = setTimeout(() => {
      if (flight.state !== 'waiting' || !flight.sinks.has(sink)) return
      flight.leave(sink)
      sink.error(
        new CdnError('CDN_ERR_UPSTREAM_TIMEOUT', 'timed out waiting for the upstream'),
        false,
        flight,
      )
    }, this.options.waiterTimeout)
    timer.unref()
    const wrapped = sink.headers.bind(sink)
    sink.headers = (f) => {
      clearTimeout(timer)
      wrapped(f)
    }
    const wrappedErr = sink.error.bind(sink)
    sink.error = (e, a, f) => {
      clearTimeout(timer)
      wrappedErr(e, a, f)
    }
    const wrappedEntry = sink.entry.bind(sink)
    sink.entry = (e, o, f) => {
      clearTimeout(timer)
      wrappedEntry(e, o, f)
    }
  }

  private start(target: Target, stale: CacheEntry | undefined, upstream?: UpstreamRequest): Flight {
    if (this.inflight.size >= this.options.maxInflight)
      throw new CdnError('CDN_ERR_OVERLOADED', 'too many upstream fetches in flight')
    const request = upstream ?? this.options.ownRequest ?? { headers: {}, authorized: false }
    // A private flight sits under a slot of its own (purge and tests still wait for it).
    const slot = request.authorized ? `${target.key}\u0000${++this.privateSlots}` : target.key
    // The URL's key is the upstream request too: the canonical path and the query parameters kept.
    // A variant's key names its URL: the URL is what is asked for (variants.ts).
    const flight = new Flight(target.key, primaryOf(target.key), stale, request, slot)
    this.inflight.set(slot, flight)
    this.options.observer.fetchStarted()
    flight.done = this.run(flight)
    flight.done
      .catch((err: unknown) => {
        if (flight.state === 'waiting' || flight.state === 'streaming')
          flight.fail(upstreamError(err, 'edge'))
      })
      .finally(() => {
        this.unlist(flight)
        flight.settle()
      })
    return flight
  }

  private async run(f: Flight): Promise<void> {
    const { clock, upstream, store, observer } = this.options
    const startedMono = clock.monotonic()
    const requestTime = clock.now()
    const conditional: Record<string, string> = {}
    if (f.stale?.etag) conditional['if-none-match'] = f.stale.etag
    if (f.stale?.lastModified) conditional['if-modified-since'] = f.stale.lastModified
    const elapsed = () => (clock.monotonic() - startedMono) / 1000

    let res: Awaited<ReturnType<Upstream['fetch']>>
    try {
      res = await upstream.fetch(f.path, { ...f.request.headers, ...conditional }, 'GET', (status, h) =>
        f.interim(status, h),
      )
    } catch (err) {
      observer.fetchFinished(elapsed(), 'error')
      return this.failOrStale(f, upstreamError(err, 'upstream'))
    }
    const responseTime = clock.now()
    f.forwarded.status = res.status

    if (f.stale && res.status === 304) {
      res.body.resume()
      observer.fetchFinished(elapsed(), 'not-modified')
      const meta = refreshedMeta(f.stale.meta, res.headers, requestTime, responseTime)
      const stored = await store.updateMeta(f.stale.meta.key, meta)
      f.forwarded.stored = stored !== undefined
      const entry = stored ?? makeEntry(meta, f.stale.body, this.entryOptions)
      f.committed = Promise.resolve(stored)
      return f.resolve(
        stored?.body || !f.stale.body ? entry : { ...entry, body: f.stale.body },
        'revalidated',
      )
    }
    if (f.stale && res.status >= 500 && usableOnError(f.stale.fresh, responseTime)) {
      res.body.resume()
      observer.fetchFinished(elapsed(), 'error')
      return f.resolve(f.stale, 'stale')
    }

    const meta = metaFromUpstream(f.path, res.status, res.headers, requestTime, responseTime)
    f.withheld = withheldFields(res.headers)
    keyVariant(f, meta, this.inflight, (sink, request) => this.move(f, sink, request))
    const floor = this.ttlFloor(res.status)
    if (floor > 0) meta.minTtlMs = floor
    const clHeader = res.headers['content-length']
    const cl = typeof clHeader === 'string' && /^\d{1,15}$/.test(clHeader) ? Number(clHeader) : undefined
    const keepLimit = this.options.maxObjectSize
    let hold: Hold
    try {
      hold = await this.reserve(f, cl, keepLimit)
    } catch (err) {
      res.body.destroy()
      observer.fetchFinished(elapsed(), 'error')
      return f.fail(err as CdnError)
    }
    f.hold = hold
    const storable =
      storability(res.status, { ...meta.headers }, floor > 0, f.request).ok &&
      (cl === undefined || cl <= keepLimit)
    const writer: CacheWriter | undefined = storable
      ? store.createWriter({ ...meta, bodyLength: cl ?? 0, ...(f.protect ? { protected: true } : {}) })
      : undefined
    f.forwarded.stored = writer !== undefined
    f.head = {
      status: res.status,
      entry: makeEntry({ ...meta, bodyLength: cl ?? 0 }, undefined, this.entryOptions),
      contentLength: cl,
    }
    // A body the store keeps (the memory tier holds the views it is written) is allocated for
    // it; one it copies (to disk) or does not store is lent from the pool and given back.
    f.startBody(cl, keepLimit, (n) => store.lendBody?.(n))
    // Too large to keep for late joiners: they start their own fetch.
    if (f.unbuffered) this.unlist(f)

    let crc = 0
    let dropped = false
    await new Promise<void>((resolve) => {
      const body = res.body
      f.onAbandon = () =>
        body.destroy(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'every client left an uncached stream'))
      body.on('data', (chunk: Buffer) => {
        if (f.state !== 'streaming') return
        // A body without Content-Length is reserved as it arrives, while it is kept.
        if (cl === undefined && !f.unbuffered) hold.grow(chunk.length)
        const view = f.push(chunk, keepLimit)
        if (!view) {
          body.destroy(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream sent more than Content-Length'))
          return
        }
        if (!writer) return
        if (f.unbuffered && !dropped) {
          dropped = true
          writer.abort()
          this.unlist(f)
        }
        if (!dropped) {
          crc = crc32(view, crc)
          writer.write(view)
        }
      })
      body.on('data', () => {
        if (f.unbuffered && f.state === 'streaming') this.pace(f, body)
      })
      body.on('error', (err: Error) => {
        writer?.abort()
        observer.fetchFinished(elapsed(), 'truncated')
        const e =
          err instanceof CdnError
            ? err
            : new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream body ended early', { cause: err })
        f.fail(e)
        resolve()
      })
      body.on('end', () => {
        if (cl !== undefined && f.received !== cl) {
          writer?.abort()
          observer.fetchFinished(elapsed(), 'truncated')
          f.fail(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream body shorter than Content-Length'))
          return resolve()
        }
        observer.fetchFinished(elapsed(), 'ok')
        f.committed =
          writer && !dropped
            ? writer.commit({ bodyLength: f.received, crc32: crc })
            : Promise.resolve(undefined)
        const told = this.options.stored
        if (told)
          f.committed.then(
            (e) => e && told(e.meta.key),
            () => undefined,
          )
        f.finish()
        // Keep the flight joinable (from its buffer) until the entry is visible in the store.
        f.committed.then(
          () => resolve(),
          () => resolve(),
        )
      })
    })
  }

  /**
   * A body kept whole (Content-Length up to the keep limit) reserves its length: clients share
   * that one buffer, however slow. A stream too large to keep reserves one client window per
   * client, and `pace` keeps each client within it. Without Content-Length: grown per chunk.
   */
  private reserve(f: Flight, cl: number | undefined, keepLimit: number): Promise<Hold> {
    const n = cl === undefined ? 0 : cl <= keepLimit ? cl : CLIENT_WINDOW_BYTES * Math.max(1, f.sinks.size)
    return this.options.budget.acquire(n, this.options.waiterTimeout)
  }

  /**
   * A stream not kept whole cannot let a client fall behind: nothing holds the bytes it missed
   * and the upstream goes on. A client more than a window behind while another keeps up is
   * dropped (logged); when every client is behind, the upstream is paused until one drains
   * (the next chunk then drops those still behind).
   */
  private pace(f: Flight, body: NodeJS.ReadableStream): void {
    const slow = f.behind(CLIENT_WINDOW_BYTES)
    if (slow.length === 0) return
    if (slow.length < f.sinks.size) {
      for (const s of slow) {
        f.leave(s)
        this.options.budget.dropped()
        this.options.log?.warn(
          { reason: 'client a window behind a shared uncached stream', windowBytes: CLIENT_WINDOW_BYTES },
          'slow client dropped',
        )
        s.error(new CdnError('CDN_ERR_OVERLOADED', 'client too slow for a shared stream'), true, f)
      }
      return
    }
    if (body.isPaused()) return
    body.pause()
    this.options.budget.stalled()
    void Promise.race(slow.map((s) => s.drained?.())).then(() => body.resume())
  }

  /** A waiter of another variant than its flight's (variant-flights.ts) goes to its own fetch. */
  private move(from: Flight, sink: FlightSink, request: UpstreamRequest): void {
    try {
      const moved = this.request({ key: from.path, path: from.path }, sink, { upstream: request })
      sink.attach?.(moved.flight)
    } catch (err) {
      sink.error(err as CdnError, false, from)
    }
  }

  /** Takes a flight out of the table (its slot and its variant's key): nobody joins it any more. */
  private unlist(f: Flight): void {
    if (this.inflight.get(f.slot) === f) this.inflight.delete(f.slot)
    if (f.alias !== undefined && this.inflight.get(f.alias) === f) this.inflight.delete(f.alias)
  }

  /** The operator's floor on this status's freshness (negative and error caching). */
  private ttlFloor(status: number): number {
    if (status === 404 || status === 410) return this.options.notFoundTtl ?? 0
    if (ERROR_STATUSES.has(status)) return this.options.errorTtl ?? 0
    return 0
  }

  private failOrStale(f: Flight, err: CdnError): void {
    if (f.stale && usableOnError(f.stale.fresh, this.options.clock.now())) {
      f.resolve(f.stale, 'stale')
      return
    }
    f.fail(err)
  }
}

export type { Outcome }
