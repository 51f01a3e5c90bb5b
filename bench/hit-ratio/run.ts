/**
 * `npm run bench:hit-ratio` (after `npm run build`): how close the edge's cache is to the best
 * any cache could do. Generates a seeded trace (generate.ts; or reads one: --trace FILE), then
 * replays it in-process through every policy (policies.ts) at disk sizes of 5, 10, 20 and 40%
 * of the catalogue's bytes, and checks the LRU figure against Che's approximation. Results:
 * bench/results/hit-ratio.{json,md,svg}.
 *
 * Options: --quick (200k requests, 4 days), --requests N, --days N, --alpha A, --seed N,
 * --titles N, --new-per-day N, --sizes 5,10,20,40, --policies a,b, --trace FILE,
 * --timing N (also time N requests through the edge policy alone), --admission-window N,
 * --low-rendition H and --demand-half-life D (a duration; the edge's --disk-admission-window,
 * --disk-low-rendition and --disk-demand-half-life), --out DIR,
 * --merge A.json,B.json (no replay: the runs' results on one trace as one, report.ts),
 * --whole-titles (the prefill planner fits whole titles, without the viewing model),
 * --refill-hours 8,14 (the prefill policies plan again during the day, at these hours after the
 * day's start, 04:00, from the day's own requests so far; policies.ts Refills).
 */
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { EdgeConfig } from '../../edge/config/spec.js'
import { EDGE_SPEC } from '../../edge/config/spec.js'
import { parseOptionValue } from '../../src/config/options.js'
import { argError, benchArgs, numberArg, numberListArg } from '../lib/args.js'
import { fmt } from '../lib/report.js'
import { repoRoot } from '../lib/paths.js'
import { ALL_POLICIES, compare, configFor, irmTrace, type PolicyName, type SizeResult } from './compare.js'
import { cheApproximation } from './che.js'
import { Entries } from './edge-model.js'
import { DEFAULT_WORKLOAD, generateTrace, type WorkloadParams } from './generate.js'
import { edgePolicy, lruPolicy } from './policies.js'
import { ReplayClock, replay } from './replay.js'
import { mergeDocs, readDoc, type RunDoc, writeRun } from './report.js'
import { infiniteCache, readTraceFile, type Trace, traceDays } from './trace.js'

const D = DEFAULT_WORKLOAD
const USAGE = `Usage: npm run bench:hit-ratio -- [flags]
  --quick                  200k requests, 4 days, 150 titles, 5 new per day (default: off)
  --requests N             requests in the generated trace (default: ${D.requests}, quick 200000)
  --days N                 days of the trace (default: ${D.days}, quick 4)
  --alpha A                Zipf exponent of title popularity (default: ${D.alpha})
  --seed N                 seed of the generated trace (default: ${D.seed})
  --titles N               titles in the back catalogue (default: ${D.titles}, quick 150)
  --new-per-day N          new titles every day (default: ${D.newTitlesPerDay}, quick 5)
  --sizes 5,10,20,40       disk sizes, in % of the catalogue's bytes (default: 5,10,20,40)
  --policies a,b           the policies to replay (default: all, ${ALL_POLICIES.join(',')})
  --trace FILE             replay this trace file instead of generating one (default: generated)
  --timing N               also time N requests through the edge policy alone (default: off)
  --admission-window N     the edge's --disk-admission-window (default: the edge's)
  --low-rendition H        the edge's --disk-low-rendition (default: the edge's)
  --demand-half-life D     the edge's --disk-demand-half-life, a duration such as 6h (default: the edge's, 24h)
  --out DIR                where the results go (default: bench/results)
  --merge A.json,B.json    no replay: merge the runs' results on one trace into one (default: off)
  --whole-titles           the prefill planner fits whole titles, without the viewing model (default: off)
  --refill-hours 8,14      the prefill policies plan again at these hours after the day's start, 04:00,
                           from the day's own requests so far (default: off, once a day)
  -h, --help               print this and exit`
