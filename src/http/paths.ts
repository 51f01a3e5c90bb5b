/**
 * The URL space shared by origin and edge (the wire contract):
 *   /vod/{title}/master.m3u8                                  short-lived entry point
 *   /vod/{title}/{version}/{rendition}/index.m3u8             immutable
 *   /vod/{title}/{version}/{rendition}/init.mp4 | seg-NNNNN.m4s | seg-NNNNN.ts
 * Names are validated by pattern before they ever reach the filesystem.
 */
import { CdnError } from '../errors.js'

export const TITLE_RE = /^[a-z0-9][a-z0-9-]{0,63}$/
/** Versions are `v` + a sortable timestamp-ish id, e.g. v20261122T013000Z-1a2b. */
export const VERSION_RE = /^v[0-9A-Za-z-]{1,40}$/
export const RENDITION_RE = /^[0-9]{2,4}p$/
export const FILE_RE = /^(index\.m3u8|init\.mp4|seg-[0-9]{5,6}\.(m4s|ts))$/

export function isTitle(s: string): boolean {
  return TITLE_RE.test(s)
}

export function assertTitle(s: unknown): string {
  if (typeof s !== 'string' || !TITLE_RE.test(s))
    throw new CdnError('CDN_ERR_BAD_TITLE', `title id must match ${TITLE_RE.source}`, {
      details: { title: s },
    })
  return s
}

export type VodPath =
  | { kind: 'master'; title: string }
  | { kind: 'media'; title: string; version: string; rendition: string; file: string }

/**
 * Parses a request path (no query) under /vod. Returns undefined for anything that is not
 * exactly one of the contract's shapes: traversal, encoded separators, NULs and odd names
 * simply do not match.
 */
export function parseVodPath(path: string): VodPath | undefined {
  if (!path.startsWith('/vod/')) return undefined
  const parts = path.slice(5).split('/')
  const title = parts[0]
  if (!title || !TITLE_RE.test(title)) return undefined
  if (parts.length === 2 && parts[1] === 'master.m3u8') return { kind: 'master', title }
  if (parts.length !== 4) return undefined
  const [, version, rendition, file] = parts as [string, string, string, string]
  if (!VERSION_RE.test(version) || !RENDITION_RE.test(rendition) || !FILE_RE.test(file)) return undefined
  return { kind: 'media', title, version, rendition, file }
}

/** Title of any /vod/ URL path (or undefined), for per-title indexes and counters. */
export function titleOfPath(path: string): string | undefined {
  if (!path.startsWith('/vod/')) return undefined
  const end = path.indexOf('/', 5)
  const t = end === -1 ? path.slice(5) : path.slice(5, end)
  return TITLE_RE.test(t) ? t : undefined
}

/**
 * The content URL space an edge serves by default: `/vod/{title}/` and something under it.
 * Deeper names are the origin's to judge (a rendition may be `audio-en`, a file a subtitle
 * track); anything outside `/vod/{title}/` is not content at all.
 */
export function isContentPath(path: string): boolean {
  const title = titleOfPath(path)
  return title !== undefined && path.length > 6 + title.length && path.charCodeAt(5 + title.length) === 47
}

export function masterPath(title: string): string {
  return `/vod/${title}/master.m3u8`
}

export function mediaPath(title: string, version: string, rendition: string, file: string): string {
  return `/vod/${title}/${version}/${rendition}/${file}`
}

export function segmentName(index: number, ext: 'm4s' | 'ts'): string {
  return `seg-${String(index).padStart(5, '0')}.${ext}`
}

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  m3u8: 'application/vnd.apple.mpegurl',
  mp4: 'video/mp4',
  m4s: 'video/iso.segment',
  ts: 'video/mp2t',
  json: 'application/json',
}

export function contentTypeFor(file: string): string {
  const ext = file.slice(file.lastIndexOf('.') + 1)
  return CONTENT_TYPES[ext] ?? 'application/octet-stream'
}

/** Cache-Control values of the contract. */
export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable'
export const CACHE_MASTER = 'public, max-age=2, stale-while-revalidate=10, stale-if-error=3600'

/**
 * CORS for media: players on another origin (the steering page, any web player) read
 * playlists and segments with fetch/XHR. Public content, so any origin; the cache status
 * headers are exposed so a player can show where its bytes came from.
 */
export const CORS_ALLOW_ORIGIN = '*'
export const CORS_EXPOSE_HEADERS = 'Age, X-Cache, Cache-Status, Content-Length, Content-Range'

/**
 * The fields of the 204 answering a CORS preflight of media, the edge's and the origin's alike:
 * reads only, with the request headers a player sends (a range, the validators of a conditional
 * read, CMCD sent as headers: CTA-5004's CMCD-Object/-Request/-Session/-Status, which hls.js and
 * dash.js send in header mode and the edge reads), remembered by the browser for a day.
 */
export const CORS_PREFLIGHT: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': CORS_ALLOW_ORIGIN,
  'access-control-allow-methods': 'GET, HEAD',
  'access-control-allow-headers':
    'Range, If-None-Match, If-Modified-Since, If-Range, CMCD-Object, CMCD-Request, CMCD-Session, CMCD-Status',
  'access-control-max-age': '86400',
  allow: 'GET, HEAD, OPTIONS',
})
