/**
 * How the content handler (serve.ts) and the client sinks (client-sink.ts) finish a request:
 * an answer written from a stored entry (whole, ranged, HEAD, 304...; a large disk body in
 * chunks), or an error, and the request's one outcome recorded once (stats, access log). What
 * to answer is decided by src/http/respond.ts and written by responder.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Clock } from '../../src/clock.js'
import { CdnError, errorBody } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { decide, statusOf } from '../../src/http/respond.js'
import type { CacheStatus, ForwardFacts } from '../cache/cache-status.js'
import { formFor } from '../cache/compress.js'
import type { CacheEntry } from '../cache/entry.js'
import { currentAge } from '../cache/freshness.js'
import { edgeParamsOf } from '../cache/key.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'
import type { BodyStream, CacheStore } from '../cache/store.js'
import type { MissCause } from '../miss/ledger.js'
import type { EdgeStats } from '../stats.js'
import { pumpBody } from './pump-body.js'
import { cacheStatusOf, errorHeaders, type Told, writeEntryHead } from './responder.js'

export interface AccessLog {
  info(obj: Record<string, unknown>, msg: string): void
}

export interface AnswersDeps {
  store: CacheStore
  clock: Clock
  stats: EdgeStats
  accessLog: AccessLog | undefined
  /** Where 5xx details go (upstream addresses, causes): never into the response body. */
  log?: { warn(obj: Record<string, unknown>, msg: string): void }
  /** This edge's Cache-Status member (none on a cluster primary: its workers add theirs). */
  cacheStatus: CacheStatus | undefined
}

/**
 * Bytes of each chunk of a body sent in chunks (sendStream), and of the one buffer a streamed
 * response borrows for them (pump-body.ts). A megabyte: a 4 MB hit takes 5 reads on the threadpool
 * and 5 socket writes instead of 17 of each at 256 KiB (each a round trip to a worker thread and
 * its callback), for one megabyte per streamed response in flight (reserved in the in-flight budget).
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024

export class Answers {
  /** The cause of each request that went upstream, for its access-log line. */
  readonly causes = new WeakMap<IncomingMessage, MissCause>()

  constructor(private readonly deps: AnswersDeps) {}

  /**
   * Answers from a stored entry with its body: 200, 206, 304, 412 or 416; HEAD sends headers
   * only. `fwd`: the request went upstream first (revalidated, or stale because it failed).
   */
  respond(
    req: IncomingMessage,
    res: ServerResponse,
    entry: CacheEntry,
    outcome: Outcome,
    now: number,
    started?: number,
    fwd?: ForwardFacts,
  ): void {
    // A playlist's encoded form, when the client accepts one and asks no range (cache/compress.ts).
    entry = formFor(entry, req.headers['accept-encoding'], req.headers.range)
    const body = entry.body!
    const d = decide(req.headers, entry.meta.status, body.length, entry)
    const head = req.method === 'HEAD'
    const age = Math.floor(currentAge(entry.fresh, now) / 1000)
    let bytes = 0
    const told: Told = { cs: this.deps.cacheStatus, fwd, ttl: true }
    if (writeEntryHead(res, entry, d, outcome, age, body.length, head, told)) {
      if (d.kind === 'partial') {
        bytes = d.end - d.start + 1
        res.end(body.subarray(d.start, d.end + 1))
      } else {
        bytes = body.length
        res.end(body)
      }
    }
    this.done(req, outcome, statusOf(d, entry.meta.status), bytes, started)
  }

  /**
   * A large disk hit sent in chunks of STREAM_CHUNK_BYTES read into one pooled buffer, the next
   * chunk read once the socket took the last (pump-body.ts): memory per response stays bounded whatever the
   * object's size, where reading it whole needs the whole object per response in flight. A
   * read failing half-way ends the response early (its Content-Length tells the client).
   */
  sendStream(req: IncomingMessage, res: ServerResponse, s: BodyStream, now: number, started: number): void {
    const entry = s.entry
    const d = decide(req.headers, entry.meta.status, s.length, entry)
    const age = Math.floor(currentAge(entry.fresh, now) / 1000)
    const told: Told = { cs: this.deps.cacheStatus }
    const body = writeEntryHead(res, entry, d, 'hit-disk', age, s.length, req.method === 'HEAD', told)
    this.done(req, 'hit-disk', statusOf(d, entry.meta.status), body ? s.length : 0, started)
    if (!body) return s.close()
    pumpBody(res, s, STREAM_CHUNK_BYTES)
  }

  /** Stored entry without its body (disk-only, after a 304): read it, then respond. */
  async respondLoading(
    req: IncomingMessage,
    res: ServerResponse,
    entry: CacheEntry,
    outcome: Outcome,
    started: number,
    fwd: ForwardFacts,
  ): Promise<void> {
    if (entry.body) return this.respond(req, res, entry, outcome, this.deps.clock.now(), started, fwd)
    const got = await this.deps.store.get(entry.meta.key)
    if (!got)
      return this.sendError(
        req,
        res,
        new CdnError('CDN_ERR_UPSTREAM', 'cached object vanished; retry'),
        started,
        fwd,
      )
    this.respond(req, res, { ...got.entry, fresh: entry.fresh }, outcome, this.deps.clock.now(), started, fwd)
  }

  done(
    req: IncomingMessage,
    outcome: Outcome,
    status: number,
    bytes: number,
    started: number | undefined,
  ): void {
    this.deps.stats.record(outcome, bytes)
    if (this.deps.accessLog)
      this.deps.accessLog.info(
        {
          method: req.method,
          url: req.url,
          ...edgeParamsOf(req.url ?? ''),
          status,
          cache: X_CACHE[outcome],
          miss: this.causes.get(req),
          bytes,
          ms:
            started === undefined ? undefined : Math.round((this.deps.clock.monotonic() - started) * 10) / 10,
        },
        'access',
      )
  }

  /** `fwd`: the request went upstream (its Cache-Status says what came back). */
  sendError(
    req: IncomingMessage,
    res: ServerResponse,
    err: unknown,
    started: number,
    fwd?: ForwardFacts,
  ): void {
    let status: number
    if (res.headersSent) {
      status = errorBody(err).status
      res.destroy()
    } else {
      const cacheStatus = fwd ? cacheStatusOf(undefined, 0, { cs: this.deps.cacheStatus, fwd }) : undefined
      status = sendJsonError(res, err, errorHeaders('error', cacheStatus), req.method === 'HEAD')
    }
    // A 504 for only-if-cached is the client's answer, not a failure worth a log line.
    if (status >= 500 && (err as Partial<CdnError>).code !== 'CDN_ERR_NOT_CACHED') this.logError(err, status)
    this.done(req, 'error', status, 0, started)
  }

  /** Server errors logged at most once a second (a dead upstream fails every request), with a count of the rest. */
  private errorLoggedAt = -Infinity
  private errorsUnlogged = 0

  private logError(err: unknown, status: number): void {
    const now = this.deps.clock.monotonic()
    if (now - this.errorLoggedAt < 1000) {
      this.errorsUnlogged++
      return
    }
    const e = err as Partial<CdnError> & { cause?: unknown }
    this.deps.log?.warn(
      { status, code: e.code, ...e.internal, cause: e.cause, unlogged: this.errorsUnlogged },
      'request failed',
    )
    this.errorLoggedAt = now
    this.errorsUnlogged = 0
  }

  get clock(): Clock {
    return this.deps.clock
  }

  /** This edge's Cache-Status member (client sinks write it). */
  get cacheStatus(): CacheStatus | undefined {
    return this.deps.cacheStatus
  }
}
