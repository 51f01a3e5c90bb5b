/**
 * The fleet: which edges exist, where they are and what they can carry. Read once at start
 * from the fleet file and validated as a whole against a JSON Schema: every problem is
 * listed, each naming its JSON path (`/edges/3/lat: must be <= 90 (got 100)`), so an
 * operator fixes the file in one pass.
 *
 *   { "edges": [ { "id": "rome-1", "url": "http://127.0.0.1:8081", "site": "rome",
 *                  "lat": 41.9, "lon": 12.5, "capacityBytesPerSec": 1000000000,
 *                  "cluster": "eu", "weight": 1 } ] }
 *
 * `weight` scales the edge's share in rendezvous hashing (a bigger box gets more titles);
 * `cluster` is informational (shown in /edges). Unknown keys are refused: a typo such as
 * "capacity" would otherwise silently fall back to a default. An edge's `url` may carry a
 * path (players and health checks are sent below it); never a user name or password, a query or
 * fragment, whitespace or a control character (src/fleet-registry.ts `edgeUrlProblem`, the registry's rule too); it is
 * stored as the URL parser writes it. The
 * optional "upstreams" list (parents and the origin, watched but never steered to) is
 * described in upstreams.ts and checked by the same schema.
 */
import { readFileSync } from 'node:fs'
import { compileSchema, configError, LATITUDE, LONGITUDE } from '../src/config/schema.js'
import { CdnError } from '../src/errors.js'
import { edgeUrlProblem, normalEdgeUrl } from '../src/fleet-registry.js'
import { MAX_UPSTREAMS, parseUpstreams, type UpstreamNode, upstreamSchema } from './upstreams.js'

export interface EdgeConfig {
  readonly id: string
  /** Base URL, no trailing slash. */
  readonly url: string
  readonly site: string
  readonly lat: number
  readonly lon: number
  readonly capacityBytesPerSec: number
  readonly cluster?: string
  readonly weight: number
}

export interface Registry {
  readonly edges: readonly EdgeConfig[]
  readonly byId: ReadonlyMap<string, EdgeConfig>
  /** Parents and origin above the edges: watched and shown, never steered to (upstreams.ts). */
  readonly upstreams?: readonly UpstreamNode[]
}

/** Edge ids double as HLS PATHWAY-IDs and metric labels, so they keep to a safe alphabet. */
export const EDGE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const NAME_HINT = 'letters, digits, ".", "_" or "-" (at most 64)'

const validateFleet = compileSchema({
  type: 'object',
  properties: {
    $comment: { type: 'string' },
    edges: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string', pattern: EDGE_ID_RE.source, hint: NAME_HINT },
          url: { type: 'string', minLength: 1 },
          site: { type: 'string', pattern: EDGE_ID_RE.source, hint: NAME_HINT },
          lat: LATITUDE,
          lon: LONGITUDE,
          capacityBytesPerSec: { type: 'number', exclusiveMinimum: 0 },
          cluster: { type: 'string', minLength: 1 },
          weight: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
        },
        required: ['id', 'url', 'site', 'lat', 'lon', 'capacityBytesPerSec'],
        additionalProperties: false,
      },
    },
    upstreams: {
      type: 'array',
      maxItems: MAX_UPSTREAMS,
      items: upstreamSchema(EDGE_ID_RE.source, NAME_HINT),
    },
  },
  required: ['edges'],
  additionalProperties: false,
})

export interface FleetOptions {
  /**
   * Edges also come from the fleet registry (--registry-etcd), so the file may list none: a
   * fleet whose edges all register themselves (the Kubernetes DaemonSets, docs/kubernetes.md).
   */
  readonly registry?: boolean
}

export function parseFleet(doc: unknown, source = 'fleet file', opts: FleetOptions = {}): Registry {
  const problems = validateFleet(doc)
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as { edges?: unknown; upstreams?: unknown }
  const list: unknown[] = Array.isArray(d.edges) ? d.edges : []
  if (Array.isArray(d.edges) && list.length === 0 && !opts.registry)
    problems.push('/edges: must have at least 1 item (or edges from --registry-etcd)')
  const ids = new Map<string, number>()
  const urls = new Map<string, string>()
  list.forEach((e, i) => {
    if (typeof e !== 'object' || e === null) return
    const { id, url } = e as { id?: unknown; url?: unknown }
    if (typeof id === 'string') {
      if (ids.has(id)) problems.push(`/edges/${i}/id: duplicate id "${id}" (also /edges/${ids.get(id)})`)
      else ids.set(id, i)
    }
    if (typeof url !== 'string' || url === '') return
    const why = edgeUrlProblem(url, `edge "${String(id)}"`)
    if (why) return void problems.push(`/edges/${i}/url: ${why}`)
    const base = normalEdgeUrl(url)
    if (urls.has(base)) problems.push(`/edges/${i}/url: same URL as ${urls.get(base)}`)
    else urls.set(base, String(id))
  })
  const upstreams = parseUpstreams(d.upstreams, new Set(ids.keys()), problems)
  if (problems.length) throw configError(source, problems)
  const edges = (list as EdgeConfig[]).map((e) =>
    Object.freeze({ ...e, url: normalEdgeUrl(e.url), weight: e.weight ?? 1 }),
  )
  return Object.freeze({
    edges: Object.freeze(edges),
    byId: new Map(edges.map((e) => [e.id, e])),
    upstreams: Object.freeze(upstreams),
  })
}

/** Reads and parses a JSON config file, naming the file in every error. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CdnError('CDN_ERR_CONFIG', `${what} ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new CdnError('CDN_ERR_CONFIG', `${what} ${path}: not valid JSON: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

export function loadFleet(path: string, opts: FleetOptions = {}): Registry {
  return parseFleet(readJsonFile(path, 'fleet file'), `fleet file ${path}`, opts)
}
