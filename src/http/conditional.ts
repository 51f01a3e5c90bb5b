/**
 * Validator comparisons for conditional requests (RFC 9110 §13.1): entity-tag lists compared
 * strongly (If-Match, If-Range) or weakly (If-None-Match), and HTTP-dates. The order in which
 * they are evaluated, and what follows from them, is decided once in respond.ts.
 */
import { parseHttpDate } from './http-date.js'

function opaque(tag: string): string {
  const t = tag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}

/** If-None-Match: `*` (the representation exists) or a listed tag equal to `etag` by the weak comparison. */
export function weakMatch(list: string, etag: string | undefined): boolean {
  return list.split(',').some((t) => t.trim() === '*' || (!!etag && opaque(t) === opaque(etag)))
}

/** If-Match: `*` (the representation exists) or a listed tag equal to `etag` by the strong comparison. */
export function strongMatch(list: string, etag: string | undefined): boolean {
  return list.split(',').some((raw) => {
    const t = raw.trim()
    if (t === '*') return true
    return !!etag && !etag.startsWith('W/') && !t.startsWith('W/') && t === etag
  })
}

/**
 * Whether `lastModified` is later than the HTTP-date `since`; undefined when either is missing or
 * not exactly an HTTP-date (http-date.ts): the condition is then ignored (RFC 9110 §13.1.3-4),
 * where `Date.parse` took `2025` or `garbage 2030` for a date and answered 304 or 412.
 */
export function modifiedSince(lastModified: string | undefined, since: string): boolean | undefined {
  const s = parseHttpDate(since)
  const lm = parseHttpDate(lastModified)
  if (s === undefined || lm === undefined) return undefined
  return lm > s
}

/**
 * The validator an answer offers for a later If-Range (§13.1.5): its ETag when strong; none when
 * weak (a weak tag does not promise the same bytes, and a date must not be sent beside one);
 * else its Last-Modified when strong by §8.8.2.2, at least a second before the answer's Date.
 */
export function ifRangeValidator(
  etag: string | undefined,
  lastModified: string | undefined,
  date: string | undefined,
): string | undefined {
  if (etag !== undefined) return etag.startsWith('W/') ? undefined : etag
  if (lastModified === undefined || date === undefined) return undefined
  const lm = parseHttpDate(lastModified)
  const d = parseHttpDate(date)
  return lm !== undefined && d !== undefined && d - lm >= 1000 ? lastModified : undefined
}

/**
 * If-Range: serve the range only when the validator still matches (strong ETag or exact date).
 * A date matches only a strong Last-Modified (§13.1.5): with `date`, the Date of a cache's stored
 * response, one less than a second before it is weak (§8.8.2.2: it may have changed twice in that
 * second); without it (an origin, which knows its own files) the exact date matches.
 */
export function ifRangeMatches(
  ifRange: string | undefined,
  etag: string | undefined,
  lastModified: string | undefined,
  date?: string,
): boolean {
  if (ifRange === undefined) return true
  const v = ifRange.trim()
  if (v.startsWith('"') || v.startsWith('W/')) return !!etag && !v.startsWith('W/') && v === etag
  if (lastModified === undefined || v !== lastModified) return false
  return date === undefined || ifRangeValidator(undefined, lastModified, date) !== undefined
}
