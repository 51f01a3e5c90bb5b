/**
 * The demo topology: one JSON file that describes a whole CDN (origin, edges by site, a
 * tier-2 parent, steering's zones and regions, the sample titles). `cdn demo` starts it on
 * one machine; `cdn demo --emit-compose` turns the same file into compose.yaml.
 *
 * Validated as a whole against a JSON Schema (topology-schema.ts), then for what a schema
 * cannot say (references, duplicates, loops): every problem is listed, each naming its JSON
 * path (`/edges/1/port: ...`), so a person fixes the file in one pass. Unknown keys are
 * refused (a typo would otherwise fall back silently). Pure: no I/O here but `loadTopology`.
 */
import { readFileSync } from 'node:fs'
import { compileSchema, configError } from '../../config/schema.js'
import { CdnError } from '../../errors.js'
import { parseCidr } from '../../../steering/ip.js'
import { TOPOLOGY_SCHEMA } from './topology-schema.js'

export interface SampleTitle {
  readonly title: string
  readonly seconds: number
  /** Relative popularity; the most popular sample is prefilled. */
  readonly popularity: number
}

export interface Site {
  readonly id: string
  readonly name: string
  readonly lat: number
  readonly lon: number
}

export interface EdgeNode {
  readonly id: string
  readonly site: string
  /** 1: players hit it (listed in steering's fleet). 2: a parent other edges fetch from. */
  readonly tier: 1 | 2
  readonly port: number
  /** "origin" or the id of another edge. */
  readonly upstream: string
  readonly memorySize: string
  readonly diskSize: string
  readonly capacityBytesPerSec: number
}

export interface Region {
  readonly name: string
  readonly lat: number
  readonly lon: number
  /** Address blocks whose clients are placed in this region. */
  readonly cidrs: readonly string[]
}

