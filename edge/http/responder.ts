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
import { type CacheEntry, hitHeaders, variantHeaders } from '../cache/entry.js'
import { type Outcome, X_CACHE } from '../cache/outcome.js'

/** Headers beside the JSON body of an error answer (a player on another origin reads it too). */
export function errorHeaders(outcome: Outcome): Record<string, string> {
  return { 'x-cache': X_CACHE[outcome], 'access-control-allow-origin': CORS_ALLOW_ORIGIN }
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
): boolean {
  switch (d.kind) {
    case 'full': {
      const status = entry.meta.status
      res.sendDate = false
      res.writeHead(
        status,
        length === undefined
          ? variantHeaders(entry, ['age', String(ageSec), 'x-cache', X_CACHE[outcome]])
          : hitHeaders(entry, ageSec, outcome),
      )
      if (head || status === 204 || status === 304) break
      return true
    }
    case 'partial':
      res.sendDate = false
      res.writeHead(
        206,
        variantHeaders(entry, [
          'content-range',
          contentRangeOf(d, length!)!,
          'content-length',
          String(d.end - d.start + 1),
          'age',
          String(ageSec),
          'x-cache',
          X_CACHE[outcome],
        ]),
      )
      if (head) break
      return true
    case 'not-modified':
      res.sendDate = false
      res.writeHead(304, variantHeaders(entry, ['age', String(ageSec), 'x-cache', X_CACHE[outcome]]))
      break
    case 'precondition-failed':
      sendJsonError(
        res,
        new CdnError('CDN_ERR_PRECONDITION_FAILED', 'precondition failed'),
        errorHeaders(outcome),
        head,
      )
      return false
    case 'unsatisfiable':
      sendJsonError(
        res,
        new CdnError('CDN_ERR_RANGE_NOT_SATISFIABLE', 'range not satisfiable'),
        {
          'content-range': contentRangeOf(d, length!)!,
          ...errorHeaders(outcome),
        },
        head,
      )
      return false
  }
  res.end()
  return false
}
