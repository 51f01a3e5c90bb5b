/**
 * From a validated topology to what must run: each node's role, port, URL and command-line
 * flags, and the files steering reads (fleet.json, zones.json). Pure, so the local demo
 * (`cdn demo`) and the containers (`cdn demo --emit-compose`) are built from one plan and
 * cannot drift apart. The flags are those of `cdn origin|edge|steering --help`.
 *
 * With TLS (the local demo's default), every node serves HTTPS with HTTP/2 on its port plus
 * TLS_PORT_OFFSET (8080 → 8443) and keeps plain HTTP on its topology port: browsers get the
 * HTTPS URLs (steering's fleet names them, so a page on https never meets an http URL), while
 * the hops between nodes (edge to parent to origin), the demo's own checks, curl and
 * Prometheus use the plain ones. The hops never leave the machine, and compose (which has no
 * certificates) wires them the same way.
 */
import { join } from 'node:path'
import { formatSize } from '../../config/units.js'
import { CdnError } from '../../errors.js'
import { byPopularity, type EdgeNode, type Topology } from './topology.js'

export type Role = 'origin' | 'edge' | 'steering'

export interface NodePlan {
  readonly id: string
  readonly role: Role
  /** The plain-HTTP port (the topology's, shifted). */
  readonly port: number
  /** With TLS: the HTTPS (HTTP/2) port. */
  readonly tlsPort?: number
  /** Base URL browsers use (https with TLS), no trailing slash. */
  readonly url: string
  /** Base URL over plain HTTP: what other nodes and the demo itself use. */
  readonly httpUrl: string
  /** Flags after the role: `cdn ROLE ...args`. */
  readonly args: readonly string[]
  readonly tier?: 1 | 2
  readonly site?: string
}

export interface DemoPlan {
  readonly nodes: readonly NodePlan[]
  readonly fleet: { edges: FleetEdge[]; upstreams: FleetUpstream[] }
  readonly zones: {
    regions: Record<string, { lat: number; lon: number }>
    zones: { cidr: string; region: string }[]
  }
  readonly origin: NodePlan
  readonly steering: NodePlan
  /** Tier-1 edges of the prefill site, and the title to put there. */
  readonly prefill: { readonly edges: readonly NodePlan[]; readonly title: string } | undefined
  readonly sampleTitles: readonly string[]
}

interface FleetEdge {
  id: string
  url: string
  site: string
  lat: number
  lon: number
  capacityBytesPerSec: number
  cluster: string
}

/** A node above the edges, for steering's view of the delivery tree (steering/upstreams.ts). */
interface FleetUpstream {
  id: string
  url: string
  role: 'edge' | 'origin'
  site?: string
  lat?: number
  lon?: number
  upstream?: string
  serves: string[]
}

/** Where each node keeps its files: a local data dir, or container paths. */
export interface PlanPaths {
  /** A node's own directory (store, cache). */
  nodeDir(id: string): string
  /** Where steering reads fleet.json and zones.json. */
  configDir: string
}

/** HTTPS port = plain port + this (8080 → 8443, 8081 → 8444, ...). */
export const TLS_PORT_OFFSET = 363

/** The files every node serves HTTPS with (src/cli/demo/demo-tls.ts). */
export interface PlanTls {
  readonly caCert: string
  readonly cert: string
  readonly key: string
}

export interface PlanOptions {
  /** Shift every port so the topology's basePort becomes this one. */
  basePort?: number
  /** Address the nodes listen on. */
  host?: string
  /** Host name other nodes and browsers use to reach a node; default from host. */
  urlHost?: (node: { id: string; role: Role }) => string
  paths: PlanPaths
  /** Serve HTTPS beside plain HTTP with these files. */
  tls?: PlanTls
}

export function localPaths(dataDir: string): PlanPaths {
  return { nodeDir: (id) => join(dataDir, 'nodes', id), configDir: join(dataDir, 'steering') }
}