const args = benchArgs(USAGE, {
  options: {
    quick: { type: 'boolean', default: false },
    requests: { type: 'string' },
    days: { type: 'string' },
    alpha: { type: 'string' },
    seed: { type: 'string' },
    titles: { type: 'string' },
    'new-per-day': { type: 'string' },
    sizes: { type: 'string', default: '5,10,20,40' },
    policies: { type: 'string' },
    trace: { type: 'string' },
    timing: { type: 'string' },
    'admission-window': { type: 'string' },
    'low-rendition': { type: 'string' },
    'demand-half-life': { type: 'string' },
    out: { type: 'string' },
    merge: { type: 'string' },
    'whole-titles': { type: 'boolean', default: false },
    'refill-hours': { type: 'string' },
  },
})

const int = { integer: true, min: 1 }
const params: WorkloadParams = {
  ...DEFAULT_WORKLOAD,
  ...(args.quick ? { requests: 200_000, days: 4, titles: 150, newTitlesPerDay: 5 } : {}),
}
const p: WorkloadParams = {
  ...params,
  requests: numberArg(args.requests, '--requests', params.requests, int),
  days: numberArg(args.days, '--days', params.days, int),
  alpha: numberArg(args.alpha, '--alpha', params.alpha),
  seed: numberArg(args.seed, '--seed', params.seed),
  titles: numberArg(args.titles, '--titles', params.titles, int),
  newTitlesPerDay: numberArg(args['new-per-day'], '--new-per-day', params.newTitlesPerDay, {
    integer: true,
    min: 0,
  }),
}
const shares = numberListArg(args.sizes, '--sizes', { min: 0 }).map((s) => s / 100)
// Every number is checked here, before any work, so a malformed one stops the run at once.
const refillHours = args['refill-hours'] ? numberListArg(args['refill-hours'], '--refill-hours') : undefined
/** An edge option passed through, parsed and bounded as the edge's own flag is. */
function edgeFlag(flag: 'admission-window' | 'low-rendition' | 'demand-half-life', key: keyof EdgeConfig) {
  const raw = args[flag]
  if (raw === undefined) return {}
  const r = parseOptionValue(`--${flag}`, EDGE_SPEC.options[key]!, raw)
  if ('error' in r) argError(r.error)
  return { [key]: r.value }
}
const edgeOptions: Partial<EdgeConfig> = {
  ...edgeFlag('admission-window', 'diskAdmissionWindow'),
  ...edgeFlag('low-rendition', 'diskLowRendition'),
  ...edgeFlag('demand-half-life', 'diskDemandHalfLife'),
}
const timingRequests = args.timing ? numberArg(args.timing, '--timing', NaN, int) : undefined
const policies = (args.policies?.split(',') as PolicyName[] | undefined) ?? ALL_POLICIES
const outDir = args.out ?? join(repoRoot(import.meta.url), 'bench', 'results')
const log = (s: string) => process.stdout.write(`${s}\n`)

if (args.merge) {
  const doc = mergeDocs(args.merge.split(',').map(readDoc))
  writeRun(outDir, doc)
  log(`merged ${doc.parts?.length} runs: ${join(outDir, 'hit-ratio.md')}`)
  process.exit(0)
}

const cpu0 = process.cpuUsage()
const g0 = performance.now()
let trace: Trace
let catalogueBytes: number
let generated: ReturnType<typeof generateTrace> | undefined
if (args.trace) {
  trace = await readTraceFile(args.trace)
  catalogueBytes = trace.objects.bytes.reduce((s, b) => s + b, 0)
} else {
  generated = generateTrace(p)
  trace = generated.trace
  catalogueBytes = generated.catalogue.totalBytes()
}
const generateSec = (performance.now() - g0) / 1000
const days = traceDays(trace)
// The trace's own objects: a prefill policy's planner interns the paths it names, asked or not.
const traceObjects = trace.objects.size
log(
  `trace: ${trace.ids.length} requests, ${trace.objects.size} objects, ${days} days, catalogue ${fmt(catalogueBytes / 1e9)} GB (${fmt(generateSec)} s)`,
)
const warmupDays = days > 1 ? 1 : 0

