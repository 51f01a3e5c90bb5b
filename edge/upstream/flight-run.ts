/**
 * One upstream fetch of the single-flight (single-flight.ts), from request to commit: the
 * conditional request when a stale copy is held, a 304 refreshing it, stale-if-error, keying
 * the answer's variant, the reservation in the in-flight budget and the cache writer; the body
 * then streams through flight-body.ts.
 */
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { ifRangeValidator, weakMatch } from '../../src/http/conditional.js'
import {
  type EntryMeta,
  type EntryOptions,
  makeEntry,
  metaFromUpstream,
  refreshedMeta,
  withheldFields,
} from '../cache/entry.js'
import {
  effectiveCacheControl,
  ERROR_STATUSES,
  storability,
  usableOnError,
  varyStar,
} from '../cache/freshness.js'
import { SliceWriter } from '../cache/slice-writer.js'
import { type SliceVersion, sameVersion, sliceMismatch, versionOf, wholeVersion } from '../cache/slices.js'
import { type CacheWriter, validatorsOf } from '../cache/store.js'
import { CLIENT_WINDOW_BYTES, type Hold } from '../inflight-budget.js'
import { type Upstream, type UpstreamResponse, upstreamError } from './client.js'
import { pumpBody } from './flight-body.js'
import { type ResumeBody, ResumableBody } from './resumable-body.js'
import type { Flight, FlightSink } from './flight.js'
import type { UpstreamRequest } from './forward.js'
import type { SingleFlightOptions } from './single-flight.js'
import { keyVariant } from './variant-flights.js'

/** What a fetch needs of the single-flight that runs it. */
export interface RunContext {
  readonly options: SingleFlightOptions
  readonly entryOptions: EntryOptions
  /** The table of running flights (a variant's answer is listed under its key too). */
  readonly inflight: Map<string, Flight>
  /** Moves a waiter that selects another variant to a fetch of its own. */
  move(from: Flight, sink: FlightSink, request: UpstreamRequest): void
  /** Takes a flight out of the table: nobody joins it any more. */
  unlist(f: Flight): void
  /** Sends a waiter to a fetch of its own that nobody joins (its request's answer is its own). */
  alone(from: Flight, sink: FlightSink, request: UpstreamRequest): void
  /** The URL was answered: personally (`own`: its next requests fetch alone for a while) or not. */
  answered(path: string, own: boolean): void
  /** An object was committed to the cache under `key` (the option `stored` and every onStored listener). */
  stored(key: string): void
}

