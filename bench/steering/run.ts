/**
 * Steering benchmark: `npm run bench:steering` (after `npm run build`).
 *
 * 1. In process: the cost of one decision (zone lookup + select through the spatial index) with 100,000 zone prefixes,
 *    for fleets of 10 to 10,000 edges: decisions/s on one core, CPU and p50/p99 per decision, and the former full scan beside it;
 *    then what one edge joining or leaving costs at 10,000 edges.
 * 2. Over HTTP: `cdn steering` as its own process with 1,000 and 10,000 edges (all healthy: their
 *    /status is answered by a small server here) and 100,000 prefixes, loaded by autocannon
 *    over loopback on GET /steer with a random title and a random client address per request.
 * Writes bench/results/steering.{json,md}. `--quick` shortens every phase.
 */
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { prng } from '../../fixtures/prng.js'
import { FleetIndex } from '../../steering/fleet-index.js'
import { parseZones } from '../../steering/geo.js'
import { HealthMonitor } from '../../steering/health.js'
import { parseAddress } from '../../steering/ip.js'
import { DEFAULT_SELECT_OPTIONS, type EdgeInput, prepareFleet, select } from '../../steering/select.js'
import { benchArgs } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { median, percentile } from '../lib/stats.js'
import { edgeInputs, fleetDoc, zonesDoc } from './fixture.js'
import { HTTP_CONNECTIONS, type HttpRow, overHttp } from './http.js'

const USAGE = `Usage: npm run bench:steering -- [flags]
  --quick       shorten every phase: 300 ms in-process phases instead of 2 s, one HTTP round of 3 s
                at 1,000 edges instead of three of 8 s at 1,000 and 10,000 (default: off)
  -h, --help    print this and exit`
const quick = benchArgs(USAGE, { options: { quick: { type: 'boolean' } } }).quick === true
const PREFIXES = 100_000
const FLEETS = [10, 100, 1_000, 10_000]
const ROUNDS = 3
const PHASE_MS = quick ? 300 : 2_000
const SCAN_MS = quick ? 200 : 1_000
const MAX_OPS = 4_000_000
const HTTP_SECONDS = quick ? 3 : 8
const HTTP_WARMUP_SECONDS = quick ? 1 : 3
const HTTP_ROUNDS = quick ? 1 : 3
const HTTP_FLEETS = quick ? [1_000] : [1_000, 10_000]

interface InProcessRow {
  edges: number
  prefixes: number
  decisions: number
  /** Indexed decisions/s per round: min, median, max. */
  decisionsPerSec: { min: number; median: number; max: number }
  cpuUsPerDecision: number
  p50Us: number
  p99Us: number
  /** The former full scan of every edge, one round, for comparison. */
  fullScanPerSec: number
  lookupNs: number
}

interface UpdateRow {
  edges: number
  /** One edge out of and back into the spatial index alone. */
  indexRemoveAddUs: number
  /** One edge joining, then leaving, the health monitor as the registry watch applies it. */
  joinUs: number
  leaveUs: number
  /** One edge's usability flipped (as a health round does) and a decision near it, then far. */
  flipThenNearDecisionUs: number
  flipThenFarDecisionUs: number
  /** The whole list applied at once (a full registry read, or the file at start). */
  fullListMs: number
}

const minMedMax = (v: number[]) => ({ min: Math.min(...v), median: median(v), max: Math.max(...v) })

