/**
 * One upstream fetch in progress and everyone waiting on it. The body is kept in ONE
 * preallocated Buffer when Content-Length is known (chunks otherwise): every sink that joins
 * late catches up from byte 0 in one write and then follows each chunk as it arrives (an
 * event per chunk, no polling). The same views go to the cache writer, so a coalesced miss
 * holds the object in memory once. That buffer is lent from the store's pool when the store
 * will not keep it (buffer-pool.ts), and given back once the fetch is over (`settle`) and
 * every client that pinned it has its answer: no megabyte of garbage per miss.
 */
import type { CdnError } from '../../src/errors.js'
import { withoutHopByHop } from '../../src/http/hop-by-hop.js'
import type { ForwardFacts } from '../cache/cache-status.js'
import type { CacheEntry } from '../cache/entry.js'
import type { Outcome } from '../cache/outcome.js'
import type { Hold } from '../inflight-budget.js'
import type { UpstreamRequest } from './forward.js'

/** A body buffer lent from a pool: `release` once nothing refers to it. */
export interface BodyLease {
  readonly buf: Buffer
  readonly release: () => void
}

export interface FlightSink {
  /** Response headers are known (`flight.head`); data follows. */
  headers(flight: Flight): void
  /** Bytes [offset, offset + chunk.length) of the body. */
  data(chunk: Buffer, offset: number): void
  end(): void
  /**
   * The fetch failed; `afterHeaders` means headers (and maybe bytes) were already delivered.
   * `flight`: the fetch it followed (what it did upstream: `forwarded`).
   */
  error(err: CdnError, afterHeaders: boolean, flight?: Flight): void
  /** The answer is a stored entry: refreshed by a 304, or served stale because the upstream failed. */
  entry(entry: CacheEntry, outcome: Outcome, flight: Flight): void
  /** A 103 Early Hints from the upstream, before its final answer: passed on, never stored. */
  hints?(headers: Record<string, string | string[]>): void
  /** Bytes written to the client and not yet taken by its socket (a client sink). */
  backlog?(): number
  /** Resolves once the backlog drained or the client is gone. */
  drained?(): Promise<void>
  /**
   * The sink was moved to another flight (its request selects another variant, or the answer was
   * another request's alone: single-flight.ts), which it joined (`coalesced`) or started (`miss`).
   */
  attach?(flight: Flight, outcome?: Outcome): void
}

/** 103 answers kept per fetch for clients joining before its final answer. */
const MAX_HINTS = 4

export type FlightState = 'waiting' | 'streaming' | 'done' | 'failed' | 'resolved'

export class Flight {
  state: FlightState = 'waiting'
  readonly sinks = new Set<FlightSink>()
  /** Upstream status and the entry whose header block describes the response being streamed. */
  head: { status: number; entry: CacheEntry; contentLength: number | undefined } | undefined
  private buf: Buffer | undefined
  /** Where `buf` came from when it was lent, and the clients holding it (see `pin`). */
  private lease: BodyLease | undefined
  private pins = 0
  private settled = false
  private chunks: Buffer[] = []
  /** True once the body is no longer kept (too large): late joiners cannot catch up. */
  unbuffered = false
  received = 0
  error: CdnError | undefined
  resolved: { entry: CacheEntry; outcome: Outcome } | undefined
  /** Set when the fetch was started for a prefill: the object goes to the protected share. */
  protect = false
  /**
   * A capped prefill's pace (single-flight.ts `fill`): told each chunk's length, the ms to hold
   * the body before the next. Dropped, and a held body resumed (`unthrottle`), when anyone
   * joins: a viewer is never paced.
   */
  throttle: ((bytes: number) => number) | undefined
  unthrottle: (() => void) | undefined
  /** Resolves once the cache write finished (entry stored, or undefined). */
  committed: Promise<CacheEntry | undefined> = Promise.resolve(undefined)
  /** Settles when the fetch and its cache write are over. */
  done: Promise<void> = Promise.resolve()
  /** The body's bytes reserved in the in-flight budget (single-flight.ts). */
  hold: Hold | undefined
  /** Called when the last sink leaves a stream nobody else can join (nothing left to serve). */
  onAbandon: (() => void) | undefined
  /**
   * What happened upstream, for Cache-Status (RFC 9211): why the request went forward, the
   * status the upstream answered (none when it did not), whether the answer is being stored.
   */
  readonly forwarded: ForwardFacts
  /**
   * Where the answer is stored: the URL's key (`path`), or its variant's when the answer's Vary
   * names request fields (`varyKey`, edge/cache/variants.ts); known once headers arrived.
   */
  storeKey: string
  varyKey: readonly string[] | undefined
  /** A second place in the single-flight's table: the variant's key, once known. */
  alias: string | undefined
  /**
   * Set when the fetch is one slice of an object (edge/cache/slices.ts): the bytes asked with
   * `Range`; a 206 for them is stored under the slice's key (`key`).
   */
  slice: { start: number; end: number } | undefined
  /** Its answer is its request's alone (flight-run.ts): it is never listed for others to join. */
  personal = false
  /** A purge of its title began while it ran: a stream stores no more slices (single-flight.ts). */
  purged = false
  /** The request of each sink that joined before headers came, to check its variant then. */
  readonly requests = new Map<FlightSink, UpstreamRequest>()

