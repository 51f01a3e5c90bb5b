/**
 * From a raw request target to what the edge serves: the target is canonicalised once
 * (src/http/target.ts), its token verified and stripped (src/http/signing.ts), its path
 * checked against the namespace the edge serves, and its query reduced by the query policy.
 * The result's `key` is both the cache key and exactly what is requested from the upstream,
 * so a target that is refused, or a parameter that is dropped, never reaches the upstream.
 *
 * Namespace: the content space (`/vod/{title}/...`, src/http/paths.ts) and the operator's
 * public paths; anything else is 404 here, and so are the edge's own paths (`ownPath`: /healthz,
 * /status, /metrics, /admin...), read on the canonical path once the steering and token prefixes
 * are gone, even under a public path: `/steered/down/healthz` is never fetched, nor stored under
 * the key `/healthz`, where a hit for `/%68ealthz` would have found it. With signing keys, content needs a valid token
 * unless it lies under a public path. Query policy: parameters not in `keepQueryParams` are
 * dropped from key and upstream request alike (cache-busters cannot make misses); kept ones
 * are sorted. Parameters the edge reads itself (CMCD, steering's reason) are read first and
 * never kept, whatever the policy says: a player's CMCD data changes on every request and must
 * not split the cache. Steering's reason may also open the path (`/steered/down/vod/...`,
 * src/http/steered.ts), so that every request of a steered session carries it: that prefix is
 * stripped first, before a token prefix is verified.
 */
import { CdnError } from '../../src/errors.js'
import { isContentPath, titleOfPath } from '../../src/http/paths.js'
import { type SigningKey, verifySignedPath } from '../../src/http/signing.js'
import { STEERED_PARAM, type SteerReason, splitSteered, steerReason } from '../../src/http/steered.js'
import { canonicalTarget, formatQuery, type QueryParam } from '../../src/http/target.js'

export { MAX_TARGET_LENGTH } from '../../src/http/target.js'
export { validHost } from '../../src/http/host.js'

/** Longest CMCD value kept for the access log. */
const MAX_CMCD = 512
/** Query parameters the edge reads itself: never in a key, never sent upstream. */
const EDGE_PARAMS: ReadonlySet<string> = new Set(['CMCD', STEERED_PARAM])

export interface KeyOptions {
  /** Query parameters kept in the cache key and the upstream request; `*` keeps all. */
  readonly keepQueryParams: readonly string[]
  /** Path prefixes (whole segments; `/` is everything) served besides the content space, unsigned. */
  readonly publicPaths: readonly string[]
  /** Keys that verify tokens; undefined or empty: content is served unsigned. */
  readonly signingKeys: readonly SigningKey[] | undefined
}

export interface CacheTarget {
  /** Cache key and upstream request target. */
  key: string
  path: string
  title: string | undefined
  /** The request's CMCD data (`CMCD=` query parameter, decoded), read before the query policy. */
  cmcd?: string
  /** Why steering sent the client here rather than to its preferred edge, when it says so. */
  steered?: SteerReason
}

/** Paths the edge answers itself (edge/routes/ops.ts), each with what lies under it. */
const OWN_PATHS = ['/healthz', '/readyz', '/status', '/metrics']

/**
 * Whether a canonical path is one of the edge's own (ops, and anything starting /admin: the
 * operator's API), answered by the node itself (in a cluster, by its primary) and never content.
 */
export function isOwnPath(path: string): boolean {
  return isAdminPath(path) || underPrefix(path, OWN_PATHS)
}

/** Whether a canonical path is the operator's API (admin, prefill): only its routes serve there. */
export function isAdminPath(path: string): boolean {
  return path.startsWith('/admin')
}

/**
 * The path of a raw request target as the edge's routes read it: canonical, its unreserved
 * escapes decoded as fastify's router decodes them (`/%68ealthz` is /healthz), without the
 * query; undefined for a target that has no canonical form (refused as content: cacheTarget).
 */
