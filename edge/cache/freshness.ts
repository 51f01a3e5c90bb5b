/**
 * RFC 9111 freshness for a shared cache, as pure functions of headers and times (ms).
 * Storability (§3), freshness lifetime (§4.2.1: s-maxage > max-age > Expires, else the
 * heuristic of §4.2.2 when Last-Modified is present and the status is heuristically
 * cacheable), age (§4.2.3, counting the upstream's Age so a child edge counts its
 * parent's), and the stale extensions of RFC 5861.
 *
 * Targeted cache control (RFC 9213): `OpenCDN-Cache-Control` (this CDN only), then
 * `CDN-Cache-Control` (every CDN), each a Structured Fields dictionary; the first with a valid,
 * non-empty value replaces Cache-Control and Expires for this cache's freshness and storability.
 * Dates are HTTP-dates as RFC 9110 §5.6.7 defines them, parsed strictly (src/http/http-date.ts): anything else (another
 * zone, a missing comma, dashes, a one-digit hour, two values) is invalid, so an invalid Expires
 * means already expired (RFC 9111 §5.3) and an invalid Date is treated as absent.
 */

import { parseDictionary } from 'structured-headers'
import { parseHttpDate as httpDate } from '../../src/http/http-date.js'

export interface CacheControl {
  maxAge?: number
  sMaxAge?: number
  noStore: boolean
  noCache: boolean
  private: boolean
  public: boolean
  immutable: boolean
  mustRevalidate: boolean
  proxyRevalidate: boolean
  staleWhileRevalidate?: number
  staleIfError?: number
  /** must-understand (§5.2.2.3): store only a status this cache understands, then ignore no-store. */
  mustUnderstand: boolean
  /** Fields named by a qualified private="a, b" (§5.2.2.7): not stored, the rest may be. */
  privateFields?: string[]
  /** Fields named by a qualified no-cache="a, b" (§5.2.2.4): not stored, the rest reused freely. */
  noCacheFields?: string[]
  /** no-transform (§5.2.2.6): no intermediary may change the content (compress, convert, rewrite). */
  noTransform: boolean
}

/** The targeted fields this cache obeys, most specific first (RFC 9213 §2.1). */
export const TARGETED_FIELDS = ['opencdn-cache-control', 'cdn-cache-control'] as const

function emptyCacheControl(): CacheControl {
  return {
    noStore: false,
    noCache: false,
    private: false,
    public: false,
    immutable: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    mustUnderstand: false,
    noTransform: false,
  }
}

function fieldList(raw: string): string[] {
  return raw
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '')
}

/** Applies one directive (name lower-cased; value a string, a number, or undefined when bare). */
/** The directives whose value is a delta-seconds, and the field each sets. */
const DELTA_FIELDS: Readonly<Record<string, 'maxAge' | 'sMaxAge' | 'staleWhileRevalidate' | 'staleIfError'>> =
  {
    'max-age': 'maxAge',
    's-maxage': 'sMaxAge',
    'stale-while-revalidate': 'staleWhileRevalidate',
    'stale-if-error': 'staleIfError',
  }

function apply(cc: CacheControl, name: string, raw: string | undefined): void {
  const field = Object.hasOwn(DELTA_FIELDS, name) ? DELTA_FIELDS[name] : undefined
  if (field) {
    const secs = deltaSeconds(raw)
    if (secs !== undefined) cc[field] = secs
    return
  }
  switch (name) {
    case 'no-store':
      cc.noStore = true
      break
    case 'no-cache':
      if (raw === undefined || fieldList(raw).length === 0) cc.noCache = true
      else cc.noCacheFields = [...(cc.noCacheFields ?? []), ...fieldList(raw)]
      break
    case 'private':
      if (raw === undefined || fieldList(raw).length === 0) cc.private = true
      else cc.privateFields = [...(cc.privateFields ?? []), ...fieldList(raw)]
      break
    case 'public':
      cc.public = true
      break
    case 'immutable':
      cc.immutable = true
      break
    case 'must-revalidate':
      cc.mustRevalidate = true
      break
    case 'proxy-revalidate':
      cc.proxyRevalidate = true
      break
    case 'must-understand':
      cc.mustUnderstand = true
      break
    case 'no-transform':
      cc.noTransform = true
      break
  }
}

