/**
 * RFC 9111 freshness for a shared cache, as pure functions of headers and times (ms).
 * Storability (§3), freshness lifetime (§4.2.1: s-maxage > max-age > Expires, else the
 * heuristic of §4.2.2 when Last-Modified is present and the status is heuristically
 * cacheable), age (§4.2.3, counting the upstream's Age so a child edge counts its
 * parent's), and the stale extensions of RFC 5861.
 */

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
}

/** Parses Cache-Control; unknown directives are ignored, bad numbers make the directive absent. */
export function parseCacheControl(value: string | undefined): CacheControl {
  const cc: CacheControl = {
    noStore: false,
    noCache: false,
    private: false,
    public: false,
    immutable: false,
    mustRevalidate: false,
    proxyRevalidate: false,
  }
  if (!value) return cc
  for (const part of value.split(',')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    const raw =
      eq === -1
        ? undefined
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1')
    const secs = raw !== undefined && /^\d{1,10}$/.test(raw) ? Number(raw) : undefined
    switch (name) {
      case 'max-age':
        if (secs !== undefined) cc.maxAge = secs
        break
      case 's-maxage':
        if (secs !== undefined) cc.sMaxAge = secs
        break
      case 'no-store':
        cc.noStore = true
        break
      case 'no-cache':
        // A qualified no-cache="field" only restricts those fields; treat as revalidate-always.
        cc.noCache = true
        break
      case 'private':
        cc.private = true
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
      case 'stale-while-revalidate':
        if (secs !== undefined) cc.staleWhileRevalidate = secs
        break
      case 'stale-if-error':
        if (secs !== undefined) cc.staleIfError = secs
        break
    }
  }
  return cc
}

/** Statuses cacheable by default (RFC 9110 §15.1), the only ones the heuristic may apply to. */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501])
/** Statuses this edge stores at all (it never forwards Range upstream, so no 206). */
const STORABLE_STATUSES = new Set([200, 203, 204, 300, 301, 308, 404, 410])

type Headers = Readonly<Record<string, string | undefined>>

function httpDate(v: string | undefined): number | undefined {
  if (!v) return undefined
  const t = Date.parse(v)
  return Number.isFinite(t) ? t : undefined
}

/** RFC 9111 §3: may a shared cache store this response? Returns the reason when not. */
export function storability(status: number, headers: Headers): { ok: true } | { ok: false; reason: string } {
  if (!STORABLE_STATUSES.has(status)) return { ok: false, reason: 'status' }
  const cc = parseCacheControl(headers['cache-control'])
  if (cc.noStore) return { ok: false, reason: 'no-store' }
  if (cc.private) return { ok: false, reason: 'private' }
  if (headers.vary?.trim() === '*') return { ok: false, reason: 'vary' }
  if (headers['set-cookie'] !== undefined) return { ok: false, reason: 'set-cookie' }
  const explicit =
    cc.sMaxAge !== undefined || cc.maxAge !== undefined || headers.expires !== undefined || cc.public
  const heuristic = HEURISTIC_STATUSES.has(status) && headers['last-modified'] !== undefined
  const validators = headers.etag !== undefined || headers['last-modified'] !== undefined
  if (!explicit && !heuristic && !validators) return { ok: false, reason: 'no-freshness' }
  return { ok: true }
}

/** Freshness lifetime in ms (§4.2.1 and the §4.2.2 heuristic capped at `heuristicMaxMs`). */
export function freshnessLifetime(status: number, headers: Headers, heuristicMaxMs: number): number {
  const cc = parseCacheControl(headers['cache-control'])
  if (cc.sMaxAge !== undefined) return cc.sMaxAge * 1000
  if (cc.maxAge !== undefined) return cc.maxAge * 1000
  if (headers.expires !== undefined) {
    const exp = httpDate(headers.expires)
    const date = httpDate(headers.date)
    // An invalid Expires (e.g. "0") means already expired.
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
  const ageHeader =
    headers.age !== undefined && /^\d{1,10}$/.test(headers.age.trim()) ? Number(headers.age) : 0
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
): Freshness {
  const cc = parseCacheControl(headers['cache-control'])
  const noStale = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge !== undefined
  return {
    lifetimeMs: freshnessLifetime(status, headers, heuristicMaxMs),
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

/** May a stale response be served because the upstream failed (RFC 5861 stale-if-error)? */
export function usableOnError(f: Freshness, now: number): boolean {
  return !f.noStale && currentAge(f, now) < f.lifetimeMs + f.sieMs
}
