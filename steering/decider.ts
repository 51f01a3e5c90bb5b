/**
 * The steering domain, without HTTP: locate a client, rank edges for a title from the
 * health loop's latest view, and build the (signed) URLs handed out. Routes call this;
 * it never imports fastify and never waits for the health loop.
 */
import type { Clock } from '../src/clock.js'
import { CdnError } from '../src/errors.js'
import { masterPath } from '../src/http/paths.js'
import { signedPrefix } from '../src/http/signing.js'
import type { SteerReason } from '../src/http/steered.js'
import type { SteeringConfig } from './config.js'
import { clientAddress, type Located, locate, type Region, type Zones } from './geo.js'
import { type Address, formatV4, formatV6, maskV4, maskV6 } from './ip.js'
import type { HealthView, ViewSource } from './health.js'
import { type EdgeInput, hash32, type Ranked, type SelectOptions } from './select.js'

export interface RequestFacts {
  readonly socketAddress: string | undefined
  readonly forwardedFor: string | string[] | undefined
  readonly query: { lat?: unknown; lon?: unknown; region?: unknown }
}

export interface Decision {
  /** The client's address as steering believes it (trusted proxies applied), for bound tokens. */
  readonly client: Address | undefined
  readonly located: Located
  readonly ranked: readonly Ranked[]
  readonly view: HealthView
}

/**
 * A client's key for its failover order (select.ts): its address, hashed; the same on every
 * steering instance, so instances that agree on health give the same lists.
 */
export function clientKey(a: Address): number {
  return hash32(a.family === 4 ? String(a.value) : (a.value as bigint).toString(16))
}

export class Decider {
  private readonly zoneRegions: ReadonlyMap<string, Region>
  private readonly table: Zones['table']
  /** The /play reason's ranking: as if every edge were up and unloaded. */
  private readonly idealOptions: SelectOptions
  private cached: {
    fleet: readonly EdgeInput[]
    regions: Map<string, Region & { kind: 'zone' | 'site' }>
  } | null = null

  constructor(
    private readonly config: SteeringConfig,
    zones: Zones,
    private readonly health: ViewSource,
    private readonly clock: Clock,
  ) {
    this.zoneRegions = zones.regions
    this.table = zones.table
    this.idealOptions = Object.freeze({ ...config.select, maxResults: 1, asIfAllUp: true })
  }

  /**
   * Zone regions first; fleet sites fill in names the zones file does not use. Follows the
   * fleet as edges join and leave (recomputed when the health view's fleet changes).
   */
  get regions(): ReadonlyMap<string, Region & { kind: 'zone' | 'site' }> {
    const fleet = this.health.view.edges
    if (this.cached?.fleet === fleet) return this.cached.regions
    const regions = new Map<string, Region & { kind: 'zone' | 'site' }>()
    for (const r of this.zoneRegions.values()) regions.set(r.name, { ...r, kind: 'zone' })
    const sites = new Map<string, { lat: number; lon: number; n: number }>()
    for (const e of fleet) {
      const s = sites.get(e.site) ?? { lat: 0, lon: 0, n: 0 }
      sites.set(e.site, { lat: s.lat + e.lat, lon: s.lon + e.lon, n: s.n + 1 })
    }
    for (const [name, s] of sites)
      if (!regions.has(name))
        regions.set(name, { name, lat: s.lat / s.n, lon: s.lon / s.n, region: name, kind: 'site' })
    this.cached = { fleet, regions }
    return regions
  }

  locate(facts: RequestFacts, address = this.client(facts)): Located {
    // The regions (with the fleet's sites) are only needed to resolve ?region=.
    const q = facts.query.region
    const byName = q !== undefined && q !== '' ? this.regions : this.zoneRegions
    return locate(facts.query, address, { table: this.table, regions: byName }, this.config.defaultLocation)
  }

