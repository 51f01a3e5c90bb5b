/**
 * bench/hit-ratio/gap.ts: the recorded outcomes agree with the replay's totals, the splits
 * cover every byte and the whole gap, and the oracle prefill fills through the planner.
 */
import t from 'tap'
import { SMALL_WORKLOAD } from './small-workload.js'
import { lruConfigFor } from '../../bench/hit-ratio/compare.js'
import { Entries } from '../../bench/hit-ratio/edge-model.js'
import { oraclePolicy, recorded, splitGap } from '../../bench/hit-ratio/gap.js'
import { generateTrace } from '../../bench/hit-ratio/generate.js'
import { clairvoyantPolicy, lruPolicy } from '../../bench/hit-ratio/policies.js'
import { ReplayClock, replay } from '../../bench/hit-ratio/replay.js'
import { DAY_MS } from '../../bench/hit-ratio/trace.js'

const SMALL = SMALL_WORKLOAD

t.test('the gap between two policies, split by what the objects are', async (t) => {
  const g = generateTrace(SMALL)
  const { trace, catalogue: cat } = g
  const entries = new Entries(trace.objects)
  // LRU for what the fills do not hold, as gap-run.js (and the clairvoyant bound) has it.
  const config = lruConfigFor(cat.totalBytes() * 0.1)
  const n = trace.ids.length
  const clair = new Uint8Array(n)
  const lru = new Uint8Array(n)
  const rc = await replay(trace, recorded(clairvoyantPolicy(trace, config, entries), clair), {
    warmupDays: 1,
  })
  const rl = await replay(trace, recorded(lruPolicy(config.diskSize, entries), lru), { warmupDays: 1 })
  let hit = 0
  for (let i = 0; i < n; i++)
    if (trace.times[i]! >= DAY_MS) hit += clair[i]! * trace.objects.bytes[trace.ids[i]!]!
  t.equal(hit, rc.memory.bytes + rc.disk.bytes, 'recorded hits are the replay’s')
  const splits = splitGap(trace, cat, clair, lru, DAY_MS)
  t.same(Object.keys(splits), ['position', 'rendition', 'age', 'requests that day'])
  for (const [name, rows] of Object.entries(splits)) {
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0)
    t.ok(Math.abs(sum((r) => r.share) - 1) < 1e-9, `${name}: every byte once`)
    t.ok(Math.abs(sum((r) => r.gapShare) - 1) < 1e-9, `${name}: the whole gap`)
    const hitA = sum((r) => r.share * r.hitA)
    t.ok(Math.abs(hitA - rc.byteHitRatio) < 1e-9, `${name}: the clairvoyant's byte hit ratio`)
    t.ok(Math.abs(sum((r) => r.share * r.hitB) - rl.byteHitRatio) < 1e-9, `${name}: LRU's`)
  }
  t.ok(
    splits.position!.some((r) => r.key === '<1 min') && splits.age!.some((r) => r.key === 'release day'),
    'heads and releases are told apart',
  )

  const viewing = { earlyStop: SMALL.earlyStop, earlyMeanSec: SMALL.earlyMeanSec, minShare: SMALL.minShare }
  for (const expected of [undefined, { params: SMALL, sessionsPerDay: g.sessionsPerDay }]) {
    const clock = new ReplayClock()
    const policy = oraclePolicy(trace, cat, config, entries, clock, viewing, expected)
    const r = await replay(trace, policy, { warmupDays: 1, clock })
    t.ok(r.prefill.bytes > 0, `${policy.name} filled through the planner`)
    t.ok(r.byteHitRatio > rl.byteHitRatio, `${policy.name} above LRU`)
  }
})