/**
 * The directives of a Cache-Control value in order, each as [name lower-cased, value unquoted or
 * undefined when bare]; commas inside quoted strings do not split (private="a, b" names two fields).
 */
export function cacheDirectives(value: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = []
  for (const part of value.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    const raw =
      eq === -1
        ? undefined
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1')
    out.push([name, raw])
  }
  return out
}

/** The delta-seconds a value too large to represent stands for (RFC 9111 §1.2.2). */
const DELTA_SECONDS_MAX = 2 ** 31

/**
 * A delta-seconds (a directive's value, Age), or undefined when absent or not a valid number.
 * One too large to represent is 2^31 (RFC 9111 §1.2.2, a MUST): `max-age=31536000000` (a year
 * written in milliseconds) is a long lifetime, not no max-age at all.
 */
export function deltaSeconds(raw: string | undefined): number | undefined {
  return raw !== undefined && /^\d+$/.test(raw) ? Math.min(Number(raw), DELTA_SECONDS_MAX) : undefined
}

/** Whether a directive with a number already has its (first valid) value. */
function alreadySet(cc: CacheControl, name: string): boolean {
  const field = Object.hasOwn(DELTA_FIELDS, name) ? DELTA_FIELDS[name] : undefined
  return field !== undefined && cc[field] !== undefined
}

/**
 * Parses Cache-Control; unknown directives are ignored, bad numbers make the directive absent.
 * Of a directive given twice (two field lines, joined), the first counts (RFC 9111 §4.2.1):
 * `max-age=0` from an application and a later layer's `max-age=3600` stay stale.
 */
export function parseCacheControl(value: string | undefined): CacheControl {
  const cc = emptyCacheControl()
  if (!value) return cc
  for (const [name, raw] of cacheDirectives(value)) if (!alreadySet(cc, name)) apply(cc, name, raw)
  return cc
}

/**
 * A targeted field's directives (RFC 9213 §2.1), or undefined when the value is absent, empty or
 * not a valid Structured Fields dictionary (then the next field, and at last Cache-Control, rules).
 */
export function parseTargeted(value: string | undefined): CacheControl | undefined {
  if (value === undefined || value.trim() === '') return undefined
  let dict: ReturnType<typeof parseDictionary>
  try {
    dict = parseDictionary(value)
  } catch {
    return undefined
  }
  if (dict.size === 0) return undefined
  const cc = emptyCacheControl()
  for (const [name, member] of dict) {
    const v = member[0]
    if (Array.isArray(v)) continue // an inner list means nothing in a cache directive
    if (v === true) apply(cc, name, undefined)
    else if (typeof v === 'number') apply(cc, name, Number.isInteger(v) && v >= 0 ? String(v) : 'x')
    else if (typeof v === 'string') apply(cc, name, v)
  }
  return cc
}

/**
 * The directives that govern this cache: the first valid targeted field, else Cache-Control.
 * `targeted` tells the caller to ignore Expires too.
 */
export function effectiveCacheControl(headers: Headers): { cc: CacheControl; targeted: boolean } {
  for (const field of TARGETED_FIELDS) {
    const cc = parseTargeted(headers[field])
    if (cc) return { cc, targeted: true }
  }
  return { cc: parseCacheControl(headers['cache-control']), targeted: false }
}

/** Statuses cacheable by default (RFC 9110 §15.1), the only ones the heuristic may apply to. */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501])
/** Statuses this edge stores at all (it never forwards Range upstream, so no 206). */
const STORABLE_STATUSES = new Set([200, 203, 204, 300, 301, 308, 404, 410])

type Headers = Readonly<Record<string, string | undefined>>

