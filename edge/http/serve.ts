/**
 * Answers content requests (GET/HEAD of anything the upstream serves) on raw node
 * req/res, so the same code serves the fast path in front of fastify and the fastify
 * wildcard route behind it. Lookup: memory, disk, then the single-flight. Every request
 * ends with exactly one Outcome, recorded once (header, stats, access log).
 *
 * `fastHit` is synchronous and answers what needs no I/O: a fresh memory entry. It does no
 * per-request header work but Age/X-Cache (entry.ts memoises the header array per second).
 * A key held on disk goes from there straight to `serve` (no fastify routing); a disk body
 * that memory will not take is lent from the disk tier's buffer pool for one response. What to
 * answer (200/206/304/412/416) is decided by src/http/respond.ts and written by responder.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Clock } from '../../src/clock.js'
import { CdnError, errorBody } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { decide, plainRequest, statusOf } from '../../src/http/respond.js'
import type { CacheStatus, ForwardFacts } from '../cache/cache-status.js'
import { formFor } from '../cache/compress.js'
import { type CacheEntry, rawHitHead } from '../cache/entry.js'
import { currentAge, freshState } from '../cache/freshness.js'
import { type CacheTarget, cacheTarget, edgeParamsOf, type KeyOptions, validHost } from '../cache/key.js'
import {
  type ClientFreshness,
  NO_DIRECTIVES,
  type RequestDirectives,
  requestDirectives,
  reuseOf,
} from '../cache/request-directives.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'
import type { BodyStream, CacheStore } from '../cache/store.js'
import type { Hold, InflightBudget } from '../inflight-budget.js'
import type { MissCause, MissLedger } from '../miss/ledger.js'
import type { Prefetcher } from '../prefetch/prefetcher.js'
import type { EdgeStats } from '../stats.js'
import type { ForwardPolicy } from '../upstream/forward.js'
import type { SingleFlight } from '../upstream/single-flight.js'
import { ClientSink } from './client-sink.js'
import { pumpBody } from './pump-body.js'
import { cacheStatusOf, errorHeaders, type Told, writeEntryHead } from './responder.js'

export interface AccessLog {
  info(obj: Record<string, unknown>, msg: string): void
}

export interface ServeDeps {
  store: CacheStore
  flights: SingleFlight
  clock: Clock
  stats: EdgeStats
  keyOptions: KeyOptions
  /** Paths the node answers itself (never looked up in the cache). */
  ownPath: (url: string) => boolean
  accessLog: AccessLog | undefined
  /** Where 5xx details go (upstream addresses, causes): never into the response body. */
  log?: { warn(obj: Record<string, unknown>, msg: string): void }
  /** Called once per validated content request for a title (prefill's popularity counter). */
  countTitle?: (title: string) => void
  /** Where each miss gets its cause, and steered requests are counted (edge/miss). */
  misses?: MissLedger
  /** Told of every content request: CMCD next-segment prefetch (edge/prefetch). */
  prefetch?: Prefetcher
  /** Bytes in flight: a disk body is reserved before it is read (waiting up to `budgetWait` ms). */
  budget: InflightBudget
  budgetWait: number
  /** What goes upstream of a client's request (forward.ts). */
  forward: ForwardPolicy
  /** This edge's Cache-Status member (none on a cluster primary: its workers add theirs). */
  cacheStatus: CacheStatus | undefined
  /** Whether a client's no-cache/max-age/min-fresh may send a fresh copy's request upstream. */
  clientFreshness?: ClientFreshness
}

const TARGET_MEMO_MAX = 10_000
/** Disk hits at least this large are sent in chunks (sendStream) rather than read whole. */
const STREAM_MIN_BYTES = 2 * 1024 * 1024
const STREAM_CHUNK_BYTES = 256 * 1024

export class ContentHandler {
  /** url → target, for the fast path; only without signing keys (tokens expire). */
  private readonly memo = new Map<string, CacheTarget>()
  /** The cause of each request that went upstream, for its access-log line. */
  private readonly causes = new WeakMap<IncomingMessage, MissCause>()

  constructor(private readonly deps: ServeDeps) {}

  /** `client`: the peer's address, for network-bound tokens (none on the raw path: such a token is not a raw hit). */
  private target(url: string, nowMs: number, client?: string): CacheTarget {
    if (this.deps.keyOptions.signingKeys !== undefined)
      return cacheTarget(url, this.deps.keyOptions, Math.floor(nowMs / 1000), client)
    let t = this.memo.get(url)
    if (t === undefined) {
      t = cacheTarget(url, this.deps.keyOptions, Math.floor(nowMs / 1000))
      if (this.memo.size >= TARGET_MEMO_MAX) this.memo.clear()
      this.memo.set(url, t)
    }
    return t
  }

  /** Host header last found valid: players send the same one on every request. */
  private lastHost: string | undefined

