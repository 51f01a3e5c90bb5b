/**
 * Where a prefill policy falls short of the clairvoyant bound (gap-run.ts is the command): two
 * policies replayed on one trace, request by request (`recorded`), and the bytes each hits split
 * by what the object is (`splitGap`: its segment's position in the title, its rendition, the
 * title's age that day, how often the day asked for it). And `oraclePolicy`: the planner fed
 * the truth about titles (each title's sessions that day, or the generator's expectation of
 * them) but not about objects, the ceiling of a title-level forecast under the viewing model.
 */
import type { EdgeConfig } from '../../edge/config/spec.js'
import { EdgePrefillTarget } from '../../edge/prefill/edge-target.js'
import type { ViewingModel } from '../../edge/prefill/viewing.js'
import type { Catalogue } from './catalogue.js'
import { type Entries, MISS, ReplayEdge } from './edge-model.js'
import { dayPopularity, type WorkloadParams } from './generate.js'
import { runPrefill } from './policies.js'
import type { Policy, ReplayClock } from './replay.js'
import { DAY_MS, type Trace } from './trace.js'

/** The policy, writing 1 for each request it hits (either tier) and 0 for a miss into `out`. */
export function recorded(policy: Policy, out: Uint8Array): Policy {
  return {
    ...policy,
    request: (i, id) => {
      const o = policy.request(i, id)
      out[i] = o === MISS ? 0 : 1
      return o
    },
  }
}

const FIRST = '/seg-00001.m4s'

/** Sessions per title and requests per rung of the day starting at request `first`. */
function dayTruth(trace: Trace, first: number, day: number) {
  const sessions = new Map<string, number>()
  const rungs = new Float64Array(8)
  for (let i = first; i < trace.ids.length && trace.times[i]! < (day + 1) * DAY_MS; i++) {
    const id = trace.ids[i]!
    if (trace.objects.keys[id]!.endsWith(FIRST)) {
      const t = trace.objects.titles[id]!
      sessions.set(t, (sessions.get(t) ?? 0) + 1)
    }
    if (trace.objects.rungs[id]! >= 0) rungs[trace.objects.rungs[id]!]!++
  }
  return { sessions, rungs }
}

export function oraclePolicy(
  trace: Trace,
  cat: Catalogue,
  config: Readonly<EdgeConfig>,
  entries: Entries,
  clock: ReplayClock,
  viewing: Omit<ViewingModel, 'renditionShares'>,
  expected?: { params: WorkloadParams; sessionsPerDay: number },
): Policy {
  const edge = new ReplayEdge(config, entries, clock)
  const target = new EdgePrefillTarget(
    edge.fillPort({ sizeOf: (q) => cat.sizeOf(q), textOf: (q) => cat.playlistText(q) }),
  )
  return {
    name: expected ? 'oracle(expected)' : 'oracle',
    request: (_i, id) => edge.request(id),
    night: async (day, first) => {
      if (day === 0) return
      const { sessions, rungs } = dayTruth(trace, first, day)
      if (expected) {
        // The generator's own expectation: sessions per day × the Zipf share of each rank.
        sessions.clear()
        const pop = dayPopularity(cat, expected.params, day)
        const sum = pop.cumulative[pop.cumulative.length - 1]!
        pop.titles.forEach((t, r) =>
          sessions.set(t.id, (expected.sessionsPerDay * (r + 1) ** -expected.params.alpha) / sum),
        )
      }
      const total = rungs.reduce((x, y) => x + y, 0)
      const shares: Record<string, number> = {}
      cat.ladder.forEach((r, i) => (shares[r.name] = total ? rungs[i]! / total : 0))
      const ranked = [...sessions].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
      await runPrefill(
        target,
        ranked.map(([title, weight], rank) => ({ title, rank, weight })),
        clock.now(),
        undefined,
        { ...viewing, renditionShares: shares, weights: 'sessions' },
      )
    },
    prefetched: () => ({ ...edge.filled }),
  }
}

export interface GapRow {
  readonly key: string
  /** Share of the bytes asked for. */
  readonly share: number
  /** Byte hit ratio of `a` and of `b` on these requests. */
  readonly hitA: number
  readonly hitB: number
  /** Share of the whole gap (a's hit bytes minus b's) these requests make. */
  readonly gapShare: number
}

const bucket = (x: number, edges: readonly number[], names: readonly string[]) => {
  const k = edges.findIndex((e) => x < e)
  return names[k < 0 ? names.length - 1 : k]!
}

/** Bytes hit by `a` and by `b` (recorded), from `fromMs` on, split four ways. */
export function splitGap(
  trace: Trace,
  cat: Catalogue,
  a: Uint8Array,
  b: Uint8Array,
  fromMs: number,
): Record<string, GapRow[]> {
  const n = trace.ids.length
  const { keys, bytes, titles, rungs } = trace.objects
  const dayCount = new Int32Array(n)
  for (let i = 0; i < n;) {
    const end = (Math.floor(trace.times[i]! / DAY_MS) + 1) * DAY_MS
    const counts = new Map<number, number>()
    let j = i
    for (; j < n && trace.times[j]! < end; j++)
      counts.set(trace.ids[j]!, (counts.get(trace.ids[j]!) ?? 0) + 1)
    for (let k = i; k < j; k++) dayCount[k] = counts.get(trace.ids[k]!)!
    i = j
  }
  const splits: Record<string, (i: number, id: number) => string> = {
    position: (_i, id) => {
      const m = /seg-(\d+)\.m4s$/.exec(keys[id]!)
      if (!m) return keys[id]!.endsWith('.m3u8') ? 'playlist' : 'init'
      const min = ((Number(m[1]) - 1) * cat.params.segmentSec) / 60
      return bucket(
        min,
        [1, 5, 15, 30, 60],
        ['<1 min', '1-5 min', '5-15 min', '15-30 min', '30-60 min', '60+ min'],
      )
    },
    rendition: (_i, id) => cat.ladder[rungs[id]!]?.name ?? '?',
    age: (i, id) => {
      const t = cat.title(titles[id]!)
      if (!t) return '?'
      if (t.releaseDay < 0) return 'back catalogue'
      const age = Math.floor(trace.times[i]! / DAY_MS) - t.releaseDay
      return bucket(age, [1, 2, 4], ['release day', 'day 1', 'days 2-3', 'day 4+'])
    },
    'requests that day': (i) => bucket(dayCount[i]!, [2, 3, 5, 10], ['1', '2', '3-4', '5-9', '10+']),
  }
  let gap = 0
  let all = 0
  for (let i = 0; i < n; i++)
    if (trace.times[i]! >= fromMs) {
      gap += (a[i]! - b[i]!) * bytes[trace.ids[i]!]!
      all += bytes[trace.ids[i]!]!
    }
  const out: Record<string, GapRow[]> = {}
  for (const [name, split] of Object.entries(splits)) {
    const rows = new Map<string, { req: number; a: number; b: number }>()
    for (let i = 0; i < n; i++) {
      if (trace.times[i]! < fromMs) continue
      const id = trace.ids[i]!
      const k = split(i, id)
      const r = rows.get(k) ?? { req: 0, a: 0, b: 0 }
      r.req += bytes[id]!
      r.a += a[i]! * bytes[id]!
      r.b += b[i]! * bytes[id]!
      rows.set(k, r)
    }
    out[name] = [...rows].map(([key, r]) => ({
      key,
      share: r.req / all,
      hitA: r.a / r.req,
      hitB: r.b / r.req,
      gapShare: gap ? (r.a - r.b) / gap : 0,
    }))
  }
  return out
}
