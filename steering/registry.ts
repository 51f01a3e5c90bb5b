/**
 * The fleet: which edges exist, where they are and what they can carry. Read once at start
 * from the fleet file and validated as a whole: every problem is listed, each naming its
 * field, so an operator fixes the file in one pass.
 *
 *   { "edges": [ { "id": "rome-1", "url": "http://127.0.0.1:8081", "site": "rome",
 *                  "lat": 41.9, "lon": 12.5, "capacityBytesPerSec": 1000000000,
 *                  "cluster": "eu", "weight": 1 } ] }
 *
 * `weight` scales the edge's share in rendezvous hashing (a bigger box gets more titles);
 * `cluster` is informational (shown in /edges). Unknown keys are refused: a typo such as
 * "capacity" would otherwise silently fall back to a default.
 */
import { readFileSync } from 'node:fs'
import { CdnError } from '../src/errors.js'
import { parseUpstreams, type UpstreamNode } from './upstreams.js'

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
const SITE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const EDGE_KEYS = new Set(['id', 'url', 'site', 'lat', 'lon', 'capacityBytesPerSec', 'cluster', 'weight'])

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

export function parseFleet(doc: unknown, source = 'fleet file'): Registry {
  const problems: string[] = []
  const edges: EdgeConfig[] = []
  const byId = new Map<string, EdgeConfig>()
  const urls = new Map<string, string>()
  const seenIds = new Set<string>()
  const d = doc as Record<string, unknown> | null
  if (typeof d !== 'object' || d === null || Array.isArray(d))
    problems.push('expected a JSON object with "edges"')
  else {
    for (const key of Object.keys(d))
      if (key !== 'edges' && key !== 'upstreams') problems.push(`unknown key "${key}"`)
    if (!Array.isArray(d.edges) || d.edges.length === 0) problems.push('edges: expected a non-empty array')
    else
      d.edges.forEach((raw: unknown, i: number) => {
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
          problems.push(`edges[${i}]: expected an object`)
          return
        }
        const e = raw as Record<string, unknown>
        const where = `edges[${i}]${typeof e.id === 'string' ? ` (${e.id})` : ''}`
        const before = problems.length
        for (const key of Object.keys(e))
          if (!EDGE_KEYS.has(key)) problems.push(`${where}: unknown key "${key}"`)
        if (typeof e.id !== 'string' || !EDGE_ID_RE.test(e.id))
          problems.push(`${where}.id: expected letters, digits, ".", "_" or "-" (at most 64)`)
        else if (seenIds.has(e.id)) problems.push(`${where}.id: duplicate id "${e.id}"`)
        if (typeof e.id === 'string') seenIds.add(e.id)
        let url: string | undefined
        if (e.url === undefined) problems.push(`${where}.url: missing`)
        else if (typeof e.url !== 'string') problems.push(`${where}.url: expected a string`)
        else {
          try {
            const u = new URL(e.url)
            if (u.protocol !== 'http:' && u.protocol !== 'https:')
              problems.push(`${where}.url: expected http(s)`)
            else if (u.search || u.hash) problems.push(`${where}.url: no query or fragment allowed`)
            else url = e.url.replace(/\/+$/, '')
          } catch {
            problems.push(`${where}.url: "${e.url}" is not an absolute URL`)
          }
          if (url && urls.has(url)) problems.push(`${where}.url: same URL as ${urls.get(url)}`)
        }
        if (typeof e.site !== 'string' || !SITE_RE.test(e.site))
          problems.push(`${where}.site: expected a site name (letters, digits, ".", "_", "-")`)
        if (!num(e.lat) || e.lat < -90 || e.lat > 90)
          problems.push(`${where}.lat: expected a number in -90..90`)
        if (!num(e.lon) || e.lon < -180 || e.lon > 180)
          problems.push(`${where}.lon: expected a number in -180..180`)
        if (!num(e.capacityBytesPerSec) || e.capacityBytesPerSec <= 0)
          problems.push(`${where}.capacityBytesPerSec: expected a positive number`)
        if (e.cluster !== undefined && (typeof e.cluster !== 'string' || e.cluster === ''))
          problems.push(`${where}.cluster: expected a non-empty string`)
        if (e.weight !== undefined && (!num(e.weight) || e.weight <= 0 || e.weight > 1000))
          problems.push(`${where}.weight: expected a number in (0, 1000]`)
        if (problems.length !== before || !url) return
        const edge: EdgeConfig = Object.freeze({
          id: e.id as string,
          url,
          site: e.site as string,
          lat: e.lat as number,
          lon: e.lon as number,
          capacityBytesPerSec: e.capacityBytesPerSec as number,
          ...(e.cluster !== undefined ? { cluster: e.cluster as string } : {}),
          weight: (e.weight as number | undefined) ?? 1,
        })
        edges.push(edge)
        byId.set(edge.id, edge)
        urls.set(url, edge.id)
      })
  }
  const upstreams = d && typeof d === 'object' ? parseUpstreams(d.upstreams, seenIds, problems) : []
  if (problems.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `${source}: ${problems.length} problem(s):\n  ${problems.slice(0, 50).join('\n  ')}${problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''}`,
      { details: { problems } },
    )
  return Object.freeze({ edges: Object.freeze(edges), byId, upstreams: Object.freeze(upstreams) })
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

export function loadFleet(path: string): Registry {
  return parseFleet(readJsonFile(path, 'fleet file'), `fleet file ${path}`)
}
