/**
 * The network-namespace mode's plan: from a topology (the one the demo, compose and Kubernetes
 * use) to namespaces, addresses, link delays and the nodes' flags. Pure, like plan.ts, whose
 * node plans it reuses: only the addresses differ.
 *
 * Layout (PREFIX is unique per run, so parallel runs never collide):
 * - `PREFIX-hub` holds a bridge `br0`; every other namespace has one veth `eth0` on it.
 * - Each node (origin, edges, steering) has its own namespace `PREFIX-ID`, placed at a site;
 *   each site has a client namespace `PREFIX-c-SITE` for players. Site number s (1-based, in
 *   file order) owns the block 10.77.s.0/24: its nodes are .10 up, its client .200, and the
 *   hub's own address in it .254. Every address lives inside these namespaces only.
 * - Every node is reached through the delaying relay (delay-relay.ts) in the hub, at its own
 *   address 10.77.255.N and its topology port: the URLs in steering's fleet, in the edges'
 *   `--upstream` and in players' answers are those, so every hop between sites pays the
 *   one-way delay of its great-circle distance (`msPer100Km` of round trip per 100 km, the
 *   speed of light in fibre plus routing), plus jitter.
 * - Each edge's uplink (its eth0, what it sends) is capped by tbf at its capacity.
 * - Steering's zones map each site's block to the site, so a client namespace's player is
 *   located where it is. Child edges get the origin as a second upstream, so a partition from
 *   their parent falls back to the origin.
 */
import { CdnError } from '../../errors.js'
import { distanceKm } from '../../../steering/select.js'
import type { RelayConfig } from './delay-relay.js'
import { buildPlan, type DemoPlan, type NodePlan, type PlanPaths } from './plan.js'
import type { Site, Topology } from './topology.js'

export interface NetnsOptions {
  /** Namespace name prefix, unique per run (e.g. `cdn` and a few random hex digits). */
  readonly prefix: string
  readonly paths: PlanPaths
  /** Round-trip milliseconds per 100 km of great-circle distance (default 1). */
  readonly msPer100Km?: number
  /** Extra delay per chunk, uniform in [0, jitterMs) (default 1). */
  readonly jitterMs?: number
  /** Where the origin and steering sit (site ids); defaults below. */
  readonly place?: { readonly origin?: string; readonly steering?: string }
  /** Flags added to steering's; default NETNS_STEERING_ARGS. */
  readonly steeringArgs?: readonly string[]
}

/**
 * Steering in this mode also takes an edge out when its uplink queues (tbf holds up to 400 ms):
 * 150 ms of queueing delay on /status, measured against the smallest round trip seen. Checks
 * get 2 s, so a long queue shows as delay rather than as a failure.
 */
export const NETNS_STEERING_ARGS: readonly string[] = ['--queue-delay-high', '150ms', '--check-timeout', '2s']

export interface NetnsNode {
  readonly id: string
  readonly role: NodePlan['role']
  readonly site: string
  /** Its namespace. */
  readonly ns: string
  /** Its address inside its namespace. */
  readonly address: string
  /** Where every other node and player reaches it (through the relay). */
  readonly relayAddress: string
  readonly port: number
  /** The hub's end of its veth. */
  readonly hubLink: string
  /** tbf rate on its uplink, for edges. */
  readonly uplinkBytesPerSec?: number
  readonly plan: NodePlan
}

export interface NetnsSite extends Site {
  readonly index: number
  readonly clientNs: string
  readonly clientAddress: string
  readonly clientHubLink: string
  readonly hubAddress: string
}

export interface NetnsPlan {
  readonly prefix: string
  readonly hub: string
  readonly sites: readonly NetnsSite[]
  readonly nodes: readonly NetnsNode[]
  /** One-way delay in ms between sites, keyed `a|b`. */
  readonly delayMs: Readonly<Record<string, number>>
  readonly relay: RelayConfig
  /** The demo plan with relay URLs, site zones and the origin as child edges' second upstream. */
  readonly demo: DemoPlan
}

const NET = '10.77'
export const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,11}$/