export async function runFlight(ctx: RunContext, f: Flight): Promise<void> {
  const { clock, upstream, store, observer } = ctx.options
  const startedMono = clock.monotonic()
  const requestTime = clock.now()
  const conditional: Record<string, string> = {}
  if (f.slice) conditional.range = `bytes=${f.slice.start}-${f.slice.end}`
  if (f.stale?.etag) conditional['if-none-match'] = f.stale.etag
  if (f.stale?.lastModified) conditional['if-modified-since'] = f.stale.lastModified
  const elapsed = () => (clock.monotonic() - startedMono) / 1000

  let res: Awaited<ReturnType<Upstream['fetch']>>
  try {
    res = await upstream.fetch(f.path, { ...f.request.headers, ...conditional }, 'GET', (status, h) =>
      f.interim(status, h),
    )
    // A 304 naming another ETag is about another representation (RFC 9111 §4.3.4: it updates no
    // stored response): the one the upstream now has is asked for without conditions.
    if (f.stale && res.status === 304 && !sameTag(f.stale.etag, res.headers.etag)) {
      res.body.resume()
      const plain: Record<string, string> = f.slice ? { range: conditional.range! } : {}
      res = await upstream.fetch(f.path, { ...f.request.headers, ...plain }, 'GET', (status, h) =>
        f.interim(status, h),
      )
    }
  } catch (err) {
    observer.fetchFinished(elapsed(), 'error')
    return failOrStale(clock, f, upstreamError(err, 'upstream'))
  }
  const responseTime = clock.now()
  f.forwarded.status = res.status

  if (f.stale && res.status === 304) {
    res.body.resume()
    observer.fetchFinished(elapsed(), 'not-modified')
    const meta = refreshedMeta(f.stale.meta, res.headers, requestTime, responseTime)
    ctx.answered(f.path, personal(meta))
    // A 304 whose own fields make the answer its request's (a Set-Cookie, private, no-store)
    // goes to that request alone, and refreshes nothing stored: the joiners fetch alone.
    if (personal(meta)) {
      keepToStarter(ctx, f)
      f.committed = Promise.resolve(undefined)
      return f.resolve(
        { ...makeEntry(meta, f.stale.body, ctx.entryOptions), body: f.stale.body },
        'revalidated',
      )
    }
    // The 304 refreshes the response it revalidated (RFC 9111 §4.3.4), in each tier that holds
    // it: a newer one stored under the key meanwhile (another fetch's, a prefill's) stands. Not
    // after a purge of its title (single-flight.ts `purge`): what is stored then was fetched since,
    // and the fields this refresh starts from are the purged copy's.
    const stored = f.purged
      ? undefined
      : await store.updateMeta(f.stale.meta.key, meta, validatorsOf(f.stale.meta.headers))
    f.forwarded.stored = stored !== undefined
    const entry = stored ?? makeEntry(meta, f.stale.body, ctx.entryOptions)
    f.committed = Promise.resolve(stored)
    return f.resolve(stored?.body || !f.stale.body ? entry : { ...entry, body: f.stale.body }, 'revalidated')
  }
  if (f.stale && res.status >= 500 && usableOnError(f.stale.fresh, responseTime)) {
    res.body.resume()
    observer.fetchFinished(elapsed(), 'error')
    return f.resolve(f.stale, 'stale')
  }

  const meta = metaFromUpstream(f.path, res.status, res.headers, requestTime, responseTime)
  f.withheld = withheldFields(res.headers)
  const mine = personal(meta)
  // An error says nothing of the URL's next answers: what was learnt of it stands.
  if (mine || res.status < 500) ctx.answered(f.path, mine)
  if (mine) keepToStarter(ctx, f)
  // A slice's 206 is stored under the slice's key, as a 200 of its bytes (freshness as a 200's);
  // a 200 (the upstream ignored Range) is the whole object, the URL's answer as any other.
  const slice = f.slice && res.status === 206 ? sliceAnswer(f, f.slice, meta, res.headers) : undefined
  if (slice !== undefined) {
    res.body.destroy()
    observer.fetchFinished(elapsed(), 'error')
    return f.fail(new CdnError('CDN_ERR_UPSTREAM', `upstream slice refused: ${slice}`))
  }
  if (!(f.slice && res.status === 206))
    keyVariant(f, meta, ctx.inflight, (sink, request) => ctx.move(f, sink, request))
  const floor = ttlFloor(ctx.options, res.status)
  if (floor > 0) meta.minTtlMs = floor
  const clHeader = res.headers['content-length']
  const cl = typeof clHeader === 'string' && /^\d{1,15}$/.test(clHeader) ? Number(clHeader) : undefined
  const keepLimit = ctx.options.maxObjectSize
  // Too large to keep whole: sliced from now on, in slices of `sliceSize` (0: not sliced).
  // (A slice's fetch answered whole: the upstream ignores Range, and the slicer learns it there.)
  const large = res.status === 200 && cl !== undefined && cl > keepLimit && !f.slice
  const sliceSize = large ? (ctx.options.large?.(f.path, cl) ?? 0) : 0
  let hold: Hold
  try {
    hold = await reserve(ctx.options, f, cl, keepLimit, sliceSize)
  } catch (err) {
    res.body.destroy()
    observer.fetchFinished(elapsed(), 'error')
    return f.fail(err as CdnError)
  }
  f.hold = hold
  const allowed = storability(meta.status, { ...meta.headers }, floor > 0, f.request).ok
  const storable = allowed && (cl === undefined || cl <= keepLimit)
  const own = { ...meta, ...(f.protect ? { protected: true } : {}) }
  const writer: CacheWriter | undefined = storable
    ? store.createWriter({ ...own, bodyLength: cl ?? 0 })
    : undefined
  // The stream is stored as the slices the URL's next requests are answered from (not a variant:
  // slices of one URL are one object).
  const slices =
    allowed && sliceSize > 0 && f.varyKey === undefined
      ? new SliceWriter(store, own, cl!, sliceSize, () => f.purged)
      : undefined
  f.forwarded.stored = (writer !== undefined && writer.refused !== true) || slices !== undefined
  f.head = {
    status: res.status,
    entry: makeEntry({ ...meta, bodyLength: cl ?? 0 }, undefined, ctx.entryOptions),
    contentLength: cl,
  }
  // A body the store keeps (the memory tier holds the views it is written) is allocated for
  // it; one it copies (to disk: too large for memory, or a prefill's) or does not store is lent
  // from the pool and given back.
  f.startBody(cl, keepLimit, (n) => store.lendBody?.(n, own))
  // Too large to keep for late joiners: they start their own fetch.
  if (f.unbuffered) ctx.unlist(f)
  const takeover = takeoverOf(res, cl, f, keepLimit)
  const body = takeover ? new ResumableBody(res.body, resumeFrom(ctx, f, res, takeover)) : res.body
  await pumpBody(ctx, f, { body, cl, keepLimit, hold, writer, slices, elapsed })
}

