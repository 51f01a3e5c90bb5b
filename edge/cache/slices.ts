/**
 * Slices (as nginx's slice module): an object cached as fixed-size pieces, each fetched with an
 * upstream `Range: bytes=a-b` and stored under the URL's key plus its index (`#s=3`), so a seek
 * into a large file fetches only the slices it covers. The pieces of one object must be of one
 * version: each slice stores the upstream's `Content-Range` (the object's total length) and its
 * validators, and slices whose ETag (or, without one, Last-Modified) or total differ are never
 * served together. Pure helpers; the request path is edge/http/sliced-response.ts.
 */
import type { CacheStore } from './store.js'
import { primaryOf } from './variants.js'

/** What separates a slice's index from its URL's key (a key never holds '#' otherwise but for variants). */
export const SLICE_MARK = '#s='

export function sliceKey(urlKey: string, index: number): string {
  return `${urlKey}${SLICE_MARK}${index}`
}

export function isSliceKey(key: string): boolean {
  return key.includes(SLICE_MARK)
}

/** Bytes `start`..`end` (inclusive) slice `index` asks for; the last slice may hold fewer. */
export function sliceRange(index: number, size: number): { start: number; end: number } {
  return { start: index * size, end: (index + 1) * size - 1 }
}

/** `Content-Range: bytes a-b/total` of a 206, or undefined when it is not one (`*` total included). */
export function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total: number } | undefined {
  const m = value === undefined ? null : /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/.exec(value.trim())
  if (!m) return undefined
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return start <= end && end < total ? { start, end, total } : undefined
}

/**
 * Why a 206 is not the slice that was asked for (undefined when it is): it must start where the
 * slice starts and end where the slice or the object ends.
 */
export function sliceMismatch(
  asked: { start: number; end: number },
  contentRange: string | undefined,
): string | undefined {
  const r = parseContentRange(contentRange)
  if (!r) return 'a 206 without a valid Content-Range'
  if (r.start !== asked.start || r.end !== Math.min(asked.end, r.total - 1))
    return `asked bytes ${asked.start}-${asked.end}, got ${r.start}-${r.end}/${r.total}`
  return undefined
}

/** The version of an object a slice is of: the total length and the validators. */
export interface SliceVersion {
  readonly total: number
  readonly etag: string | undefined
  readonly lastModified: string | undefined
}

/** The version a slice's stored (or received) headers name; undefined without a valid Content-Range. */
export function versionOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): SliceVersion | undefined {
  const r = parseContentRange(one(headers['content-range']))
  if (!r) return undefined
  return { total: r.total, etag: one(headers.etag), lastModified: one(headers['last-modified']) }
}

/** The version a whole answer (a 200 of `total` bytes) names. */
export function wholeVersion(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  total: number,
): SliceVersion {
  return { total, etag: one(headers.etag), lastModified: one(headers['last-modified']) }
}

/**
 * Are two slices of one version? The total must match, and the ETag when the first has one
 * (else Last-Modified). Without either nothing tells versions apart but the length, as nginx.
 */
export function sameVersion(a: SliceVersion, b: SliceVersion): boolean {
  if (a.total !== b.total) return false
  if (a.etag !== undefined || b.etag !== undefined) return a.etag === b.etag
  return a.lastModified === b.lastModified
}

/**
 * The first slice a request needs before it knows the object's length: the one holding the
 * first byte of a single `bytes=a-` range; slice 0 otherwise (a whole GET, a suffix range,
 * several ranges).
 */
export function leadSlice(range: string | undefined, size: number): number {
  const m = range === undefined ? null : /^\s*bytes=(\d{1,15})-\d{0,15}\s*$/.exec(range)
  return m ? Math.floor(Number(m[1]) / size) : 0
}

/**
 * Every slice key the store holds for a URL: a title's keys come from its index (in time
 * proportional to the title), others by probing indexes up to `count`.
 */
export function heldSlices(
  store: CacheStore,
  urlKey: string,
  title: string | undefined,
  count = 0,
): string[] {
  const prefix = urlKey + SLICE_MARK
  const out = new Set<string>()
  if (title !== undefined)
    for (const keys of store.titleIndex(title).values())
      for (const k of keys) if (k.startsWith(prefix) && primaryOf(k) === urlKey) out.add(k)
  for (let i = 0; i < count; i++) if (store.has(sliceKey(urlKey, i))) out.add(sliceKey(urlKey, i))
  return [...out]
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
