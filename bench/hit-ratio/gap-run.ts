/**
 * `node dist/bench/hit-ratio/gap-run.js --titles 40 --new-per-day 2 --requests 1000000 --size 10`:
 * where the forecast prefill falls short of the clairvoyant bound (gap.ts), one table per split
 * on stdout. `--oracle`: the planner fed each day's true sessions per title instead of the
 * forecast (`--expected`: the generator's expectation of them); `--brief`: the totals only.
 */
import { benchArgs, numberArg } from '../lib/args.js'
import { lruConfigFor } from './compare.js'
import { Entries } from './edge-model.js'
import { oraclePolicy, recorded, splitGap } from './gap.js'
import { DEFAULT_WORKLOAD, generateTrace } from './generate.js'
import { clairvoyantPolicy, prefillPolicy } from './policies.js'
import { ReplayClock, replay } from './replay.js'
import { DAY_MS } from './trace.js'

const USAGE = `Usage: node dist/bench/hit-ratio/gap-run.js [flags]
  --requests N       requests in the trace (default: 1000000)
  --titles N         titles in the back catalogue (default: 40)
  --new-per-day N    new titles every day (default: 2)
  --size P           disk size, in % of the catalogue's bytes (default: 10)
  --oracle           the planner fed each day's true sessions per title instead of the forecast (default: off)
  --expected         with --oracle, the generator's expectation of those sessions (default: off)
  --brief            the totals only (default: off, one table per split)
  -h, --help         print this and exit`
const a = benchArgs(USAGE, {
  options: {
    requests: { type: 'string', default: '1000000' },
    titles: { type: 'string', default: '40' },
    'new-per-day': { type: 'string', default: '2' },
    size: { type: 'string', default: '10' },
    oracle: { type: 'boolean', default: false },
    expected: { type: 'boolean', default: false },
    brief: { type: 'boolean', default: false },
  },
})
const p = {
  ...DEFAULT_WORKLOAD,
  requests: numberArg(a.requests, '--requests', 1000000, { integer: true, min: 1 }),
  titles: numberArg(a.titles, '--titles', 40, { integer: true, min: 1 }),
  newTitlesPerDay: numberArg(a['new-per-day'], '--new-per-day', 2, { integer: true, min: 0 }),
}
const sizePercent = numberArg(a.size, '--size', 10, { min: 0 })
const g = generateTrace(p)
const { trace, catalogue: cat } = g
const entries = new Entries(trace.objects)
// LRU for what the fills do not hold, as the clairvoyant bound is defined (compare.ts).
const config = lruConfigFor(cat.totalBytes() * (sizePercent / 100))
const viewing = { earlyStop: p.earlyStop, earlyMeanSec: p.earlyMeanSec, minShare: p.minShare }
const n = trace.ids.length
const clair = new Uint8Array(n)
const other = new Uint8Array(n)
const rc = await replay(trace, recorded(clairvoyantPolicy(trace, config, entries), clair), { warmupDays: 1 })
const clock = new ReplayClock()
const policy = a.oracle
  ? oraclePolicy(
      trace,
      cat,
      config,
      entries,
      clock,
      viewing,
      a.expected ? { params: p, sessionsPerDay: g.sessionsPerDay } : undefined,
    )
  : prefillPolicy('forecast', config, entries, cat, clock, {
      ageFloor: p.ageFloor,
      ageHalfLifeDays: p.ageHalfLifeDays,
      viewing,
    })
const ro = await replay(trace, recorded(policy, other), { warmupDays: 1, clock })
const out = (s: string) => process.stdout.write(`${s}\n`)
out(
  `${n} requests, disk ${sizePercent}%: clairvoyant ${rc.byteHitRatio.toFixed(4)}, ${policy.name} ${ro.byteHitRatio.toFixed(4)} (${(ro.byteHitRatio / rc.byteHitRatio).toFixed(3)} of it)`,
)
if (!a.brief)
  for (const [name, rows] of Object.entries(splitGap(trace, cat, clair, other, DAY_MS))) {
    out(
      `\n| ${name} | share of bytes | clairvoyant hit | ${policy.name} hit | share of the gap |\n|:---|---:|---:|---:|---:|`,
    )
    for (const r of rows.sort((x, y) => (x.key < y.key ? -1 : 1)))
      out(
        `| ${r.key} | ${r.share.toFixed(3)} | ${r.hitA.toFixed(3)} | ${r.hitB.toFixed(3)} | ${r.gapShare.toFixed(3)} |`,
      )
  }
