/**
 * The rest of the delivery tree: the nodes tier-1 edges fetch from (tier-2 parents, the
 * origin). Steering never sends a player to them, but every edge depends on them, so steering
 * watches them the way it watches edges (the same health loop over their /status) and shows
 * them beside the edges in /edges, the fleet dashboard and `cdn status`.
 *
 * Declared in the fleet file next to "edges":
 *   "upstreams": [
 *     { "id": "fra-parent", "url": "http://10.0.0.5:8085", "role": "edge", "site": "frankfurt",
 *       "lat": 50.11, "lon": 8.68, "upstream": "origin", "serves": ["rome-1", "nyc-1"] },
 *     { "id": "origin", "url": "http://10.0.0.2:8090", "role": "origin" } ]
 * `upstream` names the node it fetches from; `serves` the fleet edges that fetch from it;
 * lat/lon (both or neither) put it on the map.
 */
import type { EdgeConfig } from './registry.js'

export interface UpstreamNode {
  readonly id: string
  readonly url: string
  readonly role: 'edge' | 'origin'
  readonly site: string | undefined
  readonly lat: number | undefined
  readonly lon: number | undefined
  readonly upstream: string | undefined
  readonly serves: readonly string[]
}

const KEYS = new Set(['id', 'url', 'role', 'site', 'lat', 'lon', 'upstream', 'serves'])
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** More than a tree of this many nodes above the edges is a mistake, not a fleet. */
const MAX_UPSTREAMS = 256

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** Parses the "upstreams" list, pushing every problem (with its field) onto `problems`. */
export function parseUpstreams(
  raw: unknown,
  edgeIds: ReadonlySet<string>,
  problems: string[],
): UpstreamNode[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) {
    problems.push('upstreams: expected an array')
    return []
  }
  if (raw.length > MAX_UPSTREAMS) {
    problems.push(`upstreams: at most ${MAX_UPSTREAMS} nodes`)
    return []
  }
  const out: UpstreamNode[] = []
  const ids = new Set<string>()
  raw.forEach((r: unknown, i) => {
    const e = (typeof r === 'object' && r !== null && !Array.isArray(r) ? r : {}) as Record<string, unknown>
    const where = `upstreams[${i}]${typeof e.id === 'string' ? ` (${e.id})` : ''}`
    const before = problems.length
    if (e !== r) problems.push(`${where}: expected an object`)
    for (const k of Object.keys(e)) if (!KEYS.has(k)) problems.push(`${where}: unknown key "${k}"`)
    if (typeof e.id !== 'string' || !ID_RE.test(e.id))
      problems.push(`${where}.id: expected letters, digits, ".", "_" or "-" (at most 64)`)
    else if (ids.has(e.id) || edgeIds.has(e.id)) problems.push(`${where}.id: duplicate id "${e.id}"`)
    else ids.add(e.id)
    let url = ''
    try {
      const u = new URL(String(e.url))
      if ((u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash)
        url = String(e.url).replace(/\/+$/, '')
    } catch {
      // reported below
    }
    if (!url) problems.push(`${where}.url: expected an absolute http(s) URL without query`)
    if (e.role !== 'edge' && e.role !== 'origin') problems.push(`${where}.role: expected "edge" or "origin"`)
    if (e.site !== undefined && (typeof e.site !== 'string' || !ID_RE.test(e.site)))
      problems.push(`${where}.site: expected a site name`)
    if ((e.lat === undefined) !== (e.lon === undefined))
      problems.push(`${where}: give both lat and lon, or neither`)
    if (e.lat !== undefined && (!num(e.lat) || e.lat < -90 || e.lat > 90))
      problems.push(`${where}.lat: expected a number in -90..90`)
    if (e.lon !== undefined && (!num(e.lon) || e.lon < -180 || e.lon > 180))
      problems.push(`${where}.lon: expected a number in -180..180`)
    if (e.upstream !== undefined && typeof e.upstream !== 'string')
      problems.push(`${where}.upstream: expected the id of another upstream`)
    const serves = e.serves ?? []
    if (!Array.isArray(serves) || serves.some((s) => typeof s !== 'string' || !edgeIds.has(s)))
      problems.push(`${where}.serves: expected ids of fleet edges`)
    if (problems.length !== before) return
    out.push(
      Object.freeze({
        id: e.id as string,
        url,
        role: e.role as 'edge' | 'origin',
        site: e.site as string | undefined,
        lat: e.lat as number | undefined,
        lon: e.lon as number | undefined,
        upstream: e.upstream as string | undefined,
        serves: Object.freeze([...(serves as string[])]),
      }),
    )
  })
  for (const n of out)
    if (n.upstream !== undefined && !ids.has(n.upstream))
      problems.push(`upstreams (${n.id}).upstream: "${n.upstream}" is not an upstream id`)
  return out
}

/**
 * The upstream nodes as the health loop takes them (it only reads id, url and capacity; the
 * capacity here only scales a load figure nobody decides on).
 */
export function asWatched(nodes: readonly UpstreamNode[]): {
  edges: EdgeConfig[]
  byId: Map<string, EdgeConfig>
} {
  const edges = nodes.map((n): EdgeConfig => ({
    id: n.id,
    url: n.url,
    site: n.site ?? n.role,
    lat: n.lat ?? 0,
    lon: n.lon ?? 0,
    capacityBytesPerSec: 1e9,
    weight: 1,
  }))
  return { edges, byId: new Map(edges.map((e) => [e.id, e])) }
}
