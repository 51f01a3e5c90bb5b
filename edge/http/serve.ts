/**
 * Answers content requests (GET/HEAD of anything the upstream serves) on raw node
 * req/res, so the same code serves the fast path in front of fastify and the fastify
 * wildcard route behind it. Lookup: memory, disk, then the single-flight. Every request
 * ends with exactly one Outcome, recorded once (answers.ts: header, stats, access log).
 *
 * `fastHit` is synchronous and answers what needs no I/O: a fresh memory entry. It does no
 * per-request header work but Age/X-Cache (entry.ts memoises the header array per second).
 * A key held on disk goes from there straight to `serve` (no fastify routing); a disk body
 * that memory will not take is lent from the disk tier's buffer pool for one response. What to
 * answer (200/206/304/412/416) is decided by src/http/respond.ts and written by answers.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CdnError } from '../../src/errors.js'
import { plainRequest } from '../../src/http/respond.js'
import { formFor } from '../cache/compress.js'
import { type CacheEntry, rawHitHead } from '../cache/entry.js'
import { currentAge, freshState } from '../cache/freshness.js'
import { type CacheTarget, type KeyOptions, validHost } from '../cache/key.js'
import {
  type ClientFreshness,
  NO_DIRECTIVES,
  type RequestDirectives,
  requestDirectives,
  reuseOf,
} from '../cache/request-directives.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'
import { type Hold, type InflightBudget, UNRESERVED_BODY_MAX } from '../inflight-budget.js'
import type { MissLedger } from '../miss/ledger.js'
import type { Prefetcher } from '../prefetch/prefetcher.js'
import type { ForwardPolicy } from '../upstream/forward.js'
import type { SingleFlight } from '../upstream/single-flight.js'
import { Answers, type AnswersDeps, STREAM_CHUNK_BYTES } from './answers.js'
import { ClientSink } from './client-sink.js'
import { type SliceObserver, Slicer, type SlicerOptions } from './slicer.js'
import { HitTargets } from './hit-targets.js'
import { SEND_LEASE_BYTES, sendfileSocket } from './pump-body.js'
import type { RawAnswer, RawRetry } from './raw-parse.js'

/** What the content handler needs beside what its answers need (answers.ts). */
export interface ServeDeps extends AnswersDeps {
  flights: SingleFlight
  keyOptions: KeyOptions
  /** Paths the node answers itself (never looked up in the cache). */
  ownPath: (url: string) => boolean
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
  /** Whether a client's no-cache/max-age/min-fresh may send a fresh copy's request upstream. */
  clientFreshness?: ClientFreshness
  /** Slicing (slicer.ts): the options, and where slices are counted. */
  slicing?: { options: SlicerOptions; observer?: SliceObserver; heuristicMax: number }
}

/** Disk hits at least this large are sent in chunks (sendStream) rather than read whole. */
const STREAM_MIN_BYTES = 2 * 1024 * 1024
/**
 * ... and at least this large where they can go by sendfile (pump-body.ts): no copy through the
 * process, so a 1 MB hit costs less sent than read whole and written (bench:peers).
 */
const SENDFILE_MIN_BYTES = 256 * 1024

export class ContentHandler {
  private readonly targets: HitTargets
  /** Small disk bodies being read so that waiting raw connections can ask again (`warm`). */
  private readonly warming = new Map<string, RawRetry>()
  /** Writes answers and records each request's outcome (client sinks finish through it too). */
  readonly answers: Answers

  /** Answers from slices (slicer.ts), when slicing is configured. */
  readonly slicer: Slicer | undefined

  constructor(private readonly deps: ServeDeps) {
    this.targets = new HitTargets(deps.keyOptions, deps.ownPath)
    this.answers = new Answers(deps)
    const slicing = deps.slicing
    this.slicer =
      slicing && (slicing.options.sliceSize > 0 || slicing.options.largeSliceSize > 0)
        ? new Slicer(
            {
              store: deps.store,
              flights: deps.flights,
              answers: this.answers,
              clock: deps.clock,
              entryOptions: { heuristicMaxMs: slicing.heuristicMax },
              ...(slicing.observer ? { observer: slicing.observer } : {}),
              ...(deps.log ? { log: deps.log } : {}),
            },
            slicing.options,
          )
        : undefined
  }

  /** Answers a fresh memory hit synchronously; false means "not mine, pass it on". */
  fastHit(req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const now = this.deps.clock.now()
    const target = this.targets.hitTarget(req.url!, now, req.socket.remoteAddress)
    if (target === undefined) return false
    const key = target.key
    const entry = this.deps.store.getInMemory(key)
    if (entry === undefined) {
      // Held on disk, or as variants: straight to serve(), without fastify's routing and request objects.
      const store = this.deps.store
      if (!(store.has(key) || (store.variantOf && store.variantOf(key, req.headers) !== key))) return false
      if (!this.targets.hostOk(req.headers.host)) return false
      void this.serve(req, res)
      return true
    }
    if (!this.targets.hostOk(req.headers.host) || this.reuse(req, entry, now) !== 'fresh') return false
    if (target.title !== undefined) this.deps.countTitle?.(target.title)
    this.observe(target, req.headers)
    this.answers.respond(req, res, entry, 'hit-mem', now)
    return true
  }

