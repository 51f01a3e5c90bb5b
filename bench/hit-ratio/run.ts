/**
 * `npm run bench:hit-ratio` (after `npm run build`): how close the edge's cache is to the best
 * any cache could do. Generates a seeded trace (generate.ts; or reads one: --trace FILE), then
 * replays it in-process through every policy (policies.ts) at disk sizes of 5, 10, 20 and 40%
 * of the catalogue's bytes, and checks the LRU figure against Che's approximation. Results:
 * bench/results/hit-ratio.{json,md,svg}.
 *
 * Options: --quick (200k requests, 4 days), --requests N, --days N, --alpha A, --seed N,
 * --titles N, --new-per-day N, --sizes 5,10,20,40, --policies a,b, --trace FILE,
 * --timing N (also time N requests through the edge policy alone), --admission-window N and
 * --low-rendition H (the edge's --disk-admission-window and --disk-low-rendition), --out DIR.
 */
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { repoRoot } from '../lib/paths.js'
import { writeFileSync } from 'node:fs'
import { ALL_POLICIES, compare, configFor, irmTrace, type PolicyName, type SizeResult } from './compare.js'
import { cheApproximation } from './che.js'
import { Entries } from './edge-model.js'
import { DEFAULT_WORKLOAD, generateTrace, type WorkloadParams } from './generate.js'
import { edgePolicy, lruPolicy } from './policies.js'
import { replay } from './replay.js'
import { readTraceFile, type Trace, traceDays } from './trace.js'

const { values: args } = parseArgs({
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
    out: { type: 'string' },
  },
})

const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v))
const params: WorkloadParams = {
  ...DEFAULT_WORKLOAD,
  ...(args.quick ? { requests: 200_000, days: 4, titles: 150, newTitlesPerDay: 5 } : {}),
}
const p: WorkloadParams = {
  ...params,
  requests: num(args.requests, params.requests),
  days: num(args.days, params.days),
  alpha: num(args.alpha, params.alpha),
  seed: num(args.seed, params.seed),
  titles: num(args.titles, params.titles),
  newTitlesPerDay: num(args['new-per-day'], params.newTitlesPerDay),
}
const shares = args.sizes!.split(',').map((s) => Number(s) / 100)
const policies = (args.policies?.split(',') as PolicyName[] | undefined) ?? ALL_POLICIES
const outDir = args.out ?? join(repoRoot(import.meta.url), 'bench', 'results')
const log = (s: string) => process.stdout.write(`${s}\n`)

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
log(
  `trace: ${trace.ids.length} requests, ${trace.objects.size} objects, ${days} days, catalogue ${fmt(catalogueBytes / 1e9)} GB (${fmt(generateSec)} s)`,
)
const warmupDays = days > 1 ? 1 : 0