const sizes: SizeResult[] = await compare({
  trace,
  ...(generated
    ? { catalogue: generated.catalogue, workload: { params: p, sessionsPerDay: generated.sessionsPerDay } }
    : {}),
  catalogueBytes,
  shares,
  policies,
  warmupDays,
  ...(refillHours ? { refill: { hours: refillHours } } : {}),
  edge: edgeOptions,
  model: {
    ageFloor: p.ageFloor,
    ageHalfLifeDays: p.ageHalfLifeDays,
    ...(args['whole-titles']
      ? {}
      : { viewing: { earlyStop: p.earlyStop, earlyMeanSec: p.earlyMeanSec, minShare: p.minShare } }),
  },
  onResult: (share, name, r) =>
    log(
      `${String(Math.round(share * 100)).padStart(3)}% ${name.padEnd(26)} bytes ${r.byteHitRatio.toFixed(4)} objects ${r.objectHitRatio.toFixed(4)} (mem ${r.memoryByteHitRatio.toFixed(3)} disk ${r.diskByteHitRatio.toFixed(3)}) upstream ${fmt(r.upstream.bytes / 1e9)} GB prefill ${fmt(r.prefill.bytes / 1e9)} GB  ${fmt(r.seconds)} s`,
    ),
})

// Che against a simulated LRU where its assumption holds: independent requests at each
// object's rate in the trace.
// Ten requests per object (at most 6M), so few objects are first seen in the measured half.
const irm = irmTrace(trace, Math.min(6_000_000, Math.max(1_000_000, 10 * trace.objects.size)), p.seed + 7)
const irmEntries = new Entries(irm.trace.objects)
const cheCheck = []
for (const share of shares) {
  const capacity = catalogueBytes * share
  const sim = await replay(irm.trace, lruPolicy(capacity, irmEntries), { warmupDays: 1 })
  const sizesOf = Array.from({ length: irm.rates.length }, (_, id) => irmEntries.fileSize(id, false))
  const che = cheApproximation(irm.rates, sizesOf, capacity)
  cheCheck.push({
    share,
    simulated: sim.byteHitRatio,
    che: che.byteHitRatio,
    simulatedObjects: sim.objectHitRatio,
    cheObjects: che.objectHitRatio,
  })
  log(
    `che check ${Math.round(share * 100)}%: LRU ${sim.byteHitRatio.toFixed(4)} Che ${che.byteHitRatio.toFixed(4)}`,
  )
}

let timing: { requests: number; seconds: number; cpuSec: number; generateSec: number } | undefined
if (timingRequests !== undefined) {
  const n = timingRequests
  const t0 = performance.now()
  const big = generateTrace({ ...p, requests: n })
  const gen = (performance.now() - t0) / 1000
  // The demand model (the edge's default) runs on the trace's clock, as in compare.ts.
  const clock = new ReplayClock()
  const c0 = process.cpuUsage()
  const r = await replay(
    big.trace,
    edgePolicy(configFor(big.catalogue.totalBytes() * 0.1), new Entries(big.trace.objects), 'edge', clock),
    { warmupDays: 0, clock },
  )
  const c = process.cpuUsage(c0)
  timing = {
    requests: big.trace.ids.length,
    seconds: r.seconds,
    cpuSec: (c.user + c.system) / 1e6,
    generateSec: gen,
  }
  log(
    `timing: ${timing.requests} requests replayed through the edge in ${fmt(r.seconds)} s (generated in ${fmt(gen)} s)`,
  )
}
const cpu = process.cpuUsage(cpu0)
const replaySec = sizes.reduce((s, z) => s + Object.values(z.results).reduce((a, r) => a + r.seconds, 0), 0)
const replayedRequests = sizes.reduce((s, z) => s + Object.keys(z.results).length, 0) * trace.ids.length

const doc: RunDoc = {
  generatedAt: new Date().toISOString(),
  command: `npm run bench:hit-ratio${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
  workload: args.trace ? { traceFile: args.trace } : p,
  trace: {
    requests: trace.ids.length,
    objects: traceObjects,
    days,
    warmupDays,
    catalogueBytes,
    ceiling: infiniteCache(trace, warmupDays),
  },
  edge: {
    memoryToDisk: 'memory tier = disk × 512 MB / 20 GB (the defaults)',
    protectedShare: configFor(1).protectedShare,
  },
  sizes,
  cheCheck,
  cost: {
    cpuSec: (cpu.user + cpu.system) / 1e6,
    wallSec: (performance.now() - g0) / 1000,
    replaySec,
    replayedRequests,
    microsecondsPerRequest: (replaySec * 1e6) / replayedRequests,
  },
  ...(timing ? { timing } : {}),
}

writeRun(outDir, doc)
log(`results: ${join(outDir, 'hit-ratio.md')} (${fmt(doc.cost.wallSec)} s)`)
