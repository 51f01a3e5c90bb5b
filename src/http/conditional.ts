/** Conditional requests (RFC 9110 §13): If-None-Match (weak comparison) and If-Modified-Since. */

function opaque(tag: string): string {
  const t = tag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}

/** True when the client's copy is current and a 304 is the answer (GET/HEAD only). */
export function notModified(
  headers: { 'if-none-match'?: string | string[] | undefined; 'if-modified-since'?: string | undefined },
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  const inm = headers['if-none-match']
  if (inm !== undefined) {
    if (!etag) return false
    const list = (Array.isArray(inm) ? inm.join(',') : inm).split(',')
    return list.some((t) => t.trim() === '*' || opaque(t) === opaque(etag))
  }
  const ims = headers['if-modified-since']
  if (ims !== undefined && lastModified) {
    const since = Date.parse(ims)
    const lm = Date.parse(lastModified)
    if (Number.isFinite(since) && Number.isFinite(lm)) return lm <= since
  }
  return false
}

/** If-Range: serve the range only when the validator still matches (strong ETag or exact date). */
export function ifRangeMatches(
  ifRange: string | undefined,
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  if (ifRange === undefined) return true
  const v = ifRange.trim()
  if (v.startsWith('"') || v.startsWith('W/')) return !!etag && !v.startsWith('W/') && v === etag
  return !!lastModified && v === lastModified
}