  client(facts: RequestFacts): Address | undefined {
    return clientAddress(facts.socketAddress, facts.forwardedFor, this.config.trustedProxies)
  }

  /** Ranks edges for a title; throws 503 (never an empty list) when no edge can take it. */
  decide(facts: RequestFacts, title: string, maxResults = this.config.select.maxResults): Decision {
    const client = this.client(facts)
    const located = this.locate(facts, client)
    const view = this.health.view
    // A zone's location and the default are fixed objects: their candidate lists are cached.
    const fixed = located.source === 'zone' || located.source === 'default'
    const options = this.options(maxResults)
    const key = client === undefined ? undefined : clientKey(client)
    const ranked = view.index.select(located.location, view.bySlot, title, options, fixed, key)
    if (ranked.length === 0) throw this.noEdge(view)
    return { client, located, ranked, view }
  }

  /**
   * Why `d`'s choice is not the client's preferred edge, when health is why: the edge steering
   * would choose were every edge up and unloaded is down (or not yet checked), or over its
   * load threshold or its bounded-load share. Undefined when the choice is the preferred edge.
   */
  steeredReason(d: Decision, title: string): SteerReason | undefined {
    // Ranked over the live slots as if every edge were up and unloaded: no copy of the fleet.
    const preferred = d.view.index.select(d.located.location, d.view.bySlot, title, this.idealOptions)[0]
      ?.edge
    if (preferred === undefined || preferred.id === d.ranked[0]!.edge.id) return undefined
    const h = d.view.healthOf(preferred.id)
    return h === undefined || h.state !== 'up' ? 'down' : 'overloaded'
  }

  private readonly optionsByMax = new Map<number, SelectOptions>()

  private options(maxResults: number): SelectOptions {
    let o = this.optionsByMax.get(maxResults)
    if (!o) {
      // Bounded: routes ask for a handful of lengths (1, the configured list, the pathways).
      if (this.optionsByMax.size > 16) this.optionsByMax.clear()
      this.optionsByMax.set(maxResults, (o = Object.freeze({ ...this.config.select, maxResults })))
    }
    return o
  }

  private noEdge(view: HealthView): CdnError {
    const retryAfter = Math.max(1, Math.ceil(this.config.checkIntervalMs / 1000))
    const overloaded = view.health.filter((h) => h.state === 'up' && h.overloaded).map((h) => h.id)
    if (overloaded.length)
      return new CdnError('CDN_ERR_OVERLOADED', 'every reachable edge is over its load threshold', {
        details: { overloaded, retryAfter },
      })
    const why = Object.fromEntries(view.health.map((h) => [h.id, h.why ?? h.state]))
    return new CdnError('CDN_ERR_NO_HEALTHY_EDGE', 'no edge is healthy', {
      details: { edges: why, retryAfter },
    })
  }

  /**
   * The prefix that goes between an edge's base URL and /vod/...: a token for the whole title
   * (signed with the first key, bound to the client's network when configured), or nothing.
   */
  tokenPrefix(title: string, client?: Address): string {
    const key = this.config.signingKeys?.[0]
    if (!key) return ''
    const expiry = Math.floor((this.clock.now() + this.config.tokenTtlMs) / 1000)
    const net = client ? this.tokenNet(client) : undefined
    return signedPrefix(key, masterPath(title), { expiry, ...(net ? { net } : {}) })
  }

  private tokenNet(a: Address): string | undefined {
    if (a.family === 4) {
      const bits = this.config.tokenIpv4Prefix
      return bits ? `${formatV4(maskV4(a.value as number, bits))}/${bits}` : undefined
    }
    const bits = this.config.tokenIpv6Prefix
    return bits ? `${formatV6(maskV6(a.value as bigint, bits))}/${bits}` : undefined
  }

  masterUrl(edgeUrl: string, title: string, prefix = this.tokenPrefix(title)): string {
    return `${edgeUrl}${prefix}${masterPath(title)}`
  }
}