function inProcess(zones: ReturnType<typeof parseZones>, samples: string[]): InProcessRow[] {
  const addrs = samples.map((s) => parseAddress(s)!)
  const rnd = prng(7)
  // Half the clients fall outside every block (default location), as real traffic would.
  for (let i = 0; i < addrs.length / 2; i++)
    addrs[i] = parseAddress(`${1 + Math.floor(rnd() * 200)}.${i & 255}.1.1`)!
  const fallback = { lat: 0, lon: 0 }

  // Lookup alone, in a tight loop (after a warm-up that also builds the range index).
  for (let i = 0; i < 100_000; i++) zones.table.lookup(addrs[i % addrs.length]!)
  let found = 0
  const n = 1_000_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) if (zones.table.lookup(addrs[i % addrs.length]!)) found++
  const lookupNs = ((performance.now() - t0) * 1e6) / n
  console.log(`lookup: ${fmt(lookupNs)} ns each over ${PREFIXES} prefixes (${found} hits of ${n})`)

  const rows: InProcessRow[] = []
  for (const size of FLEETS) {
    const inputs = edgeInputs(size)
    const index = new FleetIndex()
    const bySlot: EdgeInput[] = []
    for (const e of inputs) bySlot[index.add(e.site, e)] = e
    const where = (i: number) => zones.table.lookup(addrs[i % addrs.length]!) ?? fallback
    // Zones' locations are fixed objects: decisions go through the cached candidate lists.
    const decide = (i: number) =>
      index.select(where(i), bySlot, `title-${i % 5000}`, DEFAULT_SELECT_OPTIONS, true)
    for (let i = 0; i < 20_000; i++) decide(i) // warm up the JIT
    const lat: number[] = []
    const perRound: number[] = []
    let total = 0
    let cpuUs = 0
    for (let r = 0; r < ROUNDS; r++) {
      const cpu0 = process.cpuUsage()
      const start = performance.now()
      let i = 0
      while (i < MAX_OPS && performance.now() - start < PHASE_MS) {
        const a = performance.now()
        decide(total + i++)
        lat.push(performance.now() - a)
      }
      const elapsed = performance.now() - start
      const cpu = process.cpuUsage(cpu0)
      cpuUs += cpu.user + cpu.system
      perRound.push((i / elapsed) * 1000)
      total += i
    }
    // The full scan of every edge (select over a prepared fleet), as decisions ran before.
    const prepared = prepareFleet(inputs)
    let scans = 0
    const s0 = performance.now()
    while (performance.now() - s0 < SCAN_MS)
      select(where(scans), prepared, `title-${scans++ % 5000}`, DEFAULT_SELECT_OPTIONS)
    const row: InProcessRow = {
      edges: size,
      prefixes: PREFIXES,
      decisions: total,
      decisionsPerSec: minMedMax(perRound),
      cpuUsPerDecision: cpuUs / total,
      p50Us: percentile(lat, 50) * 1000,
      p99Us: percentile(lat, 99) * 1000,
      fullScanPerSec: (scans / (performance.now() - s0)) * 1000,
      lookupNs,
    }
    console.log(
      `${size} edges: ${fmt(row.decisionsPerSec.median)} decisions/s (full scan ${fmt(row.fullScanPerSec)}), p50 ${fmt(row.p50Us)} µs, p99 ${fmt(row.p99Us)} µs`,
    )
    rows.push(row)
  }
  return rows
}

