/**
 * `node dist/bench/hit-ratio/hit-cost.js` (after `npm run build`): what the disk tier's policy
 * costs a hit, in CPU. Each policy's edge model (edge-model.ts, the replay's ReplayEdge) gets a
 * disk as large as the catalogue; the trace is replayed once to fill it, then again a day after
 * its end, every request a hit, and the second pass's CPU time (process.cpuUsage, this process
 * only) over its requests is the figure: the policy's bookkeeping per request (the demand
 * model's record, TinyLFU's sketch, an LRU touch) plus the model's lookups, which every policy
 * shares. Rounds are interleaved (bench/lib/rounds.ts); each policy's min-max is printed.
 *
 * Options: --rounds N (3), --policies a,b (edge(lru),edge(demand),edge(tinylfu)), and the
 * trace's --requests, --days, --titles, --new-per-day, --seed (default: run.ts's --quick trace).
 */
import type { EdgeConfig } from '../../edge/config/spec.js'
import { argError, benchArgs, numberArg } from '../lib/args.js'
import { fmt } from '../lib/report.js'
import { interleave } from '../lib/rounds.js'
import { configFor } from './compare.js'
import { Entries } from './edge-model.js'
import { DEFAULT_WORKLOAD, generateTrace } from './generate.js'
import { edgePolicy } from './policies.js'
import { ReplayClock, replay } from './replay.js'
import { DAY_MS, type Trace, traceDays } from './trace.js'

const POLICIES: Record<string, Partial<EdgeConfig>> = {
  'edge(lru)': { diskEviction: 'lru', diskAdmission: 'all' },
  'edge(demand)': { diskEviction: 'demand', diskAdmission: 'demand' },
  'edge(tinylfu)': { diskEviction: 'lru', diskAdmission: 'tinylfu' },
}

const USAGE = `Usage: node dist/bench/hit-ratio/hit-cost.js [flags]
  --rounds N          interleaved rounds of every policy (default: 3)
  --policies a,b      the policies measured (default: ${Object.keys(POLICIES).join(',')})
  --requests N        requests in the trace (default: 200000, run.ts's --quick trace)
  --days N            days of the trace (default: 4)
  --titles N          titles in the back catalogue (default: 150)
  --new-per-day N     new titles every day (default: 5)
  --seed N            seed of the trace (default: ${DEFAULT_WORKLOAD.seed})
  -h, --help          print this and exit`
const args = benchArgs(USAGE, {
  options: {
    rounds: { type: 'string', default: '3' },
    policies: { type: 'string', default: Object.keys(POLICIES).join(',') },
    requests: { type: 'string', default: '200000' },
    days: { type: 'string', default: '4' },
    titles: { type: 'string', default: '150' },
    'new-per-day': { type: 'string', default: '5' },
    seed: { type: 'string', default: String(DEFAULT_WORKLOAD.seed) },
  },
})

const log = (s: string) => process.stdout.write(`${s}\n`)
const names = args.policies!.split(',')
for (const n of names)
  if (!POLICIES[n]) argError(`--policies: unknown policy ${n} (${Object.keys(POLICIES).join(', ')})`)
const count = { integer: true, min: 1 }
const policyRounds = numberArg(args.rounds, '--rounds', 3, count)

const g = generateTrace({
  ...DEFAULT_WORKLOAD,
  requests: numberArg(args.requests, '--requests', 200000, count),
  days: numberArg(args.days, '--days', 4, count),
  titles: numberArg(args.titles, '--titles', 150, count),
  newTitlesPerDay: numberArg(args['new-per-day'], '--new-per-day', 5, { integer: true, min: 0 }),
  seed: numberArg(args.seed, '--seed', DEFAULT_WORKLOAD.seed),
})
const trace = g.trace
const n = trace.ids.length
// The second pass: the same requests a day after the first ends (the demand model's clock only
// moves forward).
const again: Trace = { ...trace, startMs: trace.startMs + (traceDays(trace) + 1) * DAY_MS }
log(`trace: ${n} requests, ${trace.objects.size} objects, disk ${fmt(g.catalogue.totalBytes() / 1e9)} GB`)

const rounds = await interleave(names, policyRounds, async (name) => {
  const clock = new ReplayClock()
  const policy = edgePolicy(
    configFor(g.catalogue.totalBytes(), POLICIES[name]),
    new Entries(trace.objects),
    name,
    clock,
  )
  await replay(trace, policy, { warmupDays: 0, clock })
  const c0 = process.cpuUsage()
  const r = await replay(again, policy, { warmupDays: 0, clock })
  const c = process.cpuUsage(c0)
  const us = (c.user + c.system) / n
  const missed = r.upstream.objects
  if (missed)
    throw new Error(`${name}: ${missed} misses on the second pass (the disk should hold every object)`)
  log(`${name.padEnd(14)} ${us.toFixed(2)} µs per hit`)
  return us
})
for (const [name, us] of rounds)
  log(
    `${name.padEnd(14)} ${Math.min(...us).toFixed(1)}-${Math.max(...us).toFixed(1)} µs per hit (${us.length} rounds)`,
  )
