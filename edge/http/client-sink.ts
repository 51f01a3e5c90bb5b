/**
 * One client following a flight (edge/upstream/flight.ts): streams a miss to it as bytes
 * arrive from the upstream, whole, ranged, HEAD or 304, and hands it back to the content
 * handler to finish (outcome, error, or an entry answered from the cache).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type CdnError } from '../../src/errors.js'
import { ifRangeMatches, notModified } from '../../src/http/conditional.js'
import { contentRange, parseRange } from '../../src/http/ranges.js'
import { type CacheEntry, variantHeaders } from '../cache/entry.js'
import { currentAge } from '../cache/freshness.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'
import type { ContentHandler } from './serve.js'
import type { Flight, FlightSink } from '../upstream/flight.js'

/** One client following a flight: streams the miss (whole, ranged, HEAD or 304) as bytes arrive. */
export class ClientSink implements FlightSink {
  private flight: Flight | undefined
  private range: { start: number; end: number } | undefined
  private bodyless = false
  private finished = false
  private sent = 0
  private status = 0

  constructor(
    private readonly h: ContentHandler,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly outcome: Outcome,
    private readonly started: number,
  ) {
    res.once('close', () => {
      if (!this.finished) this.flight?.leave(this)
      this.finished = true
    })
  }

  attach(flight: Flight): void {
    this.flight = flight
    if (this.finished) flight.leave(this)
  }

  headers(f: Flight): void {
    if (this.finished) return
    const { status, entry, contentLength } = f.head!
    const now = this.h.clock.now()
    const age = String(Math.floor(currentAge(entry.fresh, now) / 1000))
    const xc = X_CACHE[this.outcome]
    const req = this.req
    this.res.sendDate = false
    this.status = status
    if (
      status === 200 &&
      (req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined)
    ) {
      if (notModified(req.headers, entry.etag, entry.lastModified)) {
        this.status = 304
        this.res.writeHead(304, variantHeaders(entry, ['age', age, 'x-cache', xc]))
        this.close()
        return
      }
    }
    const extra = ['age', age, 'x-cache', xc]
    if (
      status === 200 &&
      contentLength !== undefined &&
      req.headers.range !== undefined &&
      ifRangeMatches(req.headers['if-range'] as string | undefined, entry.etag, entry.lastModified)
    ) {
      const r = parseRange(req.headers.range, contentLength)
      if (r.kind === 'ok') {
        this.range = r
        this.status = 206
        extra.push(
          'content-range',
          contentRange(r.start, r.end, contentLength),
          'content-length',
          String(r.end - r.start + 1),
        )
        this.res.writeHead(206, variantHeaders(entry, extra))
      } else if (r.kind === 'unsatisfiable') {
        this.status = 416
        this.res.writeHead(416, [
          'content-range',
          `bytes */${contentLength}`,
          'content-length',
          '0',
          'x-cache',
          xc,
        ])
        this.close()
        return
      }
    }
    if (this.status !== 206) {
      if (contentLength !== undefined) extra.push('content-length', String(contentLength))
      this.res.writeHead(status, variantHeaders(entry, extra))
    }
    if (req.method === 'HEAD' || status === 204 || status === 304) {
      this.close()
      return
    }
    // Send the head now: node holds it back until the first body write otherwise, and a
    // joiner must see the upstream's headers the moment they arrive (the stampede's TTFB).
    this.res.flushHeaders()
  }

  private close(): void {
    this.bodyless = true
    this.finished = true
    this.flight?.leave(this)
    this.res.end()
    this.h.done(this.req, this.outcome, this.status, 0, this.started)
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

  end(): void {
    if (this.finished) return
    this.finished = true
    this.res.end()
    this.h.done(this.req, this.outcome, this.status, this.sent, this.started)
  }

  error(err: CdnError): void {
    if (this.finished) return
    this.finished = true
    this.h.sendError(this.req, this.res, err, this.started)
  }

  entry(e: CacheEntry, outcome: Outcome): void {
    if (this.finished) return
    this.finished = true
    void this.h.respondLoading(this.req, this.res, e, outcome, this.started)
  }
}