/** What a body taken over must match: the first answer's version, and its If-Range validator. */
interface Takeover extends SliceVersion {
  readonly ifRange: string
}

/**
 * Whether a body can be taken over from a byte on (resumable-body.ts), and against what: a
 * whole 200 of known length, kept whole, with a strong validator. Not a slice's fetch, nor a
 * stream too large to keep: that one is stored as slices as it passes, and a cut keeps the
 * slices it completed (the next request fetches only the rest).
 */
function takeoverOf(
  res: UpstreamResponse,
  cl: number | undefined,
  f: Flight,
  keepLimit: number,
): Takeover | undefined {
  if (res.status !== 200 || cl === undefined || cl === 0 || cl > keepLimit || f.slice) return undefined
  const version = wholeVersion(res.headers, cl)
  const date = typeof res.headers.date === 'string' ? res.headers.date : undefined
  const ifRange = ifRangeValidator(version.etag, version.lastModified, date)
  return ifRange === undefined ? undefined : { ...version, ifRange }
}

/**
 * The rest of a body cut after its headers (resumable-body.ts): the object is asked again from
 * the byte reached, through the upstream client as any fetch (in order; a dead upstream refuses
 * at once and is marked down, so the next one answers), with If-Range so a changed object is
 * never spliced onto the old one's bytes. Only a 206 for exactly the missing bytes, with the
 * first answer's ETag (or, without one, its Last-Modified) and coding, takes over. A cut body
 * does not count against its upstream's health by itself.
 */
function resumeFrom(ctx: RunContext, f: Flight, first: UpstreamResponse, takeover: Takeover): ResumeBody {
  const { upstream, observer, log } = ctx.options
  const cl = takeover.total
  return async (received, cause) => {
    // The cached path's request fields never hold a range or a conditional (forward.ts
    // MANAGED_BY_CACHE): these two are the only ones.
    const headers = { ...f.request.headers, range: `bytes=${received}-`, 'if-range': takeover.ifRange }
    let r: UpstreamResponse
    try {
      r = await upstream.fetch(f.path, headers, 'GET')
    } catch {
      observer.resumed?.('failed')
      return undefined
    }
    // An upstream that ignores If-Range answers 206 for another object: the 206 must be of the
    // first answer's version (slices.ts, as a slice is checked) and coding too.
    const contentRange = r.headers['content-range']
    const got = versionOf(r.headers)
    const ok =
      r.status === 206 &&
      sliceMismatch(
        { start: received, end: cl - 1 },
        typeof contentRange === 'string' ? contentRange : undefined,
      ) === undefined &&
      got !== undefined &&
      sameVersion(takeover, got) &&
      String(r.headers['content-encoding'] ?? '') === String(first.headers['content-encoding'] ?? '')
    if (!ok) {
      r.body.destroy()
      observer.resumed?.('refused')
      return undefined
    }
    observer.resumed?.('ok')
    log?.warn(
      { path: f.path, received, length: cl, reason: cause.message },
      'upstream body cut; resumed from the byte reached',
    )
    return r.body
  }
}

