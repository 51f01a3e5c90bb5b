/**
 * One comparison: every policy on the same trace at each cache size (a share of the
 * catalogue's bytes), plus the Che check of the LRU figure. Used by run.ts and by the test.
 */
import { type EdgeConfig } from '../../edge/config/spec.js'
import { edgeConfig } from '../../edge/config/validate.js'
import type { RenditionFilter } from '../../edge/prefill/planner.js'
import { nextUses } from './belady.js'
import type { Catalogue } from './catalogue.js'
import { cheApproximation } from './che.js'
import { Entries } from './edge-model.js'
import type { WorkloadParams } from './generate.js'
import { OracleDemand } from './oracle-demand.js'
import {
  beladyPolicy,
  clairvoyantPolicy,
  edgePolicy,
  type ForecastModel,
  lruPolicy,
  prefillPolicy,
  type Refills,
} from './policies.js'
import { type Policy, ReplayClock, type ReplayResult, replay } from './replay.js'
import { seeded } from './rng.js'
import { DAY_MS, type Trace, TraceBuilder } from './trace.js'

/** The edge's default memory tier is 512 MB in front of a 20 GB disk: the replay keeps the ratio. */
export const MEMORY_TO_DISK = 512e6 / 20e9

/**
 * The edge with its disk tier's policies set one way each (the rest as configured): every miss
 * admitted and plain LRU (the edge before issue 19), the frequency admission
 * (edge/cache/admission.ts), ladder-aware eviction (edge/cache/ladder.ts), and both; LRU
 * eviction unless a variant names the demand order.
 */
export const EDGE_VARIANTS = {
  'edge(all)': { admission: 'all', ladder: false },
  'edge(frequency)': { admission: 'frequency', ladder: false },
  'edge(ladder)': { admission: 'all', ladder: true },
  'edge(frequency+ladder)': { admission: 'frequency', ladder: true },
  'edge(tinylfu)': { admission: 'tinylfu', ladder: false },
  'edge(tinylfu+ladder)': { admission: 'tinylfu', ladder: true },
  'edge(demand)': { admission: 'demand', ladder: false, eviction: 'demand' },
  'edge(demand-eviction)': { admission: 'all', ladder: false, eviction: 'demand' },
  'edge(tinylfu+demand)': { admission: 'tinylfu', ladder: false, eviction: 'demand' },
} as const

/** The rendition height ladder-aware variants keep low (the run's --low-rendition, else 480p). */
export const LADDER_HEIGHT = 480

export type EdgeVariant = keyof typeof EDGE_VARIANTS

export type PolicyName =
  | 'lru'
  | 'edge'
  | 'edge(lru)'
  | EdgeVariant
  | 'edge+prefill(popularity)'
  | 'edge+prefill(forecast)'
  | 'edge(demand)+prefill(forecast)'
  | 'belady'
  | 'clairvoyant'
  | 'clairvoyant(demand)'
  | 'edge(demand-oracle)'

export const ALL_POLICIES: readonly PolicyName[] = [
  'lru',
  'edge',
  'edge(lru)',
  ...(Object.keys(EDGE_VARIANTS) as EdgeVariant[]),
  'edge+prefill(popularity)',
  'edge+prefill(forecast)',
  'edge(demand)+prefill(forecast)',
  'belady',
  'clairvoyant',
  'clairvoyant(demand)',
  'edge(demand-oracle)',
]

export interface CompareOptions {
  readonly trace: Trace
  /** Without a catalogue (a trace read from a file) the prefill policies are skipped. */
  readonly catalogue?: Catalogue
  readonly catalogueBytes: number
  /** Disk sizes as shares of the catalogue's bytes. */
  readonly shares: readonly number[]
  readonly policies?: readonly PolicyName[]
  readonly warmupDays: number
  readonly model: ForecastModel
  readonly renditions?: RenditionFilter
  /** Refills of the prefill policies during the day (policies.ts Refills). */
  readonly refill?: Refills
  /** The generator's parameters behind a generated trace (`edge(demand-oracle)` needs them). */
  readonly workload?: { readonly params: WorkloadParams; readonly sessionsPerDay: number }
  /** Edge settings other than the sizes (defaults: the edge's own). */
  readonly edge?: Partial<EdgeConfig>
  readonly onResult?: (share: number, policy: PolicyName, r: ReplayResult) => void
}

export interface SizeResult {
  readonly share: number
  readonly diskBytes: number
  readonly memoryBytes: number
  readonly results: Partial<Record<PolicyName, ReplayResult>>
  /** Che's estimate for the LRU at this size, from each measured day's request rates. */
  readonly che: { objectHitRatio: number; byteHitRatio: number }
}

export function configFor(diskBytes: number, over: Partial<EdgeConfig> = {}): Readonly<EdgeConfig> {
  return edgeConfig({
    upstream: ['http://127.0.0.1:9'],
    diskSize: Math.round(diskBytes),
    memorySize: Math.round(diskBytes * MEMORY_TO_DISK),
    ...over,
  })
}

/**
 * The edge with the disk policy it had by default before the demand policy (`--disk-eviction
 * lru --disk-admission all`), the rest as configured: `edge(lru)`, and what the prefill
 * policies and the clairvoyant bound hold the rest of the disk with (the `(demand)` ones use
 * the demand policy instead). Every row of theirs in bench/results was measured so.
 */
export function lruConfigFor(diskBytes: number, over: Partial<EdgeConfig> = {}): Readonly<EdgeConfig> {
  return configFor(diskBytes, { diskEviction: 'lru', diskAdmission: 'all', ...over })
}

