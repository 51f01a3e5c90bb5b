/**
 * The demo topology: one JSON file that describes a whole CDN (origin, edges by site, a
 * tier-2 parent, steering's zones and regions, the sample titles). `cdn demo` starts it on
 * one machine; `cdn demo --emit-compose` turns the same file into compose.yaml.
 *
 * Validated as a whole: every problem is listed, each naming its field, so a person fixes
 * the file in one pass. Unknown keys are refused (a typo would otherwise fall back silently).
 * Pure: no I/O here but `loadTopology`.
 */
import { readFileSync } from 'node:fs'
import { parseSize } from '../../config/units.js'
import { CdnError } from '../../errors.js'
import { TITLE_RE } from '../../http/paths.js'
import { parseCidr } from '../../../steering/ip.js'

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

const ID_RE = /^[a-z0-9][a-z0-9-]{0,31}$/
type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

class Checker {
  readonly problems: string[] = []
  bad(where: string, why: string): void {
    this.problems.push(`${where}: ${why}`)
  }
  keys(o: Obj, where: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o))
      if (!allowed.includes(k) && k !== '$comment') this.bad(where ? `${where}.${k}` : k, 'unknown key')
  }
  obj(v: unknown, where: string): Obj {
    if (isObj(v)) return v
    this.bad(where, 'expected an object')
    return {}
  }
  arr(v: unknown, where: string, min = 0): unknown[] {
    if (Array.isArray(v) && v.length >= min) return v
    this.bad(where, min ? `expected an array of at least ${min}` : 'expected an array')
    return []
  }
  id(v: unknown, where: string): string {
    if (typeof v === 'string' && ID_RE.test(v)) return v
    this.bad(where, `expected an id matching ${ID_RE.source} (got ${JSON.stringify(v)})`)
    return ''
  }
  str(v: unknown, where: string, fallback?: string): string {
    if (v === undefined && fallback !== undefined) return fallback
    if (typeof v === 'string' && v !== '') return v
    this.bad(where, 'expected a non-empty string')
    return ''
  }
  num(v: unknown, where: string, min: number, max: number, fallback?: number): number {
    if (v === undefined && fallback !== undefined) return fallback
    if (isNum(v) && v >= min && v <= max) return v
    this.bad(where, `expected a number in ${min}..${max} (got ${JSON.stringify(v)})`)
    return min
  }
  port(v: unknown, where: string): number {
    if (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535) return v as number
    this.bad(where, `expected a port number 1..65535 (got ${JSON.stringify(v)})`)
    return 0
  }
  size(v: unknown, where: string, fallback: string): string {
    if (v === undefined) return fallback
    if (typeof v === 'string' && parseSize(v) !== undefined && parseSize(v)! > 0) return v
    this.bad(where, `expected a size such as 64MB or 2GB (got ${JSON.stringify(v)})`)
    return fallback
  }
}