/** Does a Vary value name `*` anywhere in its list (never storable, RFC 9111 §4.1)? */
export function varyStar(vary: string | undefined): boolean {
  return vary !== undefined && vary.split(',').some((f) => f.trim() === '*')
}

/** What storability needs to know of the request that was sent upstream. */
export interface SentRequest {
  /** It carried the client's Authorization (RFC 9111 §3.5). */
  readonly authorized: boolean
  /** Whether a client's value of a field reaches the upstream. */
  readonly forwards?: ((field: string) => boolean) | undefined
}

/** Server errors an operator may cache for a short floor (--error-ttl) to shield the origin. */
export const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504])

/**
 * RFC 9111 §3: may a shared cache store this response? Returns the reason when not.
 * `operatorFloor`: the operator gives this status a floor TTL (--not-found-ttl for 404/410,
 * --error-ttl for 5xx, which are otherwise never stored), so it needs no freshness of its own;
 * no-store, private, Set-Cookie and Vary: * still forbid storing it. `request`: what was sent;
 * an answer to a request with the client's credentials is stored only when a directive allows a
 * shared cache to (public, s-maxage, must-revalidate: §3.5). One whose Vary names request fields
 * is stored as a variant (variants.ts).
 */
export function storability(
  status: number,
  headers: Headers,
  operatorFloor = false,
  request?: SentRequest,
): { ok: true } | { ok: false; reason: string } {
  const { cc, targeted } = effectiveCacheControl(headers)
  // must-understand (§5.2.2.3): stored only when the status is one whose caching rules this cache
  // implements (STORABLE_STATUSES: an operator's floor on a 5xx is not such a rule), and then
  // no-store is ignored: it is there for the caches that do not understand the status.
  if (cc.mustUnderstand && !STORABLE_STATUSES.has(status)) return { ok: false, reason: 'must-understand' }
  const floored = operatorFloor && (ERROR_STATUSES.has(status) || status === 404 || status === 410)
  if (!STORABLE_STATUSES.has(status) && !floored) return { ok: false, reason: 'status' }
  if (cc.noStore && !cc.mustUnderstand) return { ok: false, reason: 'no-store' }
  if (cc.private) return { ok: false, reason: 'private' }
  if (varyStar(headers.vary)) return { ok: false, reason: 'vary' }
  if (request?.authorized && !cc.public && cc.sMaxAge === undefined && !cc.mustRevalidate)
    return { ok: false, reason: 'authorization' }
  if (headers['set-cookie'] !== undefined) return { ok: false, reason: 'set-cookie' }
  const expires = !targeted && headers.expires !== undefined
  const explicit = cc.sMaxAge !== undefined || cc.maxAge !== undefined || expires || cc.public
  const heuristic = HEURISTIC_STATUSES.has(status) && headers['last-modified'] !== undefined
  const validators = headers.etag !== undefined || headers['last-modified'] !== undefined
  if (!explicit && !heuristic && !validators && !floored) return { ok: false, reason: 'no-freshness' }
  return { ok: true }
}

/** Freshness lifetime in ms (§4.2.1 and the §4.2.2 heuristic capped at `heuristicMaxMs`). */
export function freshnessLifetime(status: number, headers: Headers, heuristicMaxMs: number): number {
  const { cc, targeted } = effectiveCacheControl(headers)
  if (cc.sMaxAge !== undefined) return cc.sMaxAge * 1000
  if (cc.maxAge !== undefined) return cc.maxAge * 1000
  if (!targeted && headers.expires !== undefined) {
    const exp = httpDate(headers.expires)
    const date = httpDate(headers.date)
    // An invalid Expires (e.g. "0", or not exactly an HTTP-date) means already expired (§5.3).
    if (exp === undefined || date === undefined) return 0
    return Math.max(0, exp - date)
  }
  const lm = httpDate(headers['last-modified'])
  if (lm !== undefined && HEURISTIC_STATUSES.has(status)) {
    const date = httpDate(headers.date)
    if (date !== undefined && date > lm) return Math.min(heuristicMaxMs, Math.floor((date - lm) / 10))
  }
  return 0
}