export function buildPlan(topo: Topology, opts: PlanOptions): DemoPlan {
  const shift = opts.basePort === undefined ? 0 : opts.basePort - topo.basePort
  const host = opts.host ?? topo.host
  const publicHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const urlFor = (id: string, role: Role, port: number, scheme = 'http') => {
    const h = opts.urlHost ? opts.urlHost({ id, role }) : publicHost
    return `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}`
  }
  const { tls } = opts
  /** Port, URLs and TLS flags of a node whose plain port is `port`. */
  const listen = (id: string, role: Role, port: number) => {
    const httpUrl = urlFor(id, role, port)
    if (!tls) return { port, url: httpUrl, httpUrl, args: ['--port', String(port)] }
    const tlsPort = port + TLS_PORT_OFFSET
    return {
      port,
      tlsPort,
      url: urlFor(id, role, tlsPort, 'https'),
      httpUrl,
      args: [
        '--port',
        String(tlsPort),
        '--http-port',
        String(port),
        '--tls-cert',
        tls.cert,
        '--tls-key',
        tls.key,
      ],
    }
  }
  const { paths } = opts
  const sites = new Map(topo.sites.map((s) => [s.id, s]))

  const originPort = topo.origin.port + shift
  const originDir = paths.nodeDir(topo.origin.id)
  const originListen = listen(topo.origin.id, 'origin', originPort)
  const origin: NodePlan = {
    id: topo.origin.id,
    role: 'origin',
    ...originListen,
    args: [
      '--id',
      topo.origin.id,
      '--host',
      host,
      ...originListen.args,
      '--store',
      join(originDir, 'store'),
      '--ingest-dir',
      join(originDir, 'ingest'),
      '--admin-token',
      topo.adminToken,
      '--samples',
      topo.samples.map((s) => `${s.title}:${s.seconds}`).join(','),
    ],
  }

  const edgeUrl = new Map<string, string>()
  const edgeHttpUrl = new Map<string, string>()
  const edges: NodePlan[] = []
  for (const e of upstreamFirst(topo.edges)) {
    const l = listen(e.id, 'edge', e.port + shift)
    edgeUrl.set(e.id, l.url)
    edgeHttpUrl.set(e.id, l.httpUrl)
    const upstream =
      e.upstream === 'origin' || e.upstream === topo.origin.id ? origin.httpUrl : edgeHttpUrl.get(e.upstream)!
    edges.push({
      id: e.id,
      role: 'edge',
      ...l,
      tier: e.tier,
      site: e.site,
      args: [
        '--id',
        e.id,
        '--host',
        host,
        ...l.args,
        '--upstream',
        upstream,
        '--cache-dir',
        join(paths.nodeDir(e.id), 'cache'),
        '--memory-size',
        e.memorySize,
        '--disk-size',
        e.diskSize,
        '--admin-token',
        topo.adminToken,
        '--capacity',
        formatSize(Math.round(e.capacityBytesPerSec)),
      ],
    })
  }

  const fleet = {
    edges: topo.edges
      .filter((e) => e.tier === 1)
      .map((e) => {
        const site = sites.get(e.site)!
        return {
          id: e.id,
          url: edgeUrl.get(e.id)!,
          site: e.site,
          lat: site.lat,
          lon: site.lon,
          capacityBytesPerSec: e.capacityBytesPerSec,
          cluster: site.name,
        }
      }),
    upstreams: [
      ...topo.edges
        .filter((e) => e.tier === 2)
        .map((e): FleetUpstream => {
          const site = sites.get(e.site)!
          return {
            id: e.id,
            url: edgeUrl.get(e.id)!,
            role: 'edge',
            site: e.site,
            lat: site.lat,
            lon: site.lon,
            upstream: e.upstream === 'origin' ? topo.origin.id : e.upstream,
            serves: topo.edges.filter((c) => c.tier === 1 && c.upstream === e.id).map((c) => c.id),
          }
        }),
      {
        id: topo.origin.id,
        url: origin.url,
        role: 'origin',
        serves: topo.edges
          .filter((c) => c.tier === 1 && (c.upstream === 'origin' || c.upstream === topo.origin.id))
          .map((c) => c.id),
      } satisfies FleetUpstream,
    ],
  }
  const zones: DemoPlan['zones'] = { regions: {}, zones: [] }
  for (const r of topo.regions) {
    zones.regions[r.name] = { lat: r.lat, lon: r.lon }
    for (const cidr of r.cidrs) zones.zones.push({ cidr, region: r.name })
  }

  const defaultRegion = topo.regions.find((r) => r.name === topo.steering.defaultRegion)!
  const steeringPort = topo.steering.port + shift
  const steeringListen = listen(topo.steering.id, 'steering', steeringPort)
  const steering: NodePlan = {
    id: topo.steering.id,
    role: 'steering',
    ...steeringListen,
    args: [
      '--host',
      host,
      ...steeringListen.args,
      // It checks the edges at the https URLs it hands out.
      ...(tls ? ['--edge-ca', tls.caCert] : []),
      '--fleet',
      join(paths.configDir, 'fleet.json'),
      '--zones',
      join(paths.configDir, 'zones.json'),
      '--default-location',
      `${defaultRegion.lat},${defaultRegion.lon}`,
      // A demo wants a dead edge noticed in seconds.
      '--check-interval',
      '1s',
    ],
  }

  const nodes = [origin, ...edges, steering]
  if (tls) assertPortsDistinct(nodes)
  const top = byPopularity(topo.samples)[0]
  const prefillSite = topo.prefill?.site
  const prefill =
    prefillSite && top
      ? { edges: edges.filter((e) => e.site === prefillSite && e.tier === 1), title: top.title }
      : undefined
  return {
    nodes,
    fleet,
    zones,
    origin,
    steering,
    prefill,
    sampleTitles: byPopularity(topo.samples).map((s) => s.title),
  }
}

/** Every port a node listens on, with TLS: no HTTPS port may be another node's plain port. */
function assertPortsDistinct(nodes: readonly NodePlan[]): void {
  const seen = new Map<number, string>()
  const problems: string[] = []
  for (const n of nodes)
    for (const [port, what] of [
      [n.port, 'HTTP'],
      [n.tlsPort!, 'HTTPS'],
    ] as const) {
      const other = seen.get(port)
      if (port > 65535)
        problems.push(`${n.id}: HTTPS port ${port} is above 65535 (move the demo with --base-port)`)
      else if (other) problems.push(`port ${port}: ${n.id} ${what} and ${other}`)
      seen.set(port, `${n.id} ${what}`)
    }
  if (problems.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `with TLS every node also listens on its port + ${TLS_PORT_OFFSET} (HTTPS):\n  ${problems.join('\n  ')}`,
      { details: { problems } },
    )
}

/** Edges ordered so that each one's upstream edge comes before it (validation ruled out loops). */
function upstreamFirst(edges: readonly EdgeNode[]): EdgeNode[] {
  const out: EdgeNode[] = []
  const placed = new Set<string>()
  const byId = new Map(edges.map((e) => [e.id, e]))
  const place = (e: EdgeNode) => {
    if (placed.has(e.id)) return
    const up = byId.get(e.upstream)
    if (up) place(up)
    placed.add(e.id)
    out.push(e)
  }
  for (const e of edges) place(e)
  return out
}
