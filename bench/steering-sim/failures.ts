/**
 * The failures of the simulated day: random single edges down for a while, and one whole
 * site down during its local evening peak. Seeded; each is a window [at, until) in seconds
 * from the start of the day.
 */
import { prng } from '../../fixtures/prng.js'
import { HOUR } from './workload.js'
import type { World } from './world.js'

export interface FailureParams {
  readonly seed: number
  /** Single edges that fail during the day, at uniform times. */
  readonly randomEdges: number
  /** Their time down: log-normal with this median (minutes) and sigma 0.7, at least 5 min. */
  readonly downMedianMin: number
  /** The site outage: the site with the most edges in `metro` (or the largest site). */
  readonly siteOutage: {
    readonly metro?: string
    /** Hour of the day (UTC) it starts; default: 21:00 at the site's local time. */
    readonly atHour?: number
    readonly minutes: number
  } | null
}

export interface Outage {
  readonly kind: 'edge' | 'site'
  readonly edges: readonly number[]
  readonly site: number
  readonly at: number
  readonly until: number
}

export function planFailures(p: FailureParams, world: World, hours: number): Outage[] {
  const rnd = prng(p.seed)
  const out: Outage[] = []
  if (p.siteOutage) {
    const o = p.siteOutage
    let best = -1
    world.sites.forEach((s, i) => {
      const inMetro = o.metro === undefined || s.name.startsWith(`${o.metro}-`)
      if (inMetro && (best < 0 || s.edges.length > world.sites[best]!.edges.length)) best = i
    })
    if (best < 0) throw new Error(`no site in metro ${o.metro}`)
    const site = world.sites[best]!
    const tz = Math.round(site.lon / 15)
    const atHour = o.atHour ?? (((21 - tz) % 24) + 24) % 24
    const at = Math.min(atHour, Math.max(0, hours - 1)) * HOUR
    out.push({ kind: 'site', edges: [...site.edges], site: best, at, until: at + o.minutes * 60 })
  }
  const busy = new Set(out.flatMap((o) => o.edges))
  for (let k = 0; k < p.randomEdges; k++) {
    const e = Math.floor(rnd() * world.edges.length)
    const at = Math.floor(rnd() * hours * HOUR)
    const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd())
    const down = Math.max(5, p.downMedianMin * Math.exp(0.7 * z)) * 60
    if (busy.has(e)) continue
    busy.add(e)
    out.push({ kind: 'edge', edges: [e], site: world.edgeSite[e]!, at, until: Math.round(at + down) })
  }
  return out.sort((a, b) => a.at - b.at)
}