  constructor(
    readonly key: string,
    readonly path: string,
    readonly stale: CacheEntry | undefined,
    /** The request sent upstream: the first client's fields (coalesced clients share them). */
    readonly request: UpstreamRequest = { headers: {}, authorized: false },
    /** Where the flight sits in the single-flight's table: its key, or a slot of its own when private. */
    readonly slot: string = key,
  ) {
    this.forwarded = { fwd: stale ? 'stale' : 'uri-miss', stored: false }
    this.storeKey = path
  }

  /** Fields the stored entry leaves out (qualified private / no-cache) for this fetch's own clients. */
  withheld: { starter: string[]; all: string[] } | undefined

  /** The 103s received while waiting for the final answer, replayed to a client that joins then. */
  private hinted: Record<string, string | string[]>[] = []

  /**
   * An interim answer from the upstream: a 103 goes to every client waiting for this fetch's
   * final answer, and to those who join before it comes (at most MAX_HINTS of them are kept).
   */
  interim(status: number, headers: Record<string, string | string[]>): void {
    if (status !== 103 || this.state !== 'waiting' || this.hinted.length >= MAX_HINTS) return
    const fields = withoutHopByHop(headers) as Record<string, string | string[]>
    this.hinted.push(fields)
    for (const s of this.sinks) s.hints?.(fields)
  }

  /** Adds a sink and replays what it missed, synchronously, so no chunk can fall in between. */
  join(sink: FlightSink): void {
    switch (this.state) {
      case 'waiting':
        this.sinks.add(sink)
        for (const h of this.hinted) sink.hints?.(h)
        return
      case 'resolved':
        sink.entry(this.resolved!.entry, this.resolved!.outcome, this)
        return
      case 'failed':
        sink.error(this.error!, false, this)
        return
    }
    sink.headers(this)
    if (this.received > 0) {
      if (this.buf) sink.data(this.buf.subarray(0, this.received), 0)
      else {
        let off = 0
        for (const c of this.chunks) {
          sink.data(c, off)
          off += c.length
        }
      }
    }
    if (this.state === 'done') sink.end()
    else this.sinks.add(sink)
  }

  leave(sink: FlightSink): void {
    this.sinks.delete(sink)
    this.requests.delete(sink)
    if (this.unbuffered && this.sinks.size === 0 && this.state === 'streaming') this.onAbandon?.()
  }

  /** A client holds the body's bytes until its response is over: call the result then. */
  pin(): () => void {
    const unhold = this.hold?.retain() ?? noop
    this.pins++
    let pinned = true
    return () => {
      if (!pinned) return
      pinned = false
      this.pins--
      unhold()
      this.giveBack()
    }
  }

  /** The fetch and its cache write are over: the reservation and a lent buffer go back once no client holds them. */
  settle(): void {
    if (this.settled) return
    this.settled = true
    this.hold?.release()
    this.giveBack()
  }

  private giveBack(): void {
    if (!this.settled || this.pins > 0 || !this.lease) return
    const lease = this.lease
    this.lease = undefined
    this.buf = undefined
    lease.release()
  }

  /** Sinks with more than `window` bytes queued to their client. */
  behind(window: number): FlightSink[] {
    const out: FlightSink[] = []
    for (const s of this.sinks) if ((s.backlog?.() ?? 0) > window) out.push(s)
    return out
  }

  /** Can a new request still catch up from byte 0? */
  get joinable(): boolean {
    return !this.unbuffered && this.state !== 'failed'
  }

  /** `lend`: a buffer for the body from a pool, when there is one for this length. */
  startBody(
    contentLength: number | undefined,
    keepLimit: number,
    lend?: (length: number) => BodyLease | undefined,
  ): void {
    this.hinted = []
    if (contentLength !== undefined && contentLength <= keepLimit) {
      this.lease = contentLength > 0 ? lend?.(contentLength) : undefined
      this.buf = this.lease?.buf ?? Buffer.allocUnsafeSlow(contentLength)
    } else if (contentLength !== undefined) this.unbuffered = true
    this.state = 'streaming'
    for (const s of this.sinks) s.headers(this)
  }

  /** Stores and forwards one upstream chunk; returns the view handed out, or undefined on overflow. */
  push(chunk: Buffer, keepLimit: number): Buffer | undefined {
    const offset = this.received
    let view: Buffer
    if (this.buf) {
      if (offset + chunk.length > this.buf.length) return undefined
      chunk.copy(this.buf, offset)
      view = this.buf.subarray(offset, offset + chunk.length)
    } else {
      view = chunk
      if (!this.unbuffered) {
        if (offset + chunk.length > keepLimit) {
          this.unbuffered = true
          this.chunks = []
        } else this.chunks.push(chunk)
      }
    }
    this.received += chunk.length
    for (const s of this.sinks) s.data(view, offset)
    return view
  }

  /** The whole body (only when it was kept). */
  body(): Buffer | undefined {
    if (this.buf) return this.buf
    if (this.unbuffered) return undefined
    return Buffer.concat(this.chunks, this.received)
  }

  finish(): void {
    this.state = 'done'
    for (const s of this.sinks) s.end()
    this.sinks.clear()
    this.requests.clear()
  }

  fail(err: CdnError): void {
    const afterHeaders = this.state === 'streaming'
    this.state = 'failed'
    this.error = err
    this.buf = undefined
    this.chunks = []
    for (const s of this.sinks) s.error(err, afterHeaders, this)
    this.sinks.clear()
    this.requests.clear()
  }

  resolve(entry: CacheEntry, outcome: Outcome): void {
    this.state = 'resolved'
    this.resolved = { entry, outcome }
    for (const s of this.sinks) s.entry(entry, outcome, this)
    this.sinks.clear()
    this.requests.clear()
  }
}

function noop(): void {}