export async function compare(o: CompareOptions): Promise<SizeResult[]> {
  const entries = new Entries(o.trace.objects)
  const next = nextUses(o.trace)
  const wanted = o.policies ?? ALL_POLICIES
  const out: SizeResult[] = []
  for (const share of o.shares) {
    const disk = o.catalogueBytes * share
    const config = configFor(disk, o.edge)
    const lruConfig = lruConfigFor(disk, o.edge)
    const results: Partial<Record<PolicyName, ReplayResult>> = {}
    for (const name of wanted) {
      const clock = new ReplayClock()
      let policy: Policy | undefined
      if (name === 'lru') policy = lruPolicy(disk, entries)
      else if (name === 'edge') policy = edgePolicy(config, entries, 'edge', clock)
      else if (name === 'edge(lru)') policy = edgePolicy(lruConfig, entries, name, clock)
      else if (name in EDGE_VARIANTS)
        policy = edgePolicy(
          configFor(disk, variant(EDGE_VARIANTS[name as EdgeVariant], o.edge)),
          entries,
          name,
          clock,
        )
      else if (name === 'belady') policy = beladyPolicy(o.trace, disk, entries, next)
      else if (name === 'clairvoyant') policy = clairvoyantPolicy(o.trace, lruConfig, entries)
      else if (name === 'edge(demand-oracle)') {
        if (o.catalogue && o.workload) {
          const w = o.workload
          const oracle = new OracleDemand(clock, o.catalogue, w.params, w.sessionsPerDay, o.trace.startMs)
          policy = edgePolicy(demandConfig(disk, o.edge), entries, name, clock, oracle)
        }
      } else if (name === 'clairvoyant(demand)')
        policy = clairvoyantPolicy(o.trace, demandConfig(disk, o.edge), entries, name, clock)
      else if (o.catalogue) {
        const feed = name === 'edge+prefill(popularity)' ? 'popularity' : 'forecast'
        const over = name === 'edge(demand)+prefill(forecast)' ? demandConfig(disk, o.edge) : lruConfig
        const p = prefillPolicy(feed, over, entries, o.catalogue, clock, o.model, o.renditions, o.refill)
        policy = { ...p, name }
      }
      if (!policy) continue
      const r = await replay(o.trace, policy, { warmupDays: o.warmupDays, clock })
      results[name] = r
      o.onResult?.(share, name, r)
    }
    out.push({
      share,
      diskBytes: disk,
      memoryBytes: config.memorySize,
      results,
      che: cheByDay(o.trace, disk, o.warmupDays, (id) => entries.fileSize(id, false)),
    })
  }
  return out
}

/** The edge with the demand policy (admission and eviction) at this disk size. */
function demandConfig(disk: number, edge: Partial<EdgeConfig> | undefined): Readonly<EdgeConfig> {
  return configFor(disk, variant(EDGE_VARIANTS['edge(demand)'], edge))
}

/** A variant's settings over the run's (a window or a height given for the run still applies). */
function variant(
  v: (typeof EDGE_VARIANTS)[EdgeVariant],
  edge: Partial<EdgeConfig> | undefined,
): Partial<EdgeConfig> {
  const height = edge?.diskLowRendition || LADDER_HEIGHT
  const eviction = 'eviction' in v ? v.eviction : 'lru'
  return {
    ...edge,
    diskAdmission: v.admission,
    diskLowRendition: v.ladder ? height : 0,
    diskEviction: eviction,
  }
}

/**
 * Che's estimate of an LRU of `capacity` over the trace: each measured day on its own, with
 * the day's request counts as rates (weighted by the day's requests and bytes).
 */
export function cheByDay(
  trace: Trace,
  capacity: number,
  warmupDays: number,
  sizeOf: (id: number) => number,
): { objectHitRatio: number; byteHitRatio: number } {
  let req = 0
  let hits = 0
  let reqBytes = 0
  let hitBytes = 0
  let i = 0
  const n = trace.ids.length
  while (i < n && trace.times[i]! < warmupDays * DAY_MS) i++
  while (i < n) {
    const end = (Math.floor(trace.times[i]! / DAY_MS) + 1) * DAY_MS
    const counts = new Map<number, number>()
    for (; i < n && trace.times[i]! < end; i++)
      counts.set(trace.ids[i]!, (counts.get(trace.ids[i]!) ?? 0) + 1)
    const ids = [...counts.keys()]
    const rates = ids.map((id) => counts.get(id)!)
    const che = cheApproximation(rates, ids.map(sizeOf), capacity)
    const dayReq = rates.reduce((s, r) => s + r, 0)
    const dayBytes = ids.reduce((s, id, k) => s + rates[k]! * trace.objects.bytes[id]!, 0)
    req += dayReq
    hits += dayReq * che.objectHitRatio
    reqBytes += dayBytes
    hitBytes += dayBytes * che.byteHitRatio
  }
  return { objectHitRatio: req ? hits / req : 0, byteHitRatio: reqBytes ? hitBytes / reqBytes : 0 }
}

/**
 * An independent-reference trace over the objects of `trace`, each requested at its rate in
 * `trace` (the setting Che's approximation assumes): `n` requests over two days (measure the second).
 */
export function irmTrace(trace: Trace, n: number, seed: number): { trace: Trace; rates: Float64Array } {
  const counts = new Float64Array(trace.objects.size)
  for (const id of trace.ids) counts[id]!++
  const cumulative = new Float64Array(counts.length)
  let sum = 0
  for (let i = 0; i < counts.length; i++) {
    sum += counts[i]!
    cumulative[i] = sum
  }
  const rng = seeded(seed)
  const b = new TraceBuilder(trace.objects)
  for (let k = 0; k < n; k++) {
    const u = rng() * sum
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cumulative[mid]! > u) hi = mid
      else lo = mid + 1
    }
    b.push((k / n) * 2 * DAY_MS, lo)
  }
  return { trace: b.build(trace.startMs), rates: counts }
}
