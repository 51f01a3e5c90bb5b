/**
 * From a raw request target to a cache key, refusing anything an open proxy would take.
 * The key is the path plus the query minus ignored parameters, sorted; it is also exactly
 * what is requested from the upstream, so ignored parameters never reach it. A signed
 * prefix `/t/{exp}.{sig}` is verified (with a key) and stripped before the key is made.
 */
import { CdnError } from '../../src/errors.js'
import { titleOfPath } from '../../src/http/paths.js'
import { verifySignedPath } from '../../src/http/signing.js'

export const MAX_TARGET_LENGTH = 4096

/** Traversal (`.`/`..` segments, also encoded), encoded separators, backslash, NUL and controls. */
const UNSAFE_PATH = /(?:^|\/)\.{1,2}(?:\/|$)|%2e|%2f|%5c|%00|\\|[\x00-\x20\x7f]|\/\//i
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/

export interface KeyOptions {
  readonly ignoreQueryParams: readonly string[]
  readonly signingKey: string | undefined
}

export interface CacheTarget {
  /** Cache key and upstream request target. */
  key: string
  path: string
  title: string | undefined
}

/** Host must be a plain name or address; anything else is a Host game. */
export function validHost(host: string | undefined): boolean {
  return host === undefined || HOST_RE.test(host)
}

/**
 * Throws CDN_ERR_BAD_PATH (400) for absolute-form targets, traversal and junk, and
 * CDN_ERR_FORBIDDEN (403) for a bad token when a signing key is configured.
 */
export function cacheTarget(rawUrl: string, opts: KeyOptions, nowSec: number): CacheTarget {
  if (rawUrl.length === 0 || rawUrl.charCodeAt(0) !== 47 /* / */ || rawUrl.length > MAX_TARGET_LENGTH)
    throw new CdnError('CDN_ERR_BAD_PATH', 'request target must be an origin-form path')
  const q = rawUrl.indexOf('?')
  let path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  if (UNSAFE_PATH.test(path)) throw new CdnError('CDN_ERR_BAD_PATH', 'path not allowed')
  try {
    decodeURIComponent(path)
  } catch (err) {
    throw new CdnError('CDN_ERR_BAD_PATH', 'bad percent-encoding in path', { cause: err })
  }
  if (opts.signingKey !== undefined || path.startsWith('/t/')) {
    // Only /vod content is signed; operator-visible paths outside it stay open.
    if (path.startsWith('/vod/') || path.startsWith('/t/'))
      path = verifySignedPath(path, opts.signingKey, nowSec)
  }
  const query = q === -1 ? '' : normalQuery(rawUrl.slice(q + 1), opts.ignoreQueryParams)
  return { key: query ? `${path}?${query}` : path, path, title: titleOfPath(path) }
}

function normalQuery(query: string, ignored: readonly string[]): string {
  if (query === '') return ''
  if (/[\x00-\x20\x7f#]/.test(query)) throw new CdnError('CDN_ERR_BAD_PATH', 'bad query string')
  const kept: string[] = []
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (!ignored.includes(name)) kept.push(pair)
  }
  return kept.sort().join('&')
}
