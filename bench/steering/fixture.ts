/**
 * Synthetic fleets and coverage zones for the steering benchmark, from a seeded PRNG so
 * every run measures the same inputs.
 */
import { formatV4 } from '../../steering/ip.js'
import type { EdgeInput } from '../../steering/select.js'
import { prng } from '../../fixtures/prng.js'

const place = (rnd: () => number) => ({
  lat: Math.round((Math.asin(2 * rnd() - 1) / Math.PI) * 180 * 100) / 100,
  lon: Math.round((rnd() * 360 - 180) * 100) / 100,
})

export interface FleetEdgeDoc {
  id: string
  url: string
  site: string
  lat: number
  lon: number
  capacityBytesPerSec: number
}

/** `n` edges in sites of 2–4 edges spread over the globe; URLs under `base` (one per edge). */
export function fleetDoc(n: number, base: string, seed = 1): { edges: FleetEdgeDoc[] } {
  const rnd = prng(seed)
  const edges: FleetEdgeDoc[] = []
  let site = 0
  while (edges.length < n) {
    const at = place(rnd)
    const size = 2 + Math.floor(rnd() * 3)
    for (let k = 0; k < size && edges.length < n; k++)
      edges.push({
        id: `s${site}-e${k}`,
        url: `${base}/e${edges.length}`,
        site: `s${site}`,
        ...at,
        capacityBytesPerSec: 1e9,
      })
    site++
  }
  return { edges }
}

/** The same fleet as select() sees it after a health round: all usable, modest loads. */
export function edgeInputs(n: number, seed = 1): EdgeInput[] {
  const rnd = prng(seed + 1000)
  return fleetDoc(n, 'http://bench', seed).edges.map((e) => ({
    id: e.id,
    url: e.url,
    site: e.site,
    lat: e.lat,
    lon: e.lon,
    weight: 1,
    load: rnd() * 0.5,
    usable: true,
    titlesComplete: new Set(rnd() < 0.2 ? ['title-1', 'title-2'] : []),
  }))
}

/**
 * A zones document with `n` prefixes: 90% IPv4 (lengths /12–/28), 10% IPv6 (/32–/64), each
 * mapped to one of 200 named regions. Returns a sample of addresses inside the blocks too.
 */
export function zonesDoc(n: number, seed = 2) {
  const rnd = prng(seed)
  const regions: Record<string, { lat: number; lon: number }> = {}
  for (let i = 0; i < 200; i++) regions[`r${i}`] = place(rnd)
  const zones: { cidr: string; region: string }[] = []
  const seen = new Set<string>()
  const samples: string[] = []
  while (zones.length < n) {
    const region = `r${Math.floor(rnd() * 200)}`
    let cidr: string
    let sample: string
    if (rnd() < 0.9) {
      const bits = 12 + Math.floor(rnd() * 17)
      const addr = Math.floor(rnd() * 2 ** 32) >>> 0
      const net = bits === 0 ? 0 : (addr & (0xffffffff << (32 - bits))) >>> 0
      cidr = `${formatV4(net)}/${bits}`
      sample = formatV4(addr)
    } else {
      const bits = 32 + Math.floor(rnd() * 33)
      const groups = Array.from({ length: 8 }, () => Math.floor(rnd() * 65536))
      groups[0] = 0x2000 | (groups[0]! & 0x0fff)
      let v = 0n
      for (const g of groups) v = (v << 16n) | BigInt(g)
      const net = (v >> BigInt(128 - bits)) << BigInt(128 - bits)
      const hex = (x: bigint) =>
        Array.from({ length: 8 }, (_, i) => ((x >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':')
      cidr = `${hex(net)}/${bits}`
      sample = hex(v)
    }
    if (seen.has(cidr)) continue
    seen.add(cidr)
    zones.push({ cidr, region })
    if (samples.length < 20_000) samples.push(sample)
  }
  return { doc: { regions, zones }, samples }
}