/** §4.2.3 corrected initial age in ms, from the upstream's Date and Age and our request/response times. */
export function initialAge(headers: Headers, requestTime: number, responseTime: number): number {
  const date = httpDate(headers.date) ?? responseTime
  const ageHeader = deltaSeconds(headers.age?.trim()) ?? 0
  const apparentAge = Math.max(0, responseTime - date)
  const responseDelay = Math.max(0, responseTime - requestTime)
  const correctedAgeValue = ageHeader * 1000 + responseDelay
  return Math.max(apparentAge, correctedAgeValue)
}

/** Everything the cache needs to decide about a stored response, computed once per entry. */
export interface Freshness {
  lifetimeMs: number
  initialAgeMs: number
  responseTime: number
  /** Revalidate before every reuse (no-cache, or no lifetime at all). */
  noCache: boolean
  immutable: boolean
  /** must-revalidate / proxy-revalidate / s-maxage forbid serving stale. */
  noStale: boolean
  swrMs: number
  sieMs: number
}

export function describe(
  status: number,
  headers: Headers,
  requestTime: number,
  responseTime: number,
  heuristicMaxMs: number,
  /** The operator's floor on the lifetime (negative and error caching). */
  minTtlMs = 0,
): Freshness {
  const { cc } = effectiveCacheControl(headers)
  const noStale = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge !== undefined
  return {
    lifetimeMs: Math.max(minTtlMs, freshnessLifetime(status, headers, heuristicMaxMs)),
    initialAgeMs: initialAge(headers, requestTime, responseTime),
    responseTime,
    noCache: cc.noCache,
    immutable: cc.immutable,
    noStale,
    swrMs: noStale ? 0 : (cc.staleWhileRevalidate ?? 0) * 1000,
    sieMs: noStale ? 0 : (cc.staleIfError ?? 0) * 1000,
  }
}

/** §4.2.3 current_age in ms. */
export function currentAge(f: Freshness, now: number): number {
  return f.initialAgeMs + Math.max(0, now - f.responseTime)
}

/**
 * What a request may do with a stored response now:
 *  fresh: serve it; stale-while-revalidate: serve it and refresh in the background;
 *  must-revalidate: ask upstream (a stale-if-error window still allows it on upstream error).
 */
export type FreshState = 'fresh' | 'stale-while-revalidate' | 'must-revalidate'

export function freshState(f: Freshness, now: number): FreshState {
  if (f.noCache) return 'must-revalidate'
  const age = currentAge(f, now)
  if (age < f.lifetimeMs) return 'fresh'
  if (age < f.lifetimeMs + f.swrMs) return 'stale-while-revalidate'
  return 'must-revalidate'
}

/**
 * May a stored response be served because the upstream failed? A fresh one (revalidated only at
 * a client's request) may; a stale one only within stale-if-error (RFC 5861), and never when
 * must-revalidate, proxy-revalidate or s-maxage forbid serving it stale (RFC 9111 §4.2.4).
 */
export function usableOnError(f: Freshness, now: number): boolean {
  const age = currentAge(f, now)
  if (!f.noCache && age < f.lifetimeMs) return true
  return !f.noStale && age < f.lifetimeMs + f.sieMs
}

/**
 * May an intermediary transform this response's content (RFC 9110 §7.7, RFC 9111 §5.2.2.6)? Not
 * when the directives this cache obeys say no-transform: a targeted field's is a cache directive
 * with Cache-Control's semantics (RFC 9213 §2.2). Nor when Cache-Control says it beside a valid
 * targeted field: RFC 9213 sets Cache-Control aside for this cache's caching policy, but §7.7
 * binds every proxy, cache or not, so the origin's no-transform for all is kept.
 */
export function transformAllowed(headers: Headers): boolean {
  const { cc, targeted } = effectiveCacheControl(headers)
  return !cc.noTransform && !(targeted && parseCacheControl(headers['cache-control']).noTransform)
}