export function buildNetnsPlan(topo: Topology, opts: NetnsOptions): NetnsPlan {
  if (!PREFIX_PATTERN.test(opts.prefix))
    throw new CdnError('CDN_ERR_CONFIG', `netns prefix "${opts.prefix}" must match ${PREFIX_PATTERN}`)
  const nodeCount = topo.edges.length + 2
  if (topo.sites.length > 199 || nodeCount > 250)
    throw new CdnError('CDN_ERR_CONFIG', 'netns mode takes at most 199 sites and 250 nodes')
  const { prefix } = opts
  const sites: NetnsSite[] = topo.sites.map((s, i) => ({
    ...s,
    index: i + 1,
    clientNs: `${prefix}-c-${s.id}`,
    clientAddress: `${NET}.${i + 1}.200`,
    clientHubLink: `c${i + 1}`,
    hubAddress: `${NET}.${i + 1}.254`,
  }))
  const siteById = new Map(sites.map((s) => [s.id, s]))
  const known = (what: string, id: string | undefined) => {
    if (id !== undefined && !siteById.has(id))
      throw new CdnError('CDN_ERR_CONFIG', `netns: ${what} placed at unknown site "${id}"`)
    return id
  }
  const shield = topo.edges.find(
    (e) => e.tier === 2 && (e.upstream === 'origin' || e.upstream === topo.origin.id),
  )
  const originSite = known('origin', opts.place?.origin) ?? shield?.site ?? sites[0]!.id
  const region = topo.regions.find((r) => r.name === topo.steering.defaultRegion)
  const nearest = region
    ? [...sites].sort((a, b) => distanceKm(region, a) - distanceKm(region, b))[0]!.id
    : sites[0]!.id
  const steeringSite = known('steering', opts.place?.steering) ?? nearest

  const siteOf = new Map<string, string>([
    [topo.origin.id, originSite],
    [topo.steering.id, steeringSite],
    ...topo.edges.map((e) => [e.id, e.site] as [string, string]),
  ])
  const ids = [topo.origin.id, ...topo.edges.map((e) => e.id), topo.steering.id]
  const relayAddress = new Map(ids.map((id, i) => [id, `${NET}.255.${i + 1}`]))
  const demo = withNetnsWiring(
    buildPlan(topo, {
      host: '0.0.0.0',
      urlHost: (n) => relayAddress.get(n.id)!,
      paths: opts.paths,
    }),
    topo,
    sites,
    { steeringArgs: opts.steeringArgs ?? NETNS_STEERING_ARGS },
  )

  const perSite = new Map<string, number>()
  const capacity = new Map(topo.edges.map((e) => [e.id, e.capacityBytesPerSec]))
  const nodes: NetnsNode[] = ids.map((id, i) => {
    const site = siteById.get(siteOf.get(id)!)!
    const k = perSite.get(site.id) ?? 10
    perSite.set(site.id, k + 1)
    const plan = demo.nodes.find((n) => n.id === id)!
    const rate = capacity.get(id)
    return {
      id,
      role: plan.role,
      site: site.id,
      ns: `${prefix}-${id}`,
      address: `${NET}.${site.index}.${k}`,
      relayAddress: relayAddress.get(id)!,
      port: plan.port,
      hubLink: `n${i + 1}`,
      ...(rate !== undefined ? { uplinkBytesPerSec: rate } : {}),
      plan,
    }
  })

  const msPer100Km = opts.msPer100Km ?? 1
  const delayMs: Record<string, number> = {}
  for (const a of sites)
    for (const b of sites)
      delayMs[`${a.id}|${b.id}`] = Math.round((distanceKm(a, b) / 100) * (msPer100Km / 2) * 10) / 10
  const sources: Record<string, string> = {}
  for (const n of nodes) sources[n.address] = n.site
  for (const s of sites) sources[s.clientAddress] = s.id
  const relay: RelayConfig = {
    routes: nodes.map((n) => ({
      id: n.id,
      site: n.site,
      listenHost: n.relayAddress,
      listenPort: n.port,
      targetHost: n.address,
      targetPort: n.port,
    })),
    sources,
    siteAddress: Object.fromEntries(sites.map((s) => [s.id, s.hubAddress])),
    delayMs,
    jitterMs: opts.jitterMs ?? 1,
    maxQueuedBytes: 4 << 20,
  }
  return { prefix, hub: `${prefix}-hub`, sites, nodes, delayMs, relay, demo }
}

/** Steering's zones become the sites' blocks; child edges fall back to the origin. */
function withNetnsWiring(
  plan: DemoPlan,
  topo: Topology,
  sites: readonly NetnsSite[],
  opts: { steeringArgs: readonly string[] },
): DemoPlan {
  const zones: DemoPlan['zones'] = { regions: {}, zones: [] }
  for (const s of sites) {
    zones.regions[s.id] = { lat: s.lat, lon: s.lon }
    zones.zones.push({ cidr: `${NET}.${s.index}.0/24`, region: s.id })
  }
  const childOfEdge = new Set(
    topo.edges.filter((e) => e.upstream !== 'origin' && e.upstream !== topo.origin.id).map((e) => e.id),
  )
  const nodes = plan.nodes.map((n): NodePlan => {
    if (n.role === 'edge' && childOfEdge.has(n.id))
      return { ...n, args: [...n.args, '--upstream', plan.origin.httpUrl] }
    if (n.role === 'steering') return { ...n, args: [...n.args, ...opts.steeringArgs] }
    return n
  })
  return {
    ...plan,
    nodes,
    zones,
    steering: nodes.find((n) => n.role === 'steering')!,
    origin: nodes.find((n) => n.role === 'origin')!,
    prefill: plan.prefill
      ? { ...plan.prefill, edges: plan.prefill.edges.map((e) => nodes.find((n) => n.id === e.id)!) }
      : undefined,
  }
}