/** What a change costs: out of and into the index, into the monitor's fleet, and a health flip. */
async function updates(size: number): Promise<UpdateRow> {
  const inputs = edgeInputs(size)
  const index = new FleetIndex()
  const slots = inputs.map((e) => index.add(e.site, e))
  const k = 20_000
  const t0 = performance.now()
  for (let i = 0; i < k; i++) {
    const at = i % size
    index.remove(slots[at]!)
    slots[at] = index.add(inputs[at]!.site, inputs[at]!)
  }
  const indexRemoveAddUs = ((performance.now() - t0) * 1000) / k
  // A health flip: one edge out, then back, each followed by a decision where it sits (its
  // list is walked again) and one at a place far from it (its list stays).
  const bySlot: EdgeInput[] = []
  inputs.forEach((e, i) => (bySlot[slots[i]!] = e))
  const flips = 2_000
  const flipTime = (far: boolean) => {
    const t = performance.now()
    for (let i = 0; i < flips; i++) {
      const at = (i * 7919) % size
      const slot = slots[at]!
      bySlot[slot] = { ...bySlot[slot]!, usable: !bySlot[slot]!.usable }
      index.touch(slot)
      const place = far ? antipodes[at % antipodes.length]! : near[at]!
      index.select(place, bySlot, `title-${i}`, DEFAULT_SELECT_OPTIONS, true)
    }
    return ((performance.now() - t) * 1000) / flips
  }
  const near = inputs.map((e) => ({ lat: e.lat, lon: e.lon }))
  const antipodes = [{ lat: -89, lon: 0 }]
  for (const p of [...near.slice(0, 2000), ...antipodes])
    index.select(p, bySlot, 't', DEFAULT_SELECT_OPTIONS, true)
  const flipThenNearDecisionUs = flipTime(false)
  const flipThenFarDecisionUs = flipTime(true)
  const configs = fleetDoc(size, 'http://bench').edges.map((e) => ({ ...e, weight: 1 }))
  const monitor = new HealthMonitor(
    { edges: configs },
    {
      intervalMs: 5000,
      timeoutMs: 1000,
      failAfter: 3,
      recoverAfter: 2,
      loadHigh: 0.9,
      loadLow: 0.7,
      concurrency: 64,
      maxStatusBytes: 1 << 20,
    },
    { now: () => Date.now(), monotonic: () => performance.now() },
    { info: () => undefined, warn: () => undefined },
  )
  // One change at a time, as the registry watch applies a put or a delete.
  const joins = Array.from({ length: k }, (_, j) => ({
    ...configs[j % size]!,
    id: `join-${j}`,
    url: `http://bench/j${j}`,
  }))
  let t1 = performance.now()
  for (const e of joins) monitor.upsert(e)
  const joinUs = ((performance.now() - t1) * 1000) / k
  t1 = performance.now()
  for (const e of joins) monitor.remove(e.id)
  const leaveUs = ((performance.now() - t1) * 1000) / k
  t1 = performance.now()
  monitor.setEdges([...configs, joins[0]!])
  const fullListMs = performance.now() - t1
  await monitor.stop()
  console.log(
    `updates at ${size} edges: index remove+add ${fmt(indexRemoveAddUs)} µs, a join ${fmt(joinUs)} µs, a leave ${fmt(leaveUs)} µs, a flip + decision near ${fmt(flipThenNearDecisionUs)} µs / far ${fmt(flipThenFarDecisionUs)} µs, the full list ${fmt(fullListMs)} ms`,
  )
  return {
    edges: size,
    indexRemoveAddUs,
    joinUs,
    leaveUs,
    flipThenNearDecisionUs,
    flipThenFarDecisionUs,
    fullListMs,
  }
}

