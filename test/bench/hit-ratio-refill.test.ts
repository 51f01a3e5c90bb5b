/**
 * Refills during the day (bench/hit-ratio/replay.ts refillsAt, policies.ts Refills): the replay
 * runs them at their times of day, before the first request at or after each, and the forecast
 * prefill plans again from the day's own sessions. And the report's ratios without their base.
 */
import t from 'tap'
import { SMALL_WORKLOAD } from './small-workload.js'
import { configFor } from '../../bench/hit-ratio/compare.js'
import { Entries, MISS } from '../../bench/hit-ratio/edge-model.js'
import { generateTrace } from '../../bench/hit-ratio/generate.js'
import { lruPolicy, prefillPolicy } from '../../bench/hit-ratio/policies.js'
import { type Policy, ReplayClock, replay } from '../../bench/hit-ratio/replay.js'
import { markdown } from '../../bench/hit-ratio/report.js'
import { DAY_MS } from '../../bench/hit-ratio/trace.js'

const SMALL = SMALL_WORKLOAD
const HOUR = 3_600_000

t.test('the replay runs each refill at its time of day, before the requests after it', async (t) => {
  const { trace } = generateTrace(SMALL)
  const clock = new ReplayClock()
  const calls: Array<{ day: number; k: number; at: number; lastBefore: number }> = []
  let last = -1
  const policy: Policy = {
    name: 'probe',
    request: (i) => {
      last = i
      return MISS
    },
    refillsAt: [2 * HOUR, 13 * HOUR],
    refill: async (day, k) => {
      calls.push({ day, k, at: clock.now() - trace.startMs, lastBefore: last })
    },
  }
  await replay(trace, policy, { warmupDays: 1, clock })
  t.same(
    calls.map((c) => [c.day, c.k, c.at]),
    [0, 1, 2].flatMap((d) => [
      [d, 0, d * DAY_MS + 2 * HOUR],
      [d, 1, d * DAY_MS + 13 * HOUR],
    ]),
    'every day, at each time, on the trace clock',
  )
  for (const c of calls) {
    t.ok(trace.times[c.lastBefore]! < c.at, `day ${c.day} refill ${c.k}: after the requests before it`)
    t.ok(trace.times[c.lastBefore + 1]! >= c.at, `day ${c.day} refill ${c.k}: before the requests after it`)
  }
})

t.test("the forecast prefill refills from the day's own sessions", async (t) => {
  const g = generateTrace(SMALL)
  const { trace, catalogue: cat } = g
  const entries = new Entries(trace.objects)
  const config = configFor(cat.totalBytes() * 0.1)
  const model = {
    ageFloor: SMALL.ageFloor,
    ageHalfLifeDays: SMALL.ageHalfLifeDays,
    viewing: { earlyStop: SMALL.earlyStop, earlyMeanSec: SMALL.earlyMeanSec, minShare: SMALL.minShare },
  }
  const run = async (feed: 'forecast' | 'popularity', hours: number[]) => {
    const clock = new ReplayClock()
    const p = prefillPolicy(feed, config, entries, cat, clock, model, undefined, { hours })
    return replay(trace, p, { warmupDays: 1, clock })
  }
  const lru = await replay(trace, lruPolicy(config.diskSize, entries), { warmupDays: 1 })
  const nightly = await run('forecast', [])
  const refilled = await run('forecast', [6, 12])
  t.ok(refilled.prefill.bytes > nightly.prefill.bytes, 'the refills fetched more')
  t.ok(refilled.byteHitRatio > lru.byteHitRatio, 'above LRU')
  // The popularity feed refills from the edge's own popularity then.
  const popularity = await run('popularity', [6, 12])
  t.ok(popularity.byteHitRatio > lru.byteHitRatio, 'popularity: above LRU')
})

t.test('a run without LRU or the clairvoyant bound shows n/a for their ratios, not NaN', async (t) => {
  const r = {
    requests: { objects: 4, bytes: 400 },
    memory: { objects: 0, bytes: 0 },
    disk: { objects: 2, bytes: 200 },
    upstream: { objects: 2, bytes: 200 },
    prefill: { objects: 0, bytes: 0 },
    objectHitRatio: 0.5,
    byteHitRatio: 0.5,
    memoryByteHitRatio: 0,
    diskByteHitRatio: 0.5,
    seconds: 1,
  }
  const md = markdown({
    generatedAt: '2026-12-03T00:00:00Z',
    command: 'npm run bench:hit-ratio -- --policies edge,belady',
    machine: { cpus: 2, model: 'test', loadavg: [1, 1, 1] },
    workload: {},
    trace: { requests: 4, objects: 2, days: 2, warmupDays: 1, catalogueBytes: 1000 },
    edge: {},
    sizes: [
      {
        share: 0.1,
        diskBytes: 100,
        memoryBytes: 10,
        results: { edge: r, belady: r },
        che: { objectHitRatio: 0.4, byteHitRatio: 0.4 },
      },
    ],
    cheCheck: [],
    cost: { cpuSec: 1, replaySec: 1, replayedRequests: 8, microsecondsPerRequest: 1 },
  })
  t.notMatch(md, /NaN/)
  t.match(md, /\| 10% \| edge \| 0\.500 \| 0\.500 \| 0\.000 \| 0\.500 \| n\/a \| 1\.000 \| n\/a \|/)
})
