/**
 * Locating clients. A coverage-zone file maps CIDR blocks (IPv4 and IPv6) to locations; the
 * longest matching prefix wins. The table keeps one hash map per prefix length that is in
 * use, and a lookup masks the address once per length from the longest down, so its cost
 * grows with the number of distinct lengths (at most 33 + 129), never with the number of
 * prefixes: 100,000 prefixes cost the same per lookup as ten.
 *
 * Zones file:
 *   { "regions": { "rome": { "lat": 41.9, "lon": 12.5 } },
 *     "zones": [ { "cidr": "10.1.0.0/16", "region": "rome" },
 *                { "cidr": "2001:db8:1::/48", "lat": 40.7, "lon": -74, "region": "new-york" } ] }
 * A zone names a region, or carries lat/lon itself (and optionally a region name).
 */
import { CdnError } from '../errors.js'
import { type Address, type Cidr, inAnyCidr, maskV4, maskV6, parseAddress, parseCidr } from './ip.js'

export interface Location {
  readonly lat: number
  readonly lon: number
  readonly region?: string
}

export interface Region extends Location {
  readonly name: string
}

export class PrefixTable<T> {
  private readonly v4 = new Map<number, Map<number, T>>()
  private readonly v6 = new Map<number, Map<bigint, T>>()
  private v4Lengths: number[] = []
  private v6Lengths: number[] = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** Returns false when the exact block is already present. */
  insert(c: Cidr, value: T): boolean {
    if (c.family === 4) {
      let m = this.v4.get(c.bits)
      if (!m) {
        m = new Map()
        this.v4.set(c.bits, m)
        this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a)
      }
      if (m.has(c.value as number)) return false
      m.set(c.value as number, value)
    } else {
      let m = this.v6.get(c.bits)
      if (!m) {
        m = new Map()
        this.v6.set(c.bits, m)
        this.v6Lengths = [...this.v6.keys()].sort((a, b) => b - a)
      }
      if (m.has(c.value as bigint)) return false
      m.set(c.value as bigint, value)
    }
    this.count++
    return true
  }

  lookup(a: Address): T | undefined {
    if (a.family === 4) {
      const v = a.value as number
      for (const bits of this.v4Lengths) {
        const hit = this.v4.get(bits)!.get(maskV4(v, bits))
        if (hit !== undefined) return hit
      }
      return undefined
    }
    const v = a.value as bigint
    for (const bits of this.v6Lengths) {
      const hit = this.v6.get(bits)!.get(maskV6(v, bits))
      if (hit !== undefined) return hit
    }
    return undefined
  }
}

export interface Zones {
  readonly table: PrefixTable<Location>
  readonly regions: ReadonlyMap<string, Region>
}

export function emptyZones(): Zones {
  return { table: new PrefixTable(), regions: new Map() }
}

function isLat(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= -90 && v <= 90
}
function isLon(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= -180 && v <= 180
}

const REGION_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/