async function main(): Promise<void> {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')
  const zones = zonesDoc(PREFIXES)
  const t0 = performance.now()
  const parsed = parseZones(zones.doc)
  const loadMs = performance.now() - t0
  console.log(`zones: ${parsed.table.size} prefixes validated and indexed in ${fmt(loadMs)} ms`)
  const rows = inProcess(parsed, zones.samples)
  const update = await updates(10_000)
  const http: HttpRow[] = []
  for (const n of HTTP_FLEETS) {
    const h = await overHttp(zones, n, {
      prefixes: PREFIXES,
      seconds: HTTP_SECONDS,
      warmupSeconds: HTTP_WARMUP_SECONDS,
      rounds: HTTP_ROUNDS,
    })
    console.log(
      `HTTP /steer, ${n} edges: ${fmt(h.requestsPerSec.median)} req/s, p50 ${h.p50Ms} ms, p99 ${h.p99Ms} ms, non-2xx ${h.non2xx}, ${fmt(h.serverCpuUsPerRequest.median)} µs CPU each`,
    )
    http.push(h)
  }
  const root = repoRoot(import.meta.url)
  const n = (v: number) => v.toLocaleString('en-US')
  const md = [
    '# Steering benchmark',
    '',
    `Run: \`npm run build && npm run bench:steering\`${quick ? ' (--quick)' : ''}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load average at start ${load}.`,
    `Zones: ${n(PREFIXES)} prefixes (90% IPv4 /12–/28, 10% IPv6 /32–/64), loaded and validated in ${fmt(loadMs)} ms; one lookup ${fmt(rows[0]!.lookupNs)} ns.`,
    '',
    `## One decision in process (zone lookup + select of the nearest healthy edges), one core`,
    '',
    `${ROUNDS} rounds of ${PHASE_MS / 1000} s per fleet size; decisions/s as min / median / max over the rounds (wall clock, on a shared machine), latency over every decision; CPU is the process's user + system time per decision, and "per CPU-second" its inverse: the rate one uncontended core sustains, steady when other work shares the machine. A decision at a zone's location ranks the candidate list cached for that place (no k-d tree walk) with the same code as a full scan. "Full scan" is select() over every edge (same answers), one ${SCAN_MS / 1000} s round.`,
    '',
    markdownTable(rows, [
      { header: 'edges', cell: (r) => n(r.edges), right: true },
      {
        header: 'decisions/s (min / median / max)',
        cell: (r) =>
          `${fmt(r.decisionsPerSec.min)} / ${fmt(r.decisionsPerSec.median)} / ${fmt(r.decisionsPerSec.max)}`,
        right: true,
      },
      { header: 'per CPU-second', cell: (r) => fmt(1e6 / r.cpuUsPerDecision), right: true },
      { header: 'CPU µs each', cell: (r) => fmt(r.cpuUsPerDecision), right: true },
      { header: 'p50 µs', cell: (r) => fmt(r.p50Us), right: true },
      { header: 'p99 µs', cell: (r) => fmt(r.p99Us), right: true },
      { header: 'samples', cell: (r) => n(r.decisions), right: true },
      { header: 'full scan decisions/s', cell: (r) => fmt(r.fullScanPerSec), right: true },
    ]),
    '',
    `## Changes at ${n(update.edges)} edges, applied incrementally`,
    '',
    markdownTable(
      [update],
      [
        { header: 'index: one edge out and back in, µs', cell: (r) => fmt(r.indexRemoveAddUs), right: true },
        { header: 'an edge joins, µs', cell: (r) => fmt(r.joinUs), right: true },
        { header: 'an edge leaves, µs', cell: (r) => fmt(r.leaveUs), right: true },
        {
          header: 'a health flip + a decision beside it, µs',
          cell: (r) => fmt(r.flipThenNearDecisionUs),
          right: true,
        },
        {
          header: '... + a decision far from it, µs',
          cell: (r) => fmt(r.flipThenFarDecisionUs),
          right: true,
        },
        { header: 'the whole list at once, ms', cell: (r) => fmt(r.fullListMs), right: true },
      ],
    ),
    '',
    'A join or leave is applied as the registry watch applies a put or a delete (`HealthMonitor.upsert` / `remove`): one map operation, the one edge into or out of the k-d tree, one slot of the array decisions read; the fleet-order lists (/edges, /regions) are built when next read. A health flip writes the slot and records the change; the cached candidate list of a place beside the edge is walked again on its next decision (the "beside" column includes that walk), a place far from it keeps its list. "The whole list" is a full registry read (or the fleet file at start): the list diffed by id.',
    '',
    `## HTTP GET /steer over loopback (autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_ROUNDS} rounds of ${HTTP_SECONDS} s after ${HTTP_WARMUP_SECONDS} s of warm-up)`,
    '',
    markdownTable(http, [
      { header: 'edges', cell: (r) => n(r.edges), right: true },
      { header: 'prefixes', cell: (r) => n(r.prefixes), right: true },
      {
        header: 'req/s (min / median / max)',
        cell: (r) =>
          `${fmt(r.requestsPerSec.min)} / ${fmt(r.requestsPerSec.median)} / ${fmt(r.requestsPerSec.max)}`,
        right: true,
      },
      {
        header: 'steering CPU µs/req (min / median / max)',
        cell: (r) =>
          `${fmt(r.serverCpuUsPerRequest.min)} / ${fmt(r.serverCpuUsPerRequest.median)} / ${fmt(r.serverCpuUsPerRequest.max)}`,
        right: true,
      },
      { header: 'p50 ms', cell: (r) => fmt(r.p50Ms), right: true },
      { header: 'p99 ms', cell: (r) => fmt(r.p99Ms), right: true },
      { header: 'non-2xx', cell: (r) => String(r.non2xx), right: true },
      { header: 'errors', cell: (r) => String(r.errors), right: true },
    ]),
    '',
    'Client and server share the machine (2 cores) with other work, so req/s is a floor; the CPU per request is the steadier figure. p50/p99 are those of the median round.',
  ].join('\n')
  writeResults(
    join(root, 'bench/results/steering.json'),
    join(root, 'bench/results/steering.md'),
    {
      date: new Date().toISOString(),
      node: process.version,
      quick,
      loadAverage: load,
      zonesLoadMs: loadMs,
      inProcess: rows,
      updates: update,
      http,
    },
    md,
  )
  console.log(`\n${md}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