const sizes: SizeResult[] = await compare({
  trace,
  ...(generated ? { catalogue: generated.catalogue } : {}),
  catalogueBytes,
  shares,
  policies,
  warmupDays,
  edge: {
    ...(args['admission-window'] ? { diskAdmissionWindow: Number(args['admission-window']) } : {}),
    ...(args['low-rendition'] ? { diskLowRendition: Number(args['low-rendition']) } : {}),
  },
  model: { ageFloor: p.ageFloor, ageHalfLifeDays: p.ageHalfLifeDays },
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
if (args.timing) {
  const n = Number(args.timing)
  const t0 = performance.now()
  const big = generateTrace({ ...p, requests: n })
  const gen = (performance.now() - t0) / 1000
  const c0 = process.cpuUsage()
  const r = await replay(
    big.trace,
    edgePolicy(configFor(big.catalogue.totalBytes() * 0.1), new Entries(big.trace.objects)),
    { warmupDays: 0 },
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

const doc = {
  generatedAt: new Date().toISOString(),
  command: `npm run bench:hit-ratio${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
  workload: args.trace ? { traceFile: args.trace } : p,
  trace: { requests: trace.ids.length, objects: trace.objects.size, days, warmupDays, catalogueBytes },
  edge: {
    memoryToDisk: 'memory tier = disk × 512 MB / 20 GB (the defaults)',
    protectedShare: configFor(1).protectedShare,
  },
  sizes,
  cheCheck,
  cost: {
    cpuSec: (cpu.user + cpu.system) / 1e6,
    replaySec,
    replayedRequests,
    microsecondsPerRequest: (replaySec * 1e6) / replayedRequests,
  },
  ...(timing ? { timing } : {}),
}

const pct = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(3))
const rows = sizes.flatMap((s) =>
  policies.filter((n) => s.results[n]).map((n) => ({ s, n, r: s.results[n]! })),
)
const table = markdownTable(rows, [
  { header: 'disk', cell: (x) => `${Math.round(x.s.share * 100)}%`, right: true },
  { header: 'policy', cell: (x) => x.n },
  { header: 'byte hit', cell: (x) => pct(x.r.byteHitRatio), right: true },
  { header: 'object hit', cell: (x) => pct(x.r.objectHitRatio), right: true },
  { header: 'memory', cell: (x) => pct(x.r.memoryByteHitRatio), right: true },
  { header: 'disk hit', cell: (x) => pct(x.r.diskByteHitRatio), right: true },
  {
    header: '÷ Belady',
    cell: (x) => pct(x.r.byteHitRatio / (x.s.results.belady?.byteHitRatio ?? Number.NaN)),
    right: true,
  },
  {
    header: '÷ clairvoyant',
    cell: (x) => pct(x.r.byteHitRatio / (x.s.results.clairvoyant?.byteHitRatio ?? Number.NaN)),
    right: true,
  },
  { header: 'upstream GB', cell: (x) => fmt(x.r.upstream.bytes / 1e9), right: true },
  { header: 'prefill GB', cell: (x) => fmt(x.r.prefill.bytes / 1e9), right: true },
])
const cheTable = markdownTable(cheCheck, [
  { header: 'disk', cell: (c) => `${Math.round(c.share * 100)}%`, right: true },
  { header: 'LRU simulated (byte)', cell: (c) => pct(c.simulated), right: true },
  { header: 'Che (byte)', cell: (c) => pct(c.che), right: true },
  { header: 'LRU simulated (object)', cell: (c) => pct(c.simulatedObjects), right: true },
  { header: 'Che (object)', cell: (c) => pct(c.cheObjects), right: true },
])
const cheTrace = markdownTable(sizes, [
  { header: 'disk', cell: (s) => `${Math.round(s.share * 100)}%`, right: true },
  { header: 'LRU on the trace (byte)', cell: (s) => pct(s.results.lru?.byteHitRatio), right: true },
  { header: 'Che, per-day rates (byte)', cell: (s) => pct(s.che.byteHitRatio), right: true },
])
const md = [
  '# Cache efficiency: hit ratios against the bounds',
  '',
  `\`${doc.command}\` on ${doc.machine.cpus} cores (load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}), ${new Date().toISOString().slice(0, 10)}.`,
  `Trace: ${trace.ids.length.toLocaleString('en-US')} requests, ${trace.objects.size.toLocaleString('en-US')} objects, ${days} days (day 0 is warm-up, not counted); catalogue ${fmt(catalogueBytes / 1e9)} GB.`,
  `Replay cost: ${fmt(doc.cost.microsecondsPerRequest)} µs (wall) per request per policy, nights included (${fmt(replaySec)} s for ${replayedRequests.toLocaleString('en-US')} replayed requests).`,
  ...(timing
    ? [
        `${timing.requests.toLocaleString('en-US')} requests replay through the edge in ${fmt(timing.seconds)} s (generating them took ${fmt(timing.generateSec)} s).`,
      ]
    : []),
  '',
  table,
  '',
  '![byte hit ratio by policy and cache size](hit-ratio.svg)',
  '',
  '## LRU against the Che approximation',
  '',
  "Independent requests at each object's rate in the trace (Che's assumption):",
  '',
  cheTable,
  '',
  'On the trace itself (each day with its own rates; churn and sessions break the assumption):',
  '',
  cheTrace,
  '',
].join('\n')
writeResults(join(outDir, 'hit-ratio.json'), join(outDir, 'hit-ratio.md'), doc, md)
writeFileSync(
  join(outDir, 'hit-ratio.svg'),
  (await import('./svg.js')).chartSvg(
    sizes,
    `Byte hit ratio, ${fmt(trace.ids.length / 1e6)}M requests, Zipf ${p.alpha}`,
  ),
)
log(`results: ${join(outDir, 'hit-ratio.md')}`)
