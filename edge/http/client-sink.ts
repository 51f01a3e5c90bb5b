/**
 * One client following a flight (edge/upstream/flight.ts): streams a miss to it as bytes
 * arrive from the upstream, whole, ranged, HEAD or 304, and hands it back to the content
 * handler's answers (answers.ts) to finish (outcome, error, or an entry answered from the cache).
 *
 * Memory: the bytes written are views of the flight's one body buffer (never copies), and the
 * sink pins that buffer's reservation in the in-flight budget until its response is over, so
 * a slow client holds at most the object, counted. On a stream too large to keep, the flight
 * reads `backlog()` to keep the client within a window (single-flight.ts, `pace`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type CdnError } from '../../src/errors.js'
import { decide, statusOf } from '../../src/http/respond.js'
import type { CacheEntry } from '../cache/entry.js'
import { currentAge } from '../cache/freshness.js'
import type { Outcome } from '../cache/outcome.js'
import type { ForwardFacts } from '../cache/cache-status.js'
import { type Told, writeEntryHead } from './responder.js'
import type { Answers } from './answers.js'
import type { Flight, FlightSink } from '../upstream/flight.js'

/** One client following a flight: streams the miss (whole, ranged, HEAD or 304) as bytes arrive. */
export class ClientSink implements FlightSink {
  private flight: Flight | undefined
  private range: { start: number; end: number } | undefined
  private bodyless = false
  private finished = false
  private sent = 0
  private status = 0
  private unpin: (() => void) | undefined

  constructor(
    private readonly handler: Answers,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private outcome: Outcome,
    private readonly started: number,
  ) {
    res.once('close', () => {
      if (!this.finished) this.flight?.leave(this)
      this.finished = true
      this.unpin?.()
    })
  }

  /** The flight this client follows; `outcome` when it was moved to it (single-flight.ts). */
  attach(flight: Flight, outcome?: Outcome): void {
    this.flight = flight
    if (outcome !== undefined) this.outcome = outcome
    if (this.finished) flight.leave(this)
  }

  headers(f: Flight): void {
    if (this.finished) return
    this.unpin = f.pin()
    const { entry, contentLength } = f.head!
    const d = decide(this.req.headers, entry.meta.status, contentLength, entry)
    const age = Math.floor(currentAge(entry.fresh, this.handler.clock.now()) / 1000)
    this.status = statusOf(d, entry.meta.status)
    const head = this.req.method === 'HEAD'
    const fwd = this.facts(f)
    const told: Told = { cs: this.handler.cacheStatus, fwd, ttl: fwd.stored, extra: this.withheld(f) }
    if (!writeEntryHead(this.res, entry, d, this.outcome, age, contentLength, head, told)) return this.close()
    if (d.kind === 'partial') this.range = d
    // Send the head now: node holds it back until the first body write otherwise, and a
    // joiner must see the upstream's headers the moment they arrive (the stampede's TTFB).
    this.res.flushHeaders()
  }

  /**
   * A 103 Early Hints from the upstream, passed on before the final answer (node writes it only
   * when it has a valid Link; an HTTP/1.0 client gets none, RFC 9110 §15.2).
   */
  hints(fields: Record<string, string | string[]>): void {
    if (this.finished || this.res.headersSent || this.req.httpVersion === '1.0') return
    try {
      this.res.writeEarlyHints(fields)
    } catch {
      // A Link node refuses to write: the hints are dropped, the answer is unaffected.
    }
  }

  /** The answer is complete without a body (HEAD, 304, 412, 416): leave the flight. */
  private close(): void {
    this.bodyless = true
    this.finished = true
    this.flight?.leave(this)
    this.handler.done(this.req, this.outcome, this.status, 0, this.started)
  }

  data(chunk: Buffer, offset: number): void {
    if (this.finished || this.bodyless) return
    if (this.range) {
      const from = Math.max(this.range.start, offset)
      const to = Math.min(this.range.end + 1, offset + chunk.length)
      if (to <= from) return
      const part = chunk.subarray(from - offset, to - offset)
      this.sent += part.length
      this.res.write(part)
      return
    }
    this.sent += chunk.length
    this.res.write(chunk)
  }

  backlog(): number {
    return this.res.writableLength
  }

  drained(): Promise<void> {
    return drained(this.res)
  }

  end(): void {
    if (this.finished) return
    this.finished = true
    this.res.end()
    this.handler.done(this.req, this.outcome, this.status, this.sent, this.started)
  }

  error(err: CdnError, _afterHeaders: boolean, flight?: Flight): void {
    if (this.finished) return
    this.finished = true
    const f = flight ?? this.flight
    this.handler.sendError(this.req, this.res, err, this.started, f && this.facts(f))
  }

  entry(e: CacheEntry, outcome: Outcome, flight: Flight): void {
    if (this.finished) return
    this.finished = true
    void this.handler.respondLoading(this.req, this.res, e, outcome, this.started, this.facts(flight))
  }

  /** The fields the stored entry leaves out that this client may see: a user's own only to the client whose request went upstream. */
  private withheld(f: Flight): string[] | undefined {
    const w = f.withheld
    if (!w) return undefined
    return this.outcome === 'miss' ? [...w.starter, ...w.all] : w.all
  }

  /** What the flight did upstream, as this client saw it (Cache-Status). */
  private facts(f: Flight): ForwardFacts {
    const fwd: ForwardFacts = { ...f.forwarded }
    if (this.outcome === 'coalesced') fwd.collapsed = true
    return fwd
  }
}

/** Resolves once `res` can take more (or is gone). */
export function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || !res.writableNeedDrain) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
