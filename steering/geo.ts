/**
 * Locating clients. A coverage-zone file maps CIDR blocks (IPv4 and IPv6) to locations; the
 * longest matching prefix wins. CIDR blocks nest but never partly overlap, so the table is
 * flattened once into disjoint ranges (each carrying its most specific location) and a
 * lookup is a bisection: O(log n), ~17 steps for 100,000 prefixes, whatever mix of prefix
 * lengths (a per-length hash-map design costs one probe per length in use, up to 162, and
 * BigInt hashing made its IPv6 probes slow).
 *
 * Zones file:
 *   { "regions": { "rome": { "lat": 41.9, "lon": 12.5 } },
 *     "zones": [ { "cidr": "10.1.0.0/16", "region": "rome" },
 *                { "cidr": "2001:db8:1::/48", "lat": 40.7, "lon": -74, "region": "new-york" } ] }
 * A zone names a region, or carries lat/lon itself (and optionally a region name).
 */
import { compileSchema, configError, LATITUDE, LONGITUDE } from '../src/config/schema.js'
import { CdnError } from '../src/errors.js'
import { type Address, type Cidr, inAnyCidr, parseAddress, parseCidr } from './ip.js'

export interface Location {
  readonly lat: number
  readonly lon: number
  readonly region?: string
}

export interface Region extends Location {
  readonly name: string
}

interface Entry<T> {
  readonly start: bigint
  readonly end: bigint
  readonly bits: number
  readonly value: T
}

/**
 * The prefixes flattened into disjoint ranges, each with its most specific value, and
 * searched by bisection: ~17 steps for 100,000 prefixes, whatever their lengths. IPv4
 * starts live in a Float64Array; IPv6 starts as four uint32 words (no BigInt on lookup).
 */
class RangeIndex<T> {
  readonly starts: Float64Array | Uint32Array[]
  readonly values: (T | undefined)[]
  /** IPv4: for each /16, the index of the first range starting in or after it. */
  private readonly buckets: Uint32Array | null = null

  constructor(entries: Entry<T>[], family: 4 | 6) {
    entries.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.bits - b.bits))
    const points: bigint[] = []
    const values: (T | undefined)[] = []
    const emit = (at: bigint, v: T | undefined) => {
      if (points.length && points[points.length - 1] === at) values[values.length - 1] = v
      else if (!values.length || values[values.length - 1] !== v) {
        points.push(at)
        values.push(v)
      }
    }
    const stack: Entry<T>[] = []
    const close = (before: bigint | undefined) => {
      while (stack.length && (before === undefined || stack[stack.length - 1]!.end < before)) {
        const top = stack.pop()!
        emit(top.end + 1n, stack[stack.length - 1]?.value)
      }
    }
    for (const e of entries) {
      close(e.start)
      emit(e.start, e.value)
      stack.push(e)
    }
    close(undefined)
    this.values = values
    if (family === 4) {
      const starts = Float64Array.from(points, Number)
      this.starts = starts
      // A first hop by the top 16 bits leaves a bisection over a handful of ranges: a couple
      // of cache lines per lookup instead of one miss per step over a multi-MB array.
      const buckets = new Uint32Array(65537)
      let k = 0
      for (let b = 0; b <= 65536; b++) {
        while (k < starts.length && starts[k]! < b * 65536) k++
        buckets[b] = k
      }
      this.buckets = buckets
    } else
      this.starts = [0, 1, 2, 3].map((w) =>
        Uint32Array.from(points, (p) => Number((p >> BigInt(96 - 32 * w)) & 0xffffffffn)),
      )
  }

  lookupV4(v: number): T | undefined {
    const s = this.starts as Float64Array
    const b = v >>> 16
    let lo = Math.max(0, this.buckets![b]! - 1)
    let hi = this.buckets![b + 1]! - 1
    if (hi < 0 || v < s[lo]!) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (s[mid]! <= v) lo = mid
      else hi = mid - 1
    }
    return this.values[lo]
  }

  lookupV6(w: readonly [number, number, number, number]): T | undefined {
    const [s0, s1, s2, s3] = this.starts as Uint32Array[]
    const le = (i: number) => {
      if (s0![i] !== w[0]) return s0![i]! < w[0]
      if (s1![i] !== w[1]) return s1![i]! < w[1]
      if (s2![i] !== w[2]) return s2![i]! < w[2]
      return s3![i]! <= w[3]
    }
    let lo = 0
    let hi = this.values.length - 1
    if (hi < 0 || !le(0)) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (le(mid)) lo = mid
      else hi = mid - 1
    }
    return this.values[lo]
  }
}

/**
 * Longest-prefix match over IPv4 and IPv6 blocks. Inserts go to a list (duplicates
 * refused); the first lookup after an insert builds the range index.
 */
export class PrefixTable<T> {
  private readonly entries: { 4: Entry<T>[]; 6: Entry<T>[] } = { 4: [], 6: [] }
  private readonly keys = new Set<string>()
  private index: { 4: RangeIndex<T>; 6: RangeIndex<T> } | null = null

  get size(): number {
    return this.keys.size
  }

  /** Returns false when the exact block is already present. */
  insert(c: Cidr, value: T): boolean {
    const key = `${c.family}/${c.bits}/${c.value}`
    if (this.keys.has(key)) return false
    this.keys.add(key)
    const width = c.family === 4 ? 32 : 128
    const start = BigInt(c.value)
    const end = start + (1n << BigInt(width - c.bits)) - 1n
    this.entries[c.family].push({ start, end, bits: c.bits, value })
    this.index = null
    return true
  }

