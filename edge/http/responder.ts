/**
 * The edge's one responder: writes the head of an answer about a cache entry, as decided by
 * src/http/respond.ts, for every content path (memory and disk hits, disk streams, streaming
 * misses). 200 heads reuse the entry's memoised header array; 206 and 304 heads are the stored
 * headers plus their own; 412 and 416 are JSON errors (src/http/errors.ts). The raw hit path
 * (raw-hits.ts) writes the same 200 head as bytes (entry.ts rawHitHead).
 */
import type { ServerResponse } from 'node:http'
import { CdnError } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { CORS_ALLOW_ORIGIN } from '../../src/http/paths.js'
import { contentRangeOf, type Decision } from '../../src/http/respond.js'
import { type CacheStatus, type ForwardFacts, withChain } from '../cache/cache-status.js'
import { type CacheEntry, hitHeaders, ttlOf, variantHeaders } from '../cache/entry.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'

/**
 * What the Cache-Status of an answer says (RFC 9211, cache-status.ts): `cs` names this edge
 * (none on a cluster primary); without `fwd` the answer is a hit, with it the request went
 * upstream, and `ttl` says whether the answer is a stored one (its remaining freshness is told).
 */
export interface Told {
  readonly cs: CacheStatus | undefined
  readonly fwd?: ForwardFacts | undefined
  readonly ttl?: boolean
  /** Fields this answer carries beyond the stored ones (those a qualified private/no-cache kept out). */
  readonly extra?: readonly string[] | undefined
}

/** The Cache-Status value of an answer about `entry`, undefined when there is nothing to say. */
export function cacheStatusOf(entry: CacheEntry | undefined, ageSec: number, told: Told): string | undefined {
  const chain = entry?.chain ?? ''
  const { cs, fwd } = told
  if (!fwd) return withChain(chain, entry && cs?.hit(ttlOf(entry, ageSec)))
  const ttl = entry && told.ttl ? ttlOf(entry, ageSec) : undefined
  return withChain(chain, cs?.forwarded(fwd, ttl))
}

/** Headers beside the JSON body of an error answer (a player on another origin reads it too). */
export function errorHeaders(outcome: Outcome, cacheStatus?: string): Record<string, string> {
  const h: Record<string, string> = {
    'x-cache': X_CACHE[outcome],
    'access-control-allow-origin': CORS_ALLOW_ORIGIN,
  }
  if (cacheStatus !== undefined) h['cache-status'] = cacheStatus
  return h
}

/**
 * Writes the head of answer `d` about `entry` (whose body is `length` bytes; undefined while a
 * miss streams without Content-Length). Ends the response and returns false when no body
 * follows (HEAD, 304, 412, 416, a bodiless status); otherwise the caller sends the body, or
 * bytes `d.start`..`d.end` of it for a 206.
 */
export function writeEntryHead(
  res: ServerResponse,
  entry: CacheEntry,
  d: Decision,
  outcome: Outcome,
  ageSec: number,
  length: number | undefined,
  head: boolean,
  told: Told,
): boolean {
  // A hit's full head is memoised per Age second; every other head is made here.
  const hit = told.fwd === undefined && d.kind === 'full' && length !== undefined
  const cacheStatus = hit ? undefined : cacheStatusOf(entry, ageSec, told)
  const ours = (extra: string[]): string[] => {
    const all = told.extra ? [...told.extra, ...extra] : extra
    return cacheStatus === undefined ? all : [...all, 'cache-status', cacheStatus]
  }
  switch (d.kind) {
    case 'full': {
      const status = entry.meta.status
      res.sendDate = false
      res.writeHead(
        status,
        hit
          ? hitHeaders(entry, ageSec, outcome, told.cs)
          : length === undefined
            ? variantHeaders(entry, ours(['age', String(ageSec), 'x-cache', X_CACHE[outcome]]))
            : entry.block.concat(ours(['age', String(ageSec), 'x-cache', X_CACHE[outcome]])),
      )
      if (head || status === 204 || status === 304) break
      return true
    }
    case 'partial':
      res.sendDate = false
      res.writeHead(
        206,
        variantHeaders(
          entry,
          ours([
            'content-range',
            contentRangeOf(d, length!)!,
            'content-length',
            String(d.end - d.start + 1),
            'age',
            String(ageSec),
            'x-cache',
            X_CACHE[outcome],
          ]),
        ),
      )
      if (head) break
      return true
    case 'not-modified':
      res.sendDate = false
      res.writeHead(304, variantHeaders(entry, ours(['age', String(ageSec), 'x-cache', X_CACHE[outcome]])))
      break
    case 'precondition-failed':
      sendJsonError(
        res,
        new CdnError('CDN_ERR_PRECONDITION_FAILED', 'precondition failed'),
        errorHeaders(outcome, cacheStatus),
        head,
      )
      return false
    case 'unsatisfiable':
      sendJsonError(
        res,
        new CdnError('CDN_ERR_RANGE_NOT_SATISFIABLE', 'range not satisfiable'),
        {
          'content-range': contentRangeOf(d, length!)!,
          ...errorHeaders(outcome, cacheStatus),
        },
        head,
      )
      return false
  }
  res.end()
  return false
}