  /**
   * The raw hit path's question (raw-hits.ts): the bytes of a fresh memory hit for a plain
   * GET/HEAD (no conditionals, no range), counted like `fastHit` counts it; undefined means
   * "not a raw hit, let node's http have the request". `suffix` ends the head (connection headers).
   * `retried`: asked again once a small disk body was read (warm); a memory hit then is that
   * read, promoted, and told as the disk hit it was (X-Cache, Cache-Status, the hit counters).
   */
  rawHit(
    head: boolean,
    url: string,
    host: string,
    suffix: string,
    acceptEncoding?: string,
    retried = false,
  ): RawAnswer | RawRetry | undefined {
    const now = this.deps.clock.now()
    const target = this.targets.hitTarget(url, now)
    if (target === undefined) return undefined
    const stored = this.deps.store.getInMemory(target.key)
    if (stored === undefined) return this.rawDiskHit(head, url, host, suffix, target, now, acceptEncoding)
    if (!this.targets.hostOk(host) || freshState(stored.fresh, now) !== 'fresh') return undefined
    // A playlist's encoded form, when the client accepts one (cache/compress.ts).
    const entry = formFor(stored, acceptEncoding, undefined)
    const age = Math.floor(currentAge(entry.fresh, now) / 1000)
    const outcome = retried ? 'hit-disk' : 'hit-mem'
    const bytes = rawHitHead(entry, age, suffix, this.deps.cacheStatus, outcome)
    if (bytes === null) return undefined
    const body = entry.body!
    this.rawDone(target, head, url, entry.meta.status, outcome, head ? 0 : body.length)
    return head ? { head: bytes } : { head: bytes, body }
  }

  /**
   * A raw hit from the disk tier: a small body read on the event loop, only when the store says
   * it is resident (open, recently read and verified through the same fd: store.getResident),
   * reserved in the in-flight budget until the socket took it (unless it is at most
   * UNRESERVED_BODY_MAX bytes). Anything else (a larger or cold body, an encoded form wanted,
   * no room in the budget) is node's http's, as before.
   */
  private rawDiskHit(
    head: boolean,
    url: string,
    host: string,
    suffix: string,
    target: CacheTarget,
    now: number,
    acceptEncoding: string | undefined,
  ): RawAnswer | RawRetry | undefined {
    const store = this.deps.store
    const stored = store.getResident === undefined ? undefined : store.lookup?.(target.key)
    if (stored === undefined || !this.targets.hostOk(host) || freshState(stored.fresh, now) !== 'fresh')
      return undefined
    if (stored.encoded !== undefined && acceptEncoding !== undefined) return undefined
    const age = Math.floor(currentAge(stored.fresh, now) / 1000)
    const bytes = rawHitHead(stored, age, suffix, this.deps.cacheStatus, 'hit-disk')
    if (bytes === null) return undefined
    const length = stored.meta.bodyLength
    // A small body needs no reservation (inflight-budget.ts UNRESERVED_BODY_MAX).
    const reserve = length > UNRESERVED_BODY_MAX
    const hold = reserve ? this.deps.budget.tryTake(length) : undefined
    if (reserve && hold === undefined) return undefined
    const got = store.getResident!(target.key)
    if (got === undefined || head) hold?.release()
    // Not resident (not read lately, fd not open): a small body is read on the threadpool and
    // the connection asks again, rather than going to node's http for good over one cold read.
    if (got === undefined) return reserve ? undefined : this.warm(target.key)
    this.rawDone(target, head, url, got.entry.meta.status, 'hit-disk', head ? 0 : length)
    if (head) return { head: bytes }
    const body = got.entry.body!
    return hold === undefined ? { head: bytes, body } : { head: bytes, body, release: hold.release }
  }

  /**
   * One read per key at a time of a small disk body that is not resident, on the threadpool
   * (verified, its fd cached and marked read: store.getToSend), for the connections waiting on it.
   */
  private warm(key: string): RawRetry {
    const known = this.warming.get(key)
    if (known !== undefined) return known
    const store = this.deps.store
    const read = store.getToSend ? store.getToSend(key) : store.get(key)
    const ready = read.then(
      (got) => {
        this.warming.delete(key)
        got?.release?.()
      },
      () => {
        this.warming.delete(key)
      },
    )
    const retry = { ready }
    this.warming.set(key, retry)
    return retry
  }

  /** A raw hit counted and logged: what `fastHit` and done() do for one answered through node. */
  private rawDone(
    target: CacheTarget,
    head: boolean,
    url: string,
    status: number,
    outcome: 'hit-mem' | 'hit-disk',
    sent: number,
  ): void {
    if (target.title !== undefined) this.deps.countTitle?.(target.title)
    this.observe(target, undefined)
    this.deps.stats.record(outcome, sent)
    this.deps.accessLog?.info(
      { method: head ? 'HEAD' : 'GET', url, status, cache: X_CACHE[outcome], bytes: sent },
      'access',
    )
  }