  private hostOk(host: string | undefined): boolean {
    if (host === this.lastHost) return true
    if (!validHost(host)) return false
    this.lastHost = host
    return true
  }

  /** The target of a content request for the hit paths; undefined for own paths and bad targets (the full path answers those). */
  private hitTarget(url: string, nowMs: number, client?: string): CacheTarget | undefined {
    // A memoised target was checked once already (own paths never reach the memo).
    const memoised = this.deps.keyOptions.signingKeys === undefined ? this.memo.get(url) : undefined
    if (memoised !== undefined) return memoised
    if (this.deps.ownPath(url)) return undefined
    try {
      return this.target(url, nowMs, client)
    } catch {
      return undefined
    }
  }

  /** Answers a fresh memory hit synchronously; false means "not mine, pass it on". */
  fastHit(req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const now = this.deps.clock.now()
    const target = this.hitTarget(req.url!, now, req.socket.remoteAddress)
    if (target === undefined) return false
    const key = target.key
    const entry = this.deps.store.getInMemory(key)
    if (entry === undefined) {
      // Held on disk, or as variants: straight to serve(), without fastify's routing and request objects.
      const store = this.deps.store
      if (!(store.has(key) || (store.variantOf && store.variantOf(key, req.headers) !== key))) return false
      if (!this.hostOk(req.headers.host)) return false
      void this.serve(req, res)
      return true
    }
    if (!this.hostOk(req.headers.host) || this.reuse(req, entry, now) !== 'fresh') return false
    if (target.title !== undefined) this.deps.countTitle?.(target.title)
    this.observe(target, req.headers)
    this.respond(req, res, entry, 'hit-mem', now)
    return true
  }

  /**
   * The raw hit path's question (raw-hits.ts): the bytes of a fresh memory hit for a plain
   * GET/HEAD (no conditionals, no range), counted like `fastHit` counts it; undefined means
   * "not a raw hit, let node's http have the request". `suffix` ends the head (connection headers).
   */
  rawHit(
    head: boolean,
    url: string,
    host: string,
    suffix: string,
    acceptEncoding?: string,
  ): Buffer[] | undefined {
    const now = this.deps.clock.now()
    const target = this.hitTarget(url, now)
    if (target === undefined) return undefined
    const stored = this.deps.store.getInMemory(target.key)
    if (stored === undefined || !this.hostOk(host) || freshState(stored.fresh, now) !== 'fresh')
      return undefined
    // A playlist's encoded form, when the client accepts one (cache/compress.ts).
    const entry = formFor(stored, acceptEncoding, undefined)
    const bytes = rawHitHead(
      entry,
      Math.floor(currentAge(entry.fresh, now) / 1000),
      suffix,
      this.deps.cacheStatus,
    )
    if (bytes === null) return undefined
    if (target.title !== undefined) this.deps.countTitle?.(target.title)
    this.observe(target, undefined)
    const body = entry.body!
    const sent = head ? 0 : body.length
    this.deps.stats.record('hit-mem', sent)
    // The access log's line for a raw hit: what done() logs for one answered through node.
    this.deps.accessLog?.info(
      {
        method: head ? 'HEAD' : 'GET',
        url,
        status: entry.meta.status,
        cache: X_CACHE['hit-mem'],
        bytes: sent,
      },
      'access',
    )
    return head ? [bytes] : [bytes, body]
  }

