/**
 * A client's own Cache-Control (RFC 9111 §5.2.1) and what this shared cache does with it, as
 * pure functions. Two kinds of directive:
 *
 *  - those that only loosen or narrow what the client accepts from the cache are always obeyed:
 *    `max-stale[=N]` (a stale copy is acceptable, unless the response forbids it: no-cache,
 *    must-revalidate, proxy-revalidate, s-maxage) and `only-if-cached` (504 when nothing
 *    usable is held, never a request upstream);
 *  - those that would send a request upstream although the cache holds a fresh copy
 *    (`no-cache`, `max-age=N`, `min-fresh=N`, and `Pragma: no-cache` without Cache-Control)
 *    follow the operator's policy, --client-freshness: `ignore` (the default, as most CDNs do:
 *    any client could otherwise load the origin at will; the cache acts for the origin, whose
 *    own directives say how fresh its answers must be) or `obey` (the copy is revalidated with
 *    its validators, Cache-Status `fwd=request`).
 *
 * `no-store` and `no-transform` in a request are not acted on: the edge never transforms a
 * request, and a client cannot make a shared copy forget (docs/http-cache.md says why).
 */
import { cacheDirectives, currentAge, deltaSeconds, type Freshness, freshState } from './freshness.js'

export type ClientFreshness = 'ignore' | 'obey'
export const CLIENT_FRESHNESS: readonly ClientFreshness[] = ['ignore', 'obey']

export interface RequestDirectives {
  /** Seconds; the client wants no older copy (obey only). */
  readonly maxAge?: number
  /** Seconds of staleness the client accepts; Infinity for a bare max-stale. */
  readonly maxStale?: number
  /** Seconds of freshness the client wants left (obey only). */
  readonly minFresh?: number
  /** no-cache, or Pragma: no-cache without Cache-Control (obey only). */
  readonly noCache: boolean
  readonly onlyIfCached: boolean
}

export const NO_DIRECTIVES: RequestDirectives = Object.freeze({ noCache: false, onlyIfCached: false })

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v
}

/** The request's directives; the first occurrence of a directive counts, a bad number is ignored. */
export function requestDirectives(headers: RequestHeaders): RequestDirectives {
  const cc = one(headers['cache-control'])
  if (cc === undefined) {
    const pragma = one(headers.pragma)
    if (pragma === undefined) return NO_DIRECTIVES
    const noCache = pragma.split(',').some((p) => p.trim().toLowerCase() === 'no-cache')
    return noCache ? { noCache, onlyIfCached: false } : NO_DIRECTIVES
  }
  const out: { -readonly [K in keyof RequestDirectives]: RequestDirectives[K] } = {
    noCache: false,
    onlyIfCached: false,
  }
  const seen = new Set<string>()
  for (const [name, raw] of cacheDirectives(cc)) {
    if (seen.has(name)) continue
    seen.add(name)
    const secs = deltaSeconds(raw)
    switch (name) {
      case 'no-cache':
        out.noCache = true
        break
      case 'only-if-cached':
        out.onlyIfCached = true
        break
      case 'max-age':
        if (secs !== undefined) out.maxAge = secs
        break
      case 'min-fresh':
        if (secs !== undefined) out.minFresh = secs
        break
      case 'max-stale':
        if (raw === undefined) out.maxStale = Infinity
        else if (secs !== undefined) out.maxStale = secs
        break
    }
  }
  return out
}

/**
 * What a request may do with a stored response now:
 *  fresh                   serve it
 *  stale-while-revalidate  serve it, refresh in the background (the response allows it)
 *  stale-allowed           serve it stale, refresh in the background (the client's max-stale allows it)
 *  must-revalidate         ask upstream: it is stale (stale-if-error may still serve it on error)
 *  client-revalidate       ask upstream although it is fresh: the client asked (obey only)
 */
export type Reuse =
  'fresh' | 'stale-while-revalidate' | 'stale-allowed' | 'must-revalidate' | 'client-revalidate'

export function reuseOf(f: Freshness, now: number, rd: RequestDirectives, policy: ClientFreshness): Reuse {
  const state = freshState(f, now)
  if (rd === NO_DIRECTIVES) return state
  const age = currentAge(f, now)
  if (state === 'fresh' && policy === 'obey') {
    if (rd.noCache) return 'client-revalidate'
    if (rd.maxAge !== undefined && age > rd.maxAge * 1000) return 'client-revalidate'
    if (rd.minFresh !== undefined && f.lifetimeMs - age < rd.minFresh * 1000) return 'client-revalidate'
  }
  if (state !== 'must-revalidate' || rd.maxStale === undefined) return state
  // A response that says no-cache, must-revalidate, proxy-revalidate or s-maxage is never served
  // stale, whatever the client accepts (RFC 9111 §4.2.4, §5.2.2.2).
  if (f.noCache || f.noStale) return state
  if (policy === 'obey' && (rd.noCache || (rd.maxAge !== undefined && age > rd.maxAge * 1000))) return state
  return age - f.lifetimeMs <= rd.maxStale * 1000 ? 'stale-allowed' : state
}

/** Does this request need the full path (its directives may change what a fresh hit does)? */
export function mayDiffer(rd: RequestDirectives, policy: ClientFreshness): boolean {
  return policy === 'obey' && (rd.noCache || rd.maxAge !== undefined || rd.minFresh !== undefined)
}