/** Validates a parsed zones document; throws CDN_ERR_CONFIG listing every problem. */
export function parseZones(doc: unknown, source = 'zones file'): Zones {
  const problems: string[] = []
  const zones = emptyZones()
  const regions = zones.regions as Map<string, Region>
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new CdnError('CDN_ERR_CONFIG', `${source}: expected a JSON object with "zones"`, {
      details: { problems: ['expected a JSON object'] },
    })
  const d = doc as Record<string, unknown>
  for (const key of Object.keys(d))
    if (key !== 'regions' && key !== 'zones') problems.push(`unknown key "${key}"`)
  if (d.regions !== undefined) {
    if (typeof d.regions !== 'object' || d.regions === null || Array.isArray(d.regions))
      problems.push('regions: expected an object of name → { lat, lon }')
    else
      for (const [name, r] of Object.entries(d.regions as Record<string, unknown>)) {
        const rr = (r ?? {}) as Record<string, unknown>
        if (!REGION_RE.test(name)) problems.push(`regions.${name}: bad region name`)
        if (!isLat(rr.lat)) problems.push(`regions.${name}.lat: expected a number in -90..90`)
        if (!isLon(rr.lon)) problems.push(`regions.${name}.lon: expected a number in -180..180`)
        if (isLat(rr.lat) && isLon(rr.lon))
          regions.set(name, { name, lat: rr.lat, lon: rr.lon, region: name })
      }
  }
  if (!Array.isArray(d.zones)) problems.push('zones: expected an array of { cidr, region | lat, lon }')
  else
    d.zones.forEach((z: unknown, i: number) => {
      const where = `zones[${i}]`
      if (typeof z !== 'object' || z === null) {
        problems.push(`${where}: expected an object`)
        return
      }
      const zz = z as Record<string, unknown>
      const c = parseCidr(zz.cidr)
      if (typeof c === 'string') problems.push(`${where}.cidr: ${c}`)
      let loc: Location | undefined
      const region = zz.region
      if (region !== undefined && (typeof region !== 'string' || !REGION_RE.test(region)))
        problems.push(`${where}.region: bad region name`)
      if (zz.lat !== undefined || zz.lon !== undefined) {
        if (!isLat(zz.lat)) problems.push(`${where}.lat: expected a number in -90..90`)
        if (!isLon(zz.lon)) problems.push(`${where}.lon: expected a number in -180..180`)
        if (isLat(zz.lat) && isLon(zz.lon))
          loc =
            typeof region === 'string' ? { lat: zz.lat, lon: zz.lon, region } : { lat: zz.lat, lon: zz.lon }
        if (loc && typeof region === 'string' && !regions.has(region))
          regions.set(region, { name: region, lat: loc.lat, lon: loc.lon, region })
      } else if (typeof region === 'string') {
        loc = regions.get(region)
        if (!loc) problems.push(`${where}.region: unknown region "${region}" (not in "regions")`)
      } else problems.push(`${where}: needs a region or lat and lon`)
      if (typeof c !== 'string' && loc && !zones.table.insert(c, loc))
        problems.push(`${where}.cidr: duplicate block ${String(zz.cidr)}`)
    })
  if (problems.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `${source}: ${problems.length} problem(s):\n  ${problems.slice(0, 50).join('\n  ')}${problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''}`,
      { details: { problems } },
    )
  return zones
}

/**
 * The client's address: the socket's, unless the socket is a trusted proxy, in which case
 * the first address from the right of X-Forwarded-For that is not itself a trusted proxy
 * (each proxy appends the address it saw, so everything left of that is the client's word
 * and can be forged). X-Forwarded-For from an untrusted socket is ignored.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: readonly Cidr[],
): Address | undefined {
  const sock = socketAddress ? parseAddress(socketAddress) : undefined
  if (!sock || trusted.length === 0 || !inAnyCidr(trusted, sock) || !forwardedFor) return sock
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  let last: Address = sock
  for (let i = hops.length - 1; i >= 0; i--) {
    const a = parseAddress(hops[i]!)
    if (!a) return last // garbage from here leftwards: stop at the last good hop
    if (!inAnyCidr(trusted, a)) return a
    last = a
  }
  return last
}

export type LocationSource = 'query' | 'region' | 'zone' | 'default'

export interface Located {
  readonly location: Location
  readonly source: LocationSource
}

/**
 * Where a request comes from: `?lat=&lon=` or `?region=` (for tests and the demo), else the
 * zone of its address, else the default. A malformed override is a 400, not a silent guess.
 */
export function locate(
  query: { lat?: unknown; lon?: unknown; region?: unknown },
  address: Address | undefined,
  zones: Zones,
  fallback: Location,
): Located {
  if (query.region !== undefined && query.region !== '') {
    const r = typeof query.region === 'string' ? zones.regions.get(query.region) : undefined
    if (!r)
      throw new CdnError('CDN_ERR_BAD_REQUEST', `unknown region "${String(query.region)}"`, {
        details: { regions: [...zones.regions.keys()] },
      })
    return { location: r, source: 'region' }
  }
  if (query.lat !== undefined || query.lon !== undefined) {
    const lat = Number(query.lat)
    const lon = Number(query.lon)
    if (query.lat === '' || query.lon === '' || !isLat(lat) || !isLon(lon))
      throw new CdnError(
        'CDN_ERR_BAD_REQUEST',
        'lat and lon must both be given, lat in -90..90, lon in -180..180',
      )
    return { location: { lat, lon }, source: 'query' }
  }
  const hit = address ? zones.table.lookup(address) : undefined
  if (hit) return { location: hit, source: 'zone' }
  return { location: fallback, source: 'default' }
}