  /** Builds the range index now (a zones file is indexed at load, not by the first request). */
  build(): this {
    this.index ??= { 4: new RangeIndex(this.entries[4], 4), 6: new RangeIndex(this.entries[6], 6) }
    return this
  }

  lookup(a: Address): T | undefined {
    this.index ??= { 4: new RangeIndex(this.entries[4], 4), 6: new RangeIndex(this.entries[6], 6) }
    if (a.family === 4) return this.index[4].lookupV4(a.value as number)
    const v = a.value as bigint
    return this.index[6].lookupV6([
      Number(v >> 96n),
      Number((v >> 64n) & 0xffffffffn),
      Number((v >> 32n) & 0xffffffffn),
      Number(v & 0xffffffffn),
    ])
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
const region = {
  type: 'string',
  pattern: REGION_RE.source,
  hint: 'a region name: letters, digits, " ", ".", "_" or "-" (at most 64)',
}

const validateZones = compileSchema({
  type: 'object',
  properties: {
    $comment: { type: 'string' },
    regions: {
      type: 'object',
      propertyNames: region,
      additionalProperties: {
        type: 'object',
        properties: { lat: LATITUDE, lon: LONGITUDE },
        required: ['lat', 'lon'],
        additionalProperties: false,
      },
    },
    zones: {
      type: 'array',
      items: {
        type: 'object',
        properties: { cidr: { type: 'string' }, region, lat: LATITUDE, lon: LONGITUDE },
        required: ['cidr'],
        additionalProperties: false,
        dependencies: { lat: ['lon'], lon: ['lat'] },
        allOf: [
          { anyOf: [{ required: ['region'] }, { required: ['lat'] }], hint: 'needs a region or lat and lon' },
        ],
      },
    },
  },
  required: ['zones'],
  additionalProperties: false,
})

interface ZoneEntry {
  cidr: string
  region?: string
  lat?: number
  lon?: number
}

/**
 * Validates a parsed zones document (JSON Schema, then what it cannot say: each CIDR parses,
 * named regions exist, no block twice); throws CDN_ERR_CONFIG listing every problem by path.
 */
export function parseZones(doc: unknown, source = 'zones file'): Zones {
  const problems = validateZones(doc)
  const zones = emptyZones()
  const regions = zones.regions as Map<string, Region>
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as { regions?: unknown; zones?: unknown }
  if (typeof d.regions === 'object' && d.regions !== null)
    for (const [name, r] of Object.entries(d.regions as Record<string, { lat?: unknown; lon?: unknown }>))
      if (isLat(r?.lat) && isLon(r.lon)) regions.set(name, { name, lat: r.lat, lon: r.lon, region: name })
  ;(Array.isArray(d.zones) ? d.zones : []).forEach((raw: unknown, i: number) => {
    if (typeof raw !== 'object' || raw === null) return
    const z = raw as ZoneEntry
    const c = parseCidr(z.cidr)
    if (typeof c === 'string') {
      if (typeof z.cidr === 'string') problems.push(`/zones/${i}/cidr: ${c}`)
      return
    }
    const loc = zoneLocation(z, regions)
    if (loc === 'unknown')
      problems.push(`/zones/${i}/region: unknown region "${String(z.region)}" (not in /regions)`)
    else if (loc && !zones.table.insert(c, loc))
      problems.push(`/zones/${i}/cidr: duplicate block ${String(z.cidr)}`)
  })
  if (problems.length) throw configError(source, problems)
  zones.table.build()
  return zones
}

/** A zone's place: its own lat/lon (defining its region if new), else its region's. */
function zoneLocation(z: ZoneEntry, regions: Map<string, Region>): Location | 'unknown' | undefined {
  const name = typeof z.region === 'string' && REGION_RE.test(z.region) ? z.region : undefined
  if (isLat(z.lat) && isLon(z.lon)) {
    if (name && !regions.has(name)) regions.set(name, { name, lat: z.lat, lon: z.lon, region: name })
    return name ? { lat: z.lat, lon: z.lon, region: name } : { lat: z.lat, lon: z.lon }
  }
  if (z.lat !== undefined || z.lon !== undefined || !name) return undefined
  return regions.get(name) ?? 'unknown'
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
    const a = hopAddress(hops[i]!)
    if (!a) return last // garbage from here leftwards: stop at the last good hop
    if (!inAnyCidr(trusted, a)) return a
    last = a
  }
  return last
}

/**
 * One X-Forwarded-For hop: an address, or an address with the port some proxies add (Azure's
 * Application Gateway, IIS's ARR: `203.0.113.9:51234`, `[2001:db8::1]:443`), or a bracketed IPv6.
 */
function hopAddress(hop: string): Address | undefined {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(hop) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(hop)
  if (!m) return parseAddress(hop)
  return m[2] !== undefined && Number(m[2]) > 65_535 ? undefined : parseAddress(m[1]!)
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
    const lat = decimal(query.lat)
    const lon = decimal(query.lon)
    if (!isLat(lat) || !isLon(lon))
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

/** A coordinate written as a decimal number (as JavaScript prints one; not hex, not blank), else NaN. */
function decimal(v: unknown): number {
  return typeof v === 'string' && v.length <= 32 && /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(v)
    ? Number(v)
    : Number.NaN
}