  /** The full path: validation, memory, disk, revalidation, single-flight. Never throws. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.deps.clock.monotonic()
    try {
      if (!validHost(req.headers.host)) throw new CdnError('CDN_ERR_BAD_REQUEST', 'bad Host header')
      const now = this.deps.clock.now()
      const url = this.targets.target(req.url ?? '', now, req.socket.remoteAddress)
      if (url.title !== undefined) this.countAnswered(res, url.title)
      this.observe(url, req.headers)
      const store = this.deps.store
      // A URL whose answers vary is looked up under this request's variant (cache/variants.ts).
      const key = store.variantOf ? store.variantOf(url.key, req.headers) : url.key
      const target = key === url.key ? url : { ...url, key }
      const rd = this.directives(req)
      // A sliced URL (slicer.ts) not held whole is answered slice by slice.
      const slice = this.slicer && key === url.key ? this.slicer.sizeFor(key, req) : 0
      if (slice > 0 && !store.has(key)) {
        const upstream = this.deps.forward.forRequest(req, 'cached')
        if (this.slicer!.serve(req, res, url, upstream, slice, started)) return
      }
      // Large disk objects stream for plain requests; ranges and conditionals read them whole.
      if (store.stream && plainRequest(req.headers)) {
        const sends = sendfileSocket(res) !== undefined
        const s = store.stream(target.key, STREAM_MIN_BYTES, sends ? SENDFILE_MIN_BYTES : undefined)
        if (s && this.reuse(req, s.entry, now, rd) === 'fresh') {
          // One chunk at a time is in flight (sendStream), reserved until the response closes:
          // by sendfile, only what goes through node (pump-body.ts).
          await this.reserve(res, sends && s.sendTo ? SEND_LEASE_BYTES : STREAM_CHUNK_BYTES).catch(
            (err: unknown) => {
              s.close()
              throw err
            },
          )
          return this.answers.sendStream(req, res, s, now, started)
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
          return this.answers.respond(req, res, got.entry, 'hit-disk', now, started)
        }
        // Stale: the entry may be kept by a flight, so it needs a body of its own.
        got.release()
        got = await store.get(target.key)
      }
      if (got) {
        const state = this.reuse(req, got.entry, now, rd)
        if (state === 'fresh')
          return this.answers.respond(
            req,
            res,
            got.entry,
            got.tier === 'memory' ? 'hit-mem' : 'hit-disk',
            now,
            started,
          )
        if (state === 'stale-while-revalidate' || state === 'stale-allowed') {
          this.deps.flights.refresh(target, got.entry, this.deps.forward.forRequest(req, 'cached'))
          return this.answers.respond(req, res, got.entry, 'stale', now, started)
        }
        if (rd.onlyIfCached) throw new CdnError('CDN_ERR_NOT_CACHED', 'only-if-cached: no usable stored copy')
        return this.viaUpstream(req, res, target, got.entry, started, state === 'client-revalidate')
      }
      if (rd.onlyIfCached) throw new CdnError('CDN_ERR_NOT_CACHED', 'only-if-cached: nothing stored')
      // Under a variant key: the URL's answer is held, only not for this request's fields.
      return this.viaUpstream(req, res, target, undefined, started, false, key !== url.key)
    } catch (err) {
      this.answers.sendError(req, res, err, started)
    }
  }

  /**
   * A title's request counted for its popularity once answered, unless with a 4xx: a title the
   * upstream does not have (404), a refused signature (403) or a bad request is no demand to
   * prefill for, and random names would otherwise rank beside real titles in GET
   * /admin/popularity. A 5xx still counts (the title's viewers wanted it while the upstream
   * failed), and so does an answer the client left before its end.
   */
  private countAnswered(res: ServerResponse, title: string): void {
    const count = this.deps.countTitle
    if (!count) return
    res.once('close', () => {
      if (res.headersSent && (res.statusCode < 400 || res.statusCode >= 500)) count(title)
    })
  }

  /** A content request seen (hit or miss): steering's reason counted, CMCD read, the next segment prefetched. */
  private observe(target: CacheTarget, headers: IncomingMessage['headers'] | undefined): void {
    if (target.steered !== undefined) this.deps.misses?.steer(target.steered)
    this.deps.store.noteRequest?.(target.key)
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
    varyMiss = false,
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
    if (cause !== undefined) this.answers.causes.set(req, cause)
    const sink = new ClientSink(this.answers, req, res, outcome, started)
    const { flight } = this.deps.flights.request(target, sink, {
      upstream,
      ...(stale ? { stale } : {}),
      ...(byRequest ? { byRequest } : {}),
      ...(varyMiss ? { varyMiss } : {}),
    })
    sink.attach(flight)
  }

  /** An error answer, recorded (answers.ts). */
  sendError(req: IncomingMessage, res: ServerResponse, err: unknown, started: number): void {
    this.answers.sendError(req, res, err, started)
  }
}

/** Runs `fn` once the response is over: now when it already closed (its client went away meanwhile). */
function whenOver(res: ServerResponse, fn: () => void): void {
  if (res.closed || res.destroyed) fn()
  else res.once('close', fn)
}
