/**
 * What to answer a GET or HEAD for a representation (RFC 9110 §13.2.2, §14): the one decision
 * behind every content answer, the edge's hits, its streaming misses and the origin's files.
 * Preconditions are evaluated in the RFC's order, If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, then Range under If-Range; only a 200 is subject to them (an error or a
 * redirect is sent as it is). HEAD is decided like GET (a range gives a 206 head, as nginx
 * does); not sending the body is the responder's part.
 *
 * Pure and allocation-free when nothing conditional or ranged is asked: the answers without a
 * byte range are shared constants, and a range is the parser's own result.
 */
import { ifRangeMatches, modifiedSince, strongMatch, weakMatch } from './conditional.js'
import { contentRange, parseRange } from './ranges.js'

/** The request headers the decision reads (node's IncomingHttpHeaders has them all). */
export interface ConditionalHeaders {
  readonly 'if-match'?: string | undefined
  readonly 'if-unmodified-since'?: string | undefined
  readonly 'if-none-match'?: string | undefined
  readonly 'if-modified-since'?: string | undefined
  readonly range?: string | undefined
  readonly 'if-range'?: string | undefined
}

/** The representation's validators (a cache entry has them as fields). */
export interface Validators {
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  /**
   * A cache's: the Date of its stored response, which tells whether Last-Modified is strong for
   * If-Range (conditional.ts ifRangeMatches). An origin gives none.
   */
  readonly date?: string | undefined
}

export type Decision =
  /** The representation as it is, with its own status. */
  | { readonly kind: 'full' }
  /** 206: bytes `start`..`end` inclusive. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** 304: the client's copy is current. */
  | { readonly kind: 'not-modified' }
  /** 412: If-Match or If-Unmodified-Since failed. */
  | { readonly kind: 'precondition-failed' }
  /** 416: the range selects no byte. */
  | { readonly kind: 'unsatisfiable' }

const FULL: Decision = Object.freeze({ kind: 'full' })
const NOT_MODIFIED: Decision = Object.freeze({ kind: 'not-modified' })
const PRECONDITION_FAILED: Decision = Object.freeze({ kind: 'precondition-failed' })

/**
 * The answer to a GET/HEAD with headers `h` for a representation with `status`, `length` bytes
 * (undefined while unknown: no range is served then) and validators `v`.
 */
export function decide(
  h: ConditionalHeaders,
  status: number,
  length: number | undefined,
  v: Validators,
): Decision {
  if (status !== 200 || plainRequest(h)) return FULL
  const ifMatch = h['if-match']
  const ifUnmodified = h['if-unmodified-since']
  const ifNoneMatch = h['if-none-match']
  const ifModified = h['if-modified-since']
  const range = h.range
  // If-Unmodified-Since counts only without If-Match; If-Modified-Since only without If-None-Match.
  if (ifMatch !== undefined) {
    if (!strongMatch(ifMatch, v.etag)) return PRECONDITION_FAILED
  } else if (ifUnmodified !== undefined && modifiedSince(v.lastModified, ifUnmodified) === true)
    return PRECONDITION_FAILED
  if (ifNoneMatch !== undefined) {
    if (weakMatch(ifNoneMatch, v.etag)) return NOT_MODIFIED
  } else if (ifModified !== undefined && modifiedSince(v.lastModified, ifModified) === false)
    return NOT_MODIFIED
  if (range === undefined || length === undefined) return FULL
  if (!ifRangeMatches(h['if-range'], v.etag, v.lastModified, v.date)) return FULL
  const r = parseRange(range, length)
  return r.kind === 'none' ? FULL : r
}

/** True when nothing conditional or ranged is asked: the answer is the representation as it is. */
export function plainRequest(h: ConditionalHeaders): boolean {
  return (
    h['if-match'] === undefined &&
    h['if-unmodified-since'] === undefined &&
    h['if-none-match'] === undefined &&
    h['if-modified-since'] === undefined &&
    h.range === undefined
  )
}

/** The status line of an answer (`status` is the representation's own). */
export function statusOf(d: Decision, status: number): number {
  switch (d.kind) {
    case 'full':
      return status
    case 'partial':
      return 206
    case 'not-modified':
      return 304
    case 'precondition-failed':
      return 412
    case 'unsatisfiable':
      return 416
  }
}

/** The Content-Range value of an answer about a `length`-byte body, undefined when it has none. */
export function contentRangeOf(d: Decision, length: number): string | undefined {
  if (d.kind === 'partial') return contentRange(d.start, d.end, length)
  if (d.kind === 'unsatisfiable') return `bytes */${length}`
  return undefined
}

/** Bytes of body an answer carries for a `length`-byte representation (HEAD carries none). */
export function bodyBytesOf(d: Decision, length: number): number {
  if (d.kind === 'full') return length
  if (d.kind === 'partial') return d.end - d.start + 1
  return 0
}
