/**
 * What the /play redirect's reason costs at large fleets: `Decider.steeredReason` ranks the
 * client's place once more over the fleet as it would be were every edge up and unloaded
 * (to say `cdn-steered=down|overloaded` when the choice differs). It ranks the live slots
 * with `asIfAllUp` (select.ts): no copy of the fleet, so the first redirect after a health
 * round or a registry change should cost what the others do (it copied every edge before).
 *
 * `npm run build && node dist/bench/steering/reason.js` writes bench/results/steering-reason.{json,md}.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ManualClock } from '../../src/clock.js'
import type { EdgeStatus } from '../../src/http/status.js'
import { steeringConfig } from '../../steering/config.js'
import { Decider, type RequestFacts } from '../../steering/decider.js'
import { FleetState } from '../../steering/fleet-state.js'
import { parseZones } from '../../steering/geo.js'
import type { CheckResult } from '../../steering/health-state.js'
import { applyRound, viewOf } from '../../steering/health.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { percentile } from '../lib/stats.js'
import { fleetDoc, zonesDoc } from './fixture.js'

export interface ReasonRow {
  edges: number
  /** decide() alone, and decide() + steeredReason(), per request at a steady view (µs, median). */
  decideUs: number
  decideAndReasonUs: number
  reasonP99Us: number
  /** The first steeredReason after a new view: the ideal copy of the fleet built (ms). */
  firstAfterViewMs: number
}

const ok = (egress: number): CheckResult => ({
  ok: true,
  latencyMs: 1,
  status: { egressBytesPerSec: egress, titlesComplete: [] } as unknown as EdgeStatus,
})

export function reasonCost(sizes: readonly number[], requests = 20_000): ReasonRow[] {
  const zones = zonesDoc(10_000)
  const parsed = parseZones(zones.doc)
  const config = steeringConfig({})
  const rows: ReasonRow[] = []
  for (const size of sizes) {
    const fleet = new FleetState()
    fleet.setAll(fleetDoc(size, 'http://bench').edges.map((e) => ({ ...e, weight: 1 })))
    const members = fleet.list()
    // One round: every edge up; one in ten over --load-high, so some choices differ from the ideal.
    const results = members.map((_, i) => ok(i % 10 === 0 ? 0.95e9 : 0.3e9))
    applyRound(fleet, members, results, 0, config, { info: () => undefined, warn: () => undefined })
    const source = { view: viewOf(fleet) }
    const decider = new Decider(config, parsed, source, new ManualClock())
    const facts = (i: number): RequestFacts => ({
      socketAddress: zones.samples[i % zones.samples.length],
      forwardedFor: undefined,
      query: {},
    })
    const time = (withReason: boolean) => {
      const lat: number[] = []
      for (let i = 0; i < requests; i++) {
        const a = performance.now()
        const d = decider.decide(facts(i), `title-${i % 5000}`)
        if (withReason) decider.steeredReason(d, `title-${i % 5000}`)
        lat.push((performance.now() - a) * 1000)
      }
      return lat
    }
    time(true) // warm up, and build the ideal copy of this view
    const plain = time(false)
    const reason = time(true)
    const firsts: number[] = []
    for (let k = 0; k < 5; k++) {
      source.view = viewOf(fleet) // a health round or a registry change publishes a new view
      const d = decider.decide(facts(k), 'title-1')
      const a = performance.now()
      decider.steeredReason(d, 'title-1')
      firsts.push(performance.now() - a)
    }
    const row: ReasonRow = {
      edges: size,
      decideUs: percentile(plain, 50),
      decideAndReasonUs: percentile(reason, 50),
      reasonP99Us: percentile(reason, 99),
      firstAfterViewMs: percentile(firsts, 50),
    }
    console.log(
      `${size} edges: decide ${fmt(row.decideUs)} µs, + reason ${fmt(row.decideAndReasonUs)} µs (p99 ${fmt(row.reasonP99Us)}), first reason after a new view ${fmt(row.firstAfterViewMs)} ms`,
    )
    rows.push(row)
  }
  return rows
}

export function reasonTable(rows: readonly ReasonRow[]): string {
  return markdownTable(rows, [
    { header: 'edges', cell: (r) => r.edges.toLocaleString('en-US'), right: true },
    { header: 'decide µs (median)', cell: (r) => fmt(r.decideUs), right: true },
    { header: 'decide + reason µs (median)', cell: (r) => fmt(r.decideAndReasonUs), right: true },
    { header: 'decide + reason p99 µs', cell: (r) => fmt(r.reasonP99Us), right: true },
    { header: 'first reason after a new view, ms', cell: (r) => fmt(r.firstAfterViewMs), right: true },
  ])
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = reasonCost([10_000, 100_000, 300_000])
  const root = repoRoot(import.meta.url)
  const md = [
    '# The /play redirect reason at large fleets',
    '',
    `Run: \`npm run build && node dist/bench/steering/reason.js\`, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, one core of a shared machine. 10,000 zone prefixes; one edge in ten over --load-high.`,
    '',
    reasonTable(rows),
    '',
  ].join('\n')
  writeResults(
    join(root, 'bench/results/steering-reason.json'),
    join(root, 'bench/results/steering-reason.md'),
    { date: new Date().toISOString(), node: process.version, rows },
    md,
  )
  console.log(md)
}