/** Validates a parsed topology document; throws CDN_ERR_CONFIG listing every problem. */
export function parseTopology(doc: unknown, source = 'topology'): Topology {
  const c = new Checker()
  const d = c.obj(doc, '(top level)')
  c.keys(d, '', [
    'host',
    'basePort',
    'adminToken',
    'samples',
    'origin',
    'steering',
    'sites',
    'edges',
    'regions',
    'prefill',
  ])
  const host = c.str(d.host, 'host', '127.0.0.1')
  const adminToken = c.str(d.adminToken, 'adminToken')
  const ports = new Map<number, string>()
  const usePort = (v: unknown, where: string, owner: string): number => {
    const p = c.port(v, where)
    if (p && ports.has(p)) c.bad(where, `port ${p} is also used by ${ports.get(p)}`)
    else if (p) ports.set(p, owner)
    return p
  }

  const samples: SampleTitle[] = []
  c.arr(d.samples, 'samples', 1).forEach((raw, i) => {
    const w = `samples[${i}]`
    const s = c.obj(raw, w)
    c.keys(s, w, ['title', 'seconds', 'popularity'])
    const title = typeof s.title === 'string' && TITLE_RE.test(s.title) ? s.title : ''
    if (!title) c.bad(`${w}.title`, `expected a title id matching ${TITLE_RE.source}`)
    else if (samples.some((x) => x.title === title)) c.bad(`${w}.title`, `duplicate title "${title}"`)
    const seconds = c.num(s.seconds, `${w}.seconds`, 2, 600)
    if (isNum(s.seconds) && !Number.isInteger(s.seconds)) c.bad(`${w}.seconds`, 'expected whole seconds')
    samples.push({ title, seconds, popularity: c.num(s.popularity, `${w}.popularity`, 0, 1e9, 1) })
  })

  const o = c.obj(d.origin, 'origin')
  c.keys(o, 'origin', ['id', 'port'])
  const originId = c.id(o.id ?? 'origin', 'origin.id')
  const origin = { id: originId, port: usePort(o.port, 'origin.port', originId) }

  const s = c.obj(d.steering, 'steering')
  c.keys(s, 'steering', ['id', 'port', 'defaultRegion'])
  const steeringId = c.id(s.id ?? 'steering', 'steering.id')
  const steering = {
    id: steeringId,
    port: usePort(s.port, 'steering.port', steeringId),
    defaultRegion: c.str(s.defaultRegion, 'steering.defaultRegion'),
  }

  const sites: Site[] = []
  c.arr(d.sites, 'sites', 1).forEach((raw, i) => {
    const w = `sites[${i}]`
    const x = c.obj(raw, w)
    c.keys(x, w, ['id', 'name', 'lat', 'lon'])
    const id = c.id(x.id, `${w}.id`)
    if (id && sites.some((y) => y.id === id)) c.bad(`${w}.id`, `duplicate site "${id}"`)
    sites.push({
      id,
      name: c.str(x.name, `${w}.name`, id),
      lat: c.num(x.lat, `${w}.lat`, -90, 90),
      lon: c.num(x.lon, `${w}.lon`, -180, 180),
    })
  })

  const nodeIds = new Set([originId, steeringId])
  if (originId && originId === steeringId) c.bad('steering.id', `same id as the origin ("${originId}")`)
  const edges: EdgeNode[] = []
  c.arr(d.edges, 'edges', 1).forEach((raw, i) => {
    const e = c.obj(raw, `edges[${i}]`)
    const w = `edges[${i}]${typeof e.id === 'string' ? ` (${e.id})` : ''}`
    c.keys(e, w, ['id', 'site', 'tier', 'port', 'upstream', 'memorySize', 'diskSize', 'capacityBytesPerSec'])
    const id = c.id(e.id, `${w}.id`)
    if (id && nodeIds.has(id)) c.bad(`${w}.id`, `duplicate node id "${id}"`)
    nodeIds.add(id)
    const site = c.str(e.site, `${w}.site`)
    if (site && !sites.some((x) => x.id === site))
      c.bad(`${w}.site`, `unknown site "${site}" (not in "sites")`)
    const tier = e.tier === undefined ? 1 : e.tier === 1 || e.tier === 2 ? e.tier : 0
    if (!tier) c.bad(`${w}.tier`, `expected 1 or 2 (got ${JSON.stringify(e.tier)})`)
    edges.push({
      id,
      site,
      tier: (tier || 1) as 1 | 2,
      port: usePort(e.port, `${w}.port`, id),
      upstream: c.str(e.upstream, `${w}.upstream`, 'origin'),
      memorySize: c.size(e.memorySize, `${w}.memorySize`, '64MB'),
      diskSize: c.size(e.diskSize, `${w}.diskSize`, '1GB'),
      capacityBytesPerSec: c.num(e.capacityBytesPerSec, `${w}.capacityBytesPerSec`, 1, 1e13, 125_000_000),
    })
  })
  checkUpstreams(edges, originId, c)
  if (edges.length && !edges.some((e) => e.tier === 1)) c.bad('edges', 'no tier-1 edge for players to use')

  const regions: Region[] = []
  const cidrs = new Map<string, string>()
  c.arr(d.regions, 'regions', 1).forEach((raw, i) => {
    const w = `regions[${i}]`
    const r = c.obj(raw, w)
    c.keys(r, w, ['name', 'lat', 'lon', 'cidrs'])
    const name = c.id(r.name, `${w}.name`)
    if (name && regions.some((x) => x.name === name)) c.bad(`${w}.name`, `duplicate region "${name}"`)
    const list = r.cidrs === undefined ? [] : c.arr(r.cidrs, `${w}.cidrs`)
    list.forEach((cidr, j) => {
      const parsed = parseCidr(cidr)
      if (typeof parsed === 'string') c.bad(`${w}.cidrs[${j}]`, parsed)
      else if (cidrs.has(String(cidr)))
        c.bad(`${w}.cidrs[${j}]`, `${cidr} is also in ${cidrs.get(String(cidr))}`)
      else cidrs.set(String(cidr), name)
    })
    regions.push({
      name,
      lat: c.num(r.lat, `${w}.lat`, -90, 90),
      lon: c.num(r.lon, `${w}.lon`, -180, 180),
      cidrs: list.map(String),
    })
  })
  if (steering.defaultRegion && regions.length && !regions.some((r) => r.name === steering.defaultRegion))
    c.bad('steering.defaultRegion', `unknown region "${steering.defaultRegion}" (not in "regions")`)

  let prefill: Topology['prefill']
  if (d.prefill !== undefined) {
    const p = c.obj(d.prefill, 'prefill')
    c.keys(p, 'prefill', ['site'])
    const site = c.str(p.site, 'prefill.site')
    if (site && !edges.some((e) => e.site === site && e.tier === 1))
      c.bad('prefill.site', `no tier-1 edge at site "${site}"`)
    prefill = { site }
  }

  const basePort = d.basePort === undefined ? Math.min(...ports.keys()) : c.port(d.basePort, 'basePort')
  if (c.problems.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `${source}: ${c.problems.length} problem(s):\n  ${c.problems.join('\n  ')}`,
      { details: { problems: c.problems } },
    )
  return Object.freeze({
    host,
    basePort,
    adminToken,
    samples,
    origin,
    steering,
    sites,
    edges,
    regions,
    prefill,
  })
}

/** Every upstream names the origin or another edge, and following them always ends at the origin. */
function checkUpstreams(edges: readonly EdgeNode[], originId: string, c: Checker): void {
  const byId = new Map(edges.map((e) => [e.id, e]))
  for (const e of edges) {
    if (e.upstream === originId || e.upstream === 'origin') continue
    if (!byId.has(e.upstream)) {
      c.bad(`edges (${e.id}).upstream`, `unknown node "${e.upstream}" (the origin's id or an edge id)`)
      continue
    }
    const seen = new Set([e.id])
    for (let u = byId.get(e.upstream); u; u = byId.get(u.upstream)) {
      if (seen.has(u.id)) {
        c.bad(`edges (${e.id}).upstream`, `upstream chain loops through "${u.id}"`)
        break
      }
      seen.add(u.id)
    }
  }
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