export function routedPath(url: string): string | undefined {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (!path.includes('%')) return path
  try {
    return canonicalTarget(path).path
  } catch {
    return undefined
  }
}

/** Whether a raw request target names one of the edge's own paths (on its routedPath). */
export function ownPath(url: string): boolean {
  const path = routedPath(url)
  return path !== undefined && isOwnPath(path)
}

/** Whether `path` is at or under one of `prefixes`, on a segment boundary. */
export function underPrefix(path: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) {
    if (p === '/' || path === p) return true
    if (path.startsWith(p) && (p.endsWith('/') || path.charCodeAt(p.length) === 47)) return true
  }
  return false
}

/**
 * Throws CDN_ERR_BAD_PATH (400) for targets that are not canonical-safe (see target.ts),
 * CDN_ERR_NOT_FOUND (404) outside the namespace or for one of the edge's own paths (after the
 * steering and token prefixes), and CDN_ERR_FORBIDDEN (403) for a missing
 * or bad token when signing keys are configured. `clientAddress` is for network-bound tokens.
 */
export function cacheTarget(
  rawUrl: string,
  opts: KeyOptions,
  nowSec: number,
  clientAddress?: string,
): CacheTarget {
  const canonical = canonicalTarget(rawUrl)
  const signed = opts.signingKeys !== undefined && opts.signingKeys.length > 0
  const steeredPath = splitSteered(canonical.path)
  let path = steeredPath.path
  // A token prefix is always verified (with keys) or stripped (without); unsigned content is
  // refused only where it is content and not public, so that other paths are a plain 404.
  if (path.startsWith('/t/') || (signed && isContentPath(path) && !underPrefix(path, opts.publicPaths)))
    path = verifySignedPath(path, opts.signingKeys, nowSec, clientAddress)
  if (isOwnPath(path) || (!isContentPath(path) && !underPrefix(path, opts.publicPaths)))
    throw new CdnError('CDN_ERR_NOT_FOUND', 'not found')
  const query = keptQuery(canonical.query, opts.keepQueryParams)
  const target: CacheTarget = { key: query ? `${path}?${query}` : path, path, title: titleOfPath(path) }
  const cmcd = canonical.query.find((p) => p.name === 'CMCD')?.value
  if (cmcd !== undefined) target.cmcd = cmcdValue(cmcd)
  const steered =
    steeredPath.reason ?? steerReason(canonical.query.find((p) => p.name === STEERED_PARAM)?.value)
  if (steered !== undefined) target.steered = steered
  return target
}

/** The CMCD data and steering's reason of a request target (for the access log), whatever the query policy keeps. */
export function edgeParamsOf(rawUrl: string): { cmcd?: string; steered?: SteerReason } {
  const q = rawUrl.indexOf('?')
  const inPath = splitSteered(q === -1 ? rawUrl : rawUrl.slice(0, q)).reason
  if (q === -1) return inPath ? { steered: inPath } : {}
  try {
    const query = canonicalTarget(`/${rawUrl.slice(q)}`).query
    const v = query.find((p) => p.name === 'CMCD')?.value
    const steered = inPath ?? steerReason(query.find((p) => p.name === STEERED_PARAM)?.value)
    return { ...(v === undefined ? {} : { cmcd: cmcdValue(v) }), ...(steered ? { steered } : {}) }
  } catch {
    return {}
  }
}

function cmcdValue(raw: string): string {
  let v: string
  try {
    v = decodeURIComponent(raw)
  } catch {
    v = raw
  }
  return v.length > MAX_CMCD ? v.slice(0, MAX_CMCD) : v
}

function keptQuery(params: readonly QueryParam[], keep: readonly string[]): string {
  if (params.length === 0 || keep.length === 0) return ''
  const all = keep.includes('*')
  const kept = params
    .filter((p) => !EDGE_PARAMS.has(p.name) && (all || keep.includes(p.name)))
    .map((p) => formatQuery([p]))
  return kept.sort().join('&')
}