  /** The full path: validation, memory, disk, revalidation, single-flight. Never throws. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.deps.clock.monotonic()
    try {
      if (!validHost(req.headers.host)) throw new CdnError('CDN_ERR_BAD_REQUEST', 'bad Host header')
      const now = this.deps.clock.now()
      const url = this.target(req.url ?? '', now, req.socket.remoteAddress)
      if (url.title !== undefined) this.deps.countTitle?.(url.title)
      this.observe(url, req.headers)
      const store = this.deps.store
      // A URL whose answers vary is looked up under this request's variant (cache/variants.ts).
      const key = store.variantOf ? store.variantOf(url.key, req.headers) : url.key
      const target = key === url.key ? url : { ...url, key }
      const rd = this.directives(req)
      // Large disk objects stream for plain requests; ranges and conditionals read them whole.
      if (store.stream && plainRequest(req.headers)) {
        const s = store.stream(target.key, STREAM_MIN_BYTES)
        if (s && this.reuse(req, s.entry, now, rd) === 'fresh') {
          // One chunk at a time is in flight (sendStream), reserved until the response closes.
          await this.reserve(res, STREAM_CHUNK_BYTES).catch((err: unknown) => {
            s.close()
            throw err
          })
          return this.sendStream(req, res, s, now, started)
        }
        s?.close()
      }
      // A body read from disk is reserved until its response is over; a memory hit needs nothing.
      if (!store.getInMemory(target.key))
        await this.reserve(res, store.lookup?.(target.key)?.meta.bodyLength ?? 0)
      let got = await (store.getToSend ? store.getToSend(target.key) : store.get(target.key))
      if (got?.release) {
        if (this.reuse(req, got.entry, now, rd) === 'fresh') {
          // The body is lent: back to the pool once the response is over, whether the socket
          // took every byte or the client went away ('close' comes after the socket's pending
          // writes completed or were cancelled, so nothing reads the buffer any more). Waiting
          // for 'finish' only left an abandoned response's buffer out of the pool and out of the
          // in-flight budget until a garbage collection.
          whenOver(res, got.release)
          return this.respond(req, res, got.entry, 'hit-disk', now, started)
        }
        // Stale: the entry may be kept by a flight, so it needs a body of its own.
        got.release()
        got = await store.get(target.key)
      }
      if (got) {
        const state = this.reuse(req, got.entry, now, rd)
        if (state === 'fresh')
          return this.respond(
            req,
            res,
            got.entry,
            got.tier === 'memory' ? 'hit-mem' : 'hit-disk',
            now,
            started,
          )
        if (state === 'stale-while-revalidate' || state === 'stale-allowed') {
          this.deps.flights.refresh(target, got.entry, this.deps.forward.forRequest(req, 'cached'))
          return this.respond(req, res, got.entry, 'stale', now, started)
        }
        if (rd.onlyIfCached) throw new CdnError('CDN_ERR_NOT_CACHED', 'only-if-cached: no usable stored copy')
        return this.viaUpstream(req, res, target, got.entry, started, state === 'client-revalidate')
      }
      if (rd.onlyIfCached) throw new CdnError('CDN_ERR_NOT_CACHED', 'only-if-cached: nothing stored')
      return this.viaUpstream(req, res, target, undefined, started)
    } catch (err) {
      this.sendError(req, res, err, started)
    }
  }

  /** A content request seen (hit or miss): steering's reason counted, CMCD read, the next segment prefetched. */
  private observe(target: CacheTarget, headers: IncomingMessage['headers'] | undefined): void {
    if (target.steered !== undefined) this.deps.misses?.steer(target.steered)
    this.deps.prefetch?.request(target, headers)
  }

  /** Reserves `n` bytes in the in-flight budget until `res` closes (503 when they do not come). */
  private async reserve(res: ServerResponse, n: number): Promise<Hold | undefined> {
    if (n <= 0) return undefined
    const hold = await this.deps.budget.acquire(n, this.deps.budgetWait)
    whenOver(res, hold.release)
    return hold
  }

  /** The request's own Cache-Control (request-directives.ts); none for most requests. */
  private directives(req: IncomingMessage): RequestDirectives {
    const h = req.headers
    return h['cache-control'] === undefined && h.pragma === undefined ? NO_DIRECTIVES : requestDirectives(h)
  }

  /** What this request may do with a stored entry now (its directives under the operator's policy). */
  private reuse(req: IncomingMessage, entry: CacheEntry, now: number, rd = this.directives(req)) {
    return rd === NO_DIRECTIVES
      ? freshState(entry.fresh, now)
      : reuseOf(entry.fresh, now, rd, this.deps.clientFreshness ?? 'ignore')
  }

  /** `byRequest`: a fresh copy is revalidated because the client asked (Cache-Status fwd=request). */
  private viaUpstream(
    req: IncomingMessage,
    res: ServerResponse,
    target: CacheTarget,
    stale: CacheEntry | undefined,
    started: number,
    byRequest = false,
  ): void {
    // The first client's fields go upstream; one with credentials fetches on its own.
    const upstream = this.deps.forward.forRequest(req, 'cached')
    const joining = this.deps.flights.find(target.key, upstream).flight !== undefined
    const outcome: Outcome = joining ? 'coalesced' : 'miss'
    const cause = this.deps.misses?.classify({
      key: target.key,
      path: target.path,
      stale: stale !== undefined,
      steered: target.steered,
      prefetchLate: this.deps.prefetch?.inFlight(target.key) ?? false,
    })
    if (cause !== undefined) this.causes.set(req, cause)
    const sink = new ClientSink(this, req, res, outcome, started)
    const { flight } = this.deps.flights.request(target, sink, {
      upstream,
      ...(stale ? { stale } : {}),
      ...(byRequest ? { byRequest } : {}),
    })
    sink.attach(flight)
  }

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
   * A large disk hit sent in chunks of STREAM_CHUNK_BYTES read into pooled buffers, the next
   * chunk read only when the socket has room: memory per response stays bounded whatever the
   * object's size, where reading it whole needs the whole object per response in flight. A
   * read failing half-way ends the response early (its Content-Length tells the client).
   */
  private sendStream(
    req: IncomingMessage,
    res: ServerResponse,
    s: BodyStream,
    now: number,
    started: number,
  ): void {
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

/** Runs `fn` once the response is over: now when it already closed (its client went away meanwhile). */
function whenOver(res: ServerResponse, fn: () => void): void {
  if (res.closed || res.destroyed) fn()
  else res.once('close', fn)
}
