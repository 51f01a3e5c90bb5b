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
import { LATITUDE, LONGITUDE } from '../src/config/schema.js'
import { edgeUrlProblem, normalEdgeUrl } from '../src/fleet-registry.js'
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

/** More than a tree of this many nodes above the edges is a mistake, not a fleet. */
export const MAX_UPSTREAMS = 256

/** The JSON Schema of one "upstreams" entry (the fleet file's schema is in registry.ts). */
export function upstreamSchema(idPattern: string, hint: string): Record<string, unknown> {
  const id = { type: 'string', pattern: idPattern, hint }
  return {
    type: 'object',
    properties: {
      id,
      url: { type: 'string', minLength: 1 },
      role: { enum: ['edge', 'origin'] },
      site: id,
      lat: LATITUDE,
      lon: LONGITUDE,
      upstream: { type: 'string' },
      serves: { type: 'array', items: { type: 'string' } },
    },
    required: ['id', 'url', 'role'],
    additionalProperties: false,
    dependencies: { lat: ['lon'], lon: ['lat'] },
  }
}

/**
 * The "upstreams" list of a fleet file whose shape passed the schema: checks what the schema
 * cannot (ids unique across edges and upstreams, URLs, references), pushing each problem with
 * its JSON path onto `problems`. URLs follow the fleet's own rule (`edgeUrlProblem`).
 */
export function parseUpstreams(
  raw: unknown,
  edgeIds: ReadonlySet<string>,
  problems: string[],
): UpstreamNode[] {
  if (!Array.isArray(raw)) return []
  const ids = new Set<string>()
  raw.forEach((r: { id?: unknown; url?: unknown; serves?: unknown }, i) => {
    if (typeof r !== 'object' || r === null) return
    if (typeof r.id === 'string') {
      if (ids.has(r.id) || edgeIds.has(r.id)) problems.push(`/upstreams/${i}/id: duplicate id "${r.id}"`)
      ids.add(r.id)
    }
    const why =
      typeof r.url === 'string' && r.url !== ''
        ? edgeUrlProblem(r.url, `upstream "${String(r.id)}"`)
        : undefined
    if (why) problems.push(`/upstreams/${i}/url: ${why}`)
    if (Array.isArray(r.serves))
      r.serves.forEach((s: unknown, j) => {
        if (typeof s === 'string' && !edgeIds.has(s))
          problems.push(`/upstreams/${i}/serves/${j}: "${s}" is not a fleet edge id`)
      })
  })
  raw.forEach((r: { upstream?: unknown }, i) => {
    if (typeof r?.upstream === 'string' && !ids.has(r.upstream))
      problems.push(`/upstreams/${i}/upstream: "${r.upstream}" is not an upstream id`)
  })
  if (problems.length) return []
  return (raw as UpstreamNode[]).map((n) =>
    Object.freeze({
      id: n.id,
      url: normalEdgeUrl(n.url),
      role: n.role,
      site: n.site,
      lat: n.lat,
      lon: n.lon,
      upstream: n.upstream,
      serves: Object.freeze([...(n.serves ?? [])]),
    }),
  )
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