/**
 * Checks a slice's 206 against what was asked and makes it the slice's entry: stored under the
 * slice's key with status 200 (its own Content-Range kept, so the object's total and version
 * are known from any slice). One that varies is never stored: slices of one URL are one object.
 * Returns why the answer is refused (it is not the bytes asked for).
 */
function sliceAnswer(
  f: Flight,
  asked: { start: number; end: number },
  meta: EntryMeta,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | undefined {
  const cr = headers['content-range']
  const why = sliceMismatch(asked, typeof cr === 'string' ? cr : undefined)
  if (why) return why
  meta.key = f.key
  f.storeKey = f.key
  meta.status = meta.headers.vary === undefined ? 200 : 206
  return undefined
}

/**
 * A body kept whole (Content-Length up to the keep limit) reserves its length: clients share
 * that one buffer, however slow. A stream too large to keep reserves one client window per
 * client, and `pace` keeps each client within it, plus the slice it is storing (`sliceSize`).
 * Without Content-Length: grown per chunk.
 */
function reserve(
  options: SingleFlightOptions,
  f: Flight,
  cl: number | undefined,
  keepLimit: number,
  sliceSize: number,
): Promise<Hold> {
  const window = CLIENT_WINDOW_BYTES * Math.max(1, f.sinks.size)
  const n = cl === undefined ? 0 : cl <= keepLimit ? cl : window + sliceSize
  return options.budget.acquire(n, options.waiterTimeout)
}

/** The operator's floor on this status's freshness (negative and error caching). */
function ttlFloor(options: SingleFlightOptions, status: number): number {
  if (status === 404 || status === 410) return options.notFoundTtl ?? 0
  if (ERROR_STATUSES.has(status)) return options.errorTtl ?? 0
  return 0
}

function failOrStale(clock: Clock, f: Flight, err: CdnError): void {
  if (f.stale && usableOnError(f.stale.fresh, clock.now())) {
    f.resolve(f.stale, 'stale')
    return
  }
  f.fail(err)
}

/**
 * An answer that is its own request's alone, whatever its status: one a shared cache may not
 * store for a reason about who asked (RFC 9111 §3, §5.2.2.5, §5.2.2.7: private, no-store,
 * Set-Cookie, Vary: *; read as storability reads them, a targeted field first), as opposed to one
 * merely short-lived or of a status not stored, which concurrent requests for the URL may share
 * as they would share the upstream's next answer.
 */
function personal(meta: EntryMeta): boolean {
  const h = meta.headers
  const { cc } = effectiveCacheControl(h)
  return cc.private || (cc.noStore && !cc.mustUnderstand) || h['set-cookie'] !== undefined || varyStar(h.vary)
}

/**
 * The answer goes to the request that was sent (the first client's) and to no one else: every
 * other waiter fetches alone, at once (a hit-for-miss: they never queue behind each other), and
 * no one joins this fetch from now on. A client that joined with the first one's request (a
 * prefill's own fields) is that request's too.
 */
function keepToStarter(ctx: RunContext, f: Flight): void {
  f.personal = true
  ctx.unlist(f)
  for (const [sink, request] of [...f.requests]) {
    if (request === f.request) continue
    f.leave(sink)
    ctx.alone(f, sink, request)
  }
}

/**
 * Does a 304's ETag identify the stored response (RFC 9111 §4.3.4)? A strong one must be the
 * stored ETag, a weak one weakly equal to it; a 304 without one updates what it revalidated.
 */
function sameTag(stored: string | undefined, got: string | string[] | undefined): boolean {
  const tag = Array.isArray(got) ? got[0] : got
  if (tag === undefined) return true
  if (stored === undefined) return false
  return tag.startsWith('W/') ? weakMatch(tag, stored) : tag === stored
}