export interface Topology {
  readonly host: string
  /** The port the file's ports are written against; --base-port shifts every port by the difference. */
  readonly basePort: number
  readonly adminToken: string
  readonly samples: readonly SampleTitle[]
  readonly origin: { readonly id: string; readonly port: number }
  readonly steering: { readonly id: string; readonly port: number; readonly defaultRegion: string }
  readonly sites: readonly Site[]
  readonly edges: readonly EdgeNode[]
  readonly regions: readonly Region[]
  /** The site whose edges get the most popular sample before anyone asks. */
  readonly prefill: { readonly site: string } | undefined
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
/** The entries of an array that are objects, with their index (the schema reports the rest). */
const entries = (v: unknown): [number, Obj][] =>
  Array.isArray(v) ? v.flatMap((x, i): [number, Obj][] => (isObj(x) ? [[i, x]] : [])) : []

const validateShape = compileSchema(TOPOLOGY_SCHEMA)

/** Validates a parsed topology document; throws CDN_ERR_CONFIG listing every problem. */
export function parseTopology(doc: unknown, source = 'topology'): Topology {
  const problems = validateShape(doc)
  if (isObj(doc)) checkReferences(doc, (path, why) => problems.push(`${path}: ${why}`))
  if (problems.length) throw configError(source, problems)
  return build(doc as Obj)
}

type Report = (path: string, why: string) => void

/** What the schema cannot say: unique ids and ports, references that resolve, no loops. */
function checkReferences(d: Obj, bad: Report): void {
  const titles = new Set<string>()
  for (const [i, s] of entries(d.samples)) {
    const title = str(s.title)
    if (title && titles.has(title)) bad(`/samples/${i}/title`, `duplicate title "${title}"`)
    if (title) titles.add(title)
  }
  const ports = new Map<number, string>()
  const usePort = (v: unknown, path: string, owner: string) => {
    if (typeof v !== 'number') return
    if (ports.has(v)) bad(path, `port ${v} is also used by ${ports.get(v)}`)
    else ports.set(v, owner)
  }
  const origin = isObj(d.origin) ? d.origin : {}
  const steering = isObj(d.steering) ? d.steering : {}
  const originId = str(origin.id) ?? 'origin'
  const steeringId = str(steering.id) ?? 'steering'
  usePort(origin.port, '/origin/port', originId)
  usePort(steering.port, '/steering/port', steeringId)
  if (originId === steeringId) bad('/steering/id', `same id as the origin ("${originId}")`)

  const sites = new Set<string>()
  for (const [i, s] of entries(d.sites)) {
    const id = str(s.id)
    if (id && sites.has(id)) bad(`/sites/${i}/id`, `duplicate site "${id}"`)
    if (id) sites.add(id)
  }
  const nodes = new Set([originId, steeringId])
  const edges = entries(d.edges)
  for (const [i, e] of edges) {
    const id = str(e.id) ?? `#${i}`
    if (nodes.has(id)) bad(`/edges/${i}/id`, `duplicate node id "${id}"`)
    nodes.add(id)
    usePort(e.port, `/edges/${i}/port`, id)
    const site = str(e.site)
    if (site && !sites.has(site)) bad(`/edges/${i}/site`, `unknown site "${site}" (not in /sites)`)
  }
  checkUpstreams(edges, originId, bad)
  const tier1 = edges.filter(([, e]) => (e.tier ?? 1) === 1)
  if (edges.length && !tier1.length) bad('/edges', 'no tier-1 edge for players to use')

  checkRegions(d.regions, str(steering.defaultRegion), bad)
  const prefillSite = isObj(d.prefill) ? str(d.prefill.site) : undefined
  if (prefillSite && !tier1.some(([, e]) => e.site === prefillSite))
    bad('/prefill/site', `no tier-1 edge at site "${prefillSite}"`)
}

/** Region names unique, each address block valid and in one region only, the default known. */
function checkRegions(list: unknown, defaultRegion: string | undefined, bad: Report): void {
  const regions = new Set<string>()
  const cidrs = new Map<string, string>()
  for (const [i, r] of entries(list)) {
    const name = str(r.name) ?? `#${i}`
    if (regions.has(name)) bad(`/regions/${i}/name`, `duplicate region "${name}"`)
    regions.add(name)
    ;(Array.isArray(r.cidrs) ? r.cidrs : []).forEach((cidr: unknown, j) => {
      const parsed = parseCidr(cidr)
      if (typeof parsed === 'string') bad(`/regions/${i}/cidrs/${j}`, parsed)
      else if (cidrs.has(String(cidr)))
        bad(`/regions/${i}/cidrs/${j}`, `${cidr} is also in ${cidrs.get(String(cidr))}`)
      else cidrs.set(String(cidr), name)
    })
  }
  if (defaultRegion && regions.size && !regions.has(defaultRegion))
    bad('/steering/defaultRegion', `unknown region "${defaultRegion}" (not in /regions)`)
}

/** Every upstream names the origin or another edge, and following them always ends at the origin. */
function checkUpstreams(edges: readonly [number, Obj][], originId: string, bad: Report): void {
  const byId = new Map(edges.map(([, e]) => [e.id, e]))
  for (const [i, e] of edges) {
    const up = str(e.upstream) ?? 'origin'
    if (up === originId || up === 'origin') continue
    if (!byId.has(up)) {
      bad(`/edges/${i}/upstream`, `unknown node "${up}" (the origin's id or an edge id)`)
      continue
    }
    const seen = new Set([e.id])
    for (let u = byId.get(up); u; u = byId.get(u.upstream)) {
      if (seen.has(u.id)) {
        bad(`/edges/${i}/upstream`, `upstream chain loops through "${String(u.id)}"`)
        break
      }
      seen.add(u.id)
    }
  }
}

type Optional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>

/** The file as the schema admits it: what has a default may be left out. */
interface TopologyFile {
  readonly host?: string
  readonly basePort?: number
  readonly adminToken: string
  readonly samples: readonly Optional<SampleTitle, 'popularity'>[]
  readonly origin: { readonly id?: string; readonly port: number }
  readonly steering: { readonly id?: string; readonly port: number; readonly defaultRegion: string }
  readonly sites: readonly Optional<Site, 'name'>[]
  readonly edges: readonly Optional<
    EdgeNode,
    'tier' | 'upstream' | 'memorySize' | 'diskSize' | 'capacityBytesPerSec'
  >[]
  readonly regions: readonly Optional<Region, 'cidrs'>[]
  readonly prefill?: { readonly site: string }
}

/** The typed topology, with defaults, from a document that passed every check. */
function build(d: Obj): Topology {
  const t = d as unknown as TopologyFile
  const origin = { id: t.origin.id ?? 'origin', port: t.origin.port }
  const steering = {
    id: t.steering.id ?? 'steering',
    port: t.steering.port,
    defaultRegion: t.steering.defaultRegion,
  }
  const edges: EdgeNode[] = t.edges.map((e) => ({
    id: e.id,
    site: e.site,
    tier: e.tier ?? 1,
    port: e.port,
    upstream: e.upstream ?? 'origin',
    memorySize: e.memorySize ?? '64MB',
    diskSize: e.diskSize ?? '1GB',
    capacityBytesPerSec: e.capacityBytesPerSec ?? 125_000_000,
  }))
  const ports = [origin.port, steering.port, ...edges.map((e) => e.port)]
  return Object.freeze({
    host: t.host ?? '127.0.0.1',
    basePort: t.basePort ?? Math.min(...ports),
    adminToken: t.adminToken,
    samples: t.samples.map((s) => ({ title: s.title, seconds: s.seconds, popularity: s.popularity ?? 1 })),
    origin,
    steering,
    sites: t.sites.map((s) => ({ id: s.id, name: s.name ?? s.id, lat: s.lat, lon: s.lon })),
    edges,
    regions: t.regions.map((r) => ({ name: r.name, lat: r.lat, lon: r.lon, cidrs: [...(r.cidrs ?? [])] })),
    prefill: t.prefill ? { site: t.prefill.site } : undefined,
  })
}

/** Reads and validates a topology file, naming the file in every error. */
export function loadTopology(path: string): Topology {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new CdnError('CDN_ERR_CONFIG', `topology ${path}: ${(err as Error).message}`, { cause: err })
  }
  return parseTopology(doc, `topology ${path}`)
}

/** Samples by popularity, most popular first (ties by title, so the order is stable). */
export function byPopularity(samples: readonly SampleTitle[]): SampleTitle[] {
  return [...samples].sort((a, b) => b.popularity - a.popularity || a.title.localeCompare(b.title))
}
