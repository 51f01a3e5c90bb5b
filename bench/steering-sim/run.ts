/**
 * Steering simulation: `npm run build && npm run bench:steering-sim` (`-- --quick` for a
 * tenth of the world, `-- --hours N` for part of the day).
 *
 * `--every-edge` checks every edge every round, as the health loop does (same figures, slower).
 *
 * 10,000 edges in 500 sites and one million clients over a day, steered in process by the
 * real steering modules (sim.ts): load spread per hour, the share of clients sent beyond
 * their nearest site, and what each failure moves. Seeded: the same parameters
 * (params.ts, copied into the JSON) give the same figures on any machine.
 * Writes bench/results/steering-sim.{json,md,svg}.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { benchArgs, numberArg } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { writeResults } from '../lib/report.js'
import { DAY, QUICK } from './params.js'
import { chart, markdown } from './report.js'
import { simulate } from './sim.js'

const USAGE = `Usage: npm run bench:steering-sim -- [flags]
  --quick        a tenth of the world (default: off, the whole world)
  --hours N      simulate the first N hours of the day, 1 to 24 (default: ${DAY.workload.hours}${QUICK.workload.hours === DAY.workload.hours ? '' : `, quick ${QUICK.workload.hours}`})
  --every-edge   check every edge every round, as the health loop does; same figures, slower (default: off)
  -h, --help     print this and exit`
const args = benchArgs(USAGE, {
  options: { quick: { type: 'boolean' }, hours: { type: 'string' }, 'every-edge': { type: 'boolean' } },
})
const quick = args.quick === true
const base = quick ? QUICK : DAY
const hours = numberArg(args.hours, '--hours', base.workload.hours, { min: 1, max: 24 })
const params = { ...base, workload: { ...base.workload, hours } }

const result = simulate(params, { everyEdge: args['every-edge'] === true })
const root = repoRoot(import.meta.url)
const out = (ext: string) => join(root, `bench/results/steering-sim.${ext}`)
const md = markdown(result, 'npm run build && npm run bench:steering-sim', quick)
writeResults(
  out('json'),
  out('md'),
  { date: new Date().toISOString(), node: process.version, quick, ...result },
  md,
)
writeFileSync(out('svg'), chart(result))
console.log(md)
