/**
 * The policies one run compares on the same trace and cache size:
 *
 * - `lru`: one LRU by bytes of the disk size (the floor).
 * - `edge`: the edge as configured (memory tier in front of the disk tier, ReplayEdge), with
 *   its defaults; `edge(...)`: the same with the disk tier's policies set one way (compare.ts
 *   EDGE_VARIANTS): every miss admitted, the frequency admission, ladder-aware eviction.
 * - `edge+prefill(popularity)`: the edge with a nightly prefill through the real planner
 *   (edge/prefill planTitle and decide, the EdgePrefillTarget over the model's fill port), fed
 *   the edge's own popularity ranking (edge/prefill/popularity.ts, fed by every request as the
 *   content handler feeds it) at the day's start: in effect yesterday's popularity.
 * - `edge+prefill(forecast)`: the same prefill fed a forecast that knows the release schedule
 *   (today's new titles) and the viewing model's age decay: yesterday's requests per title
 *   carried forward by the decay, releases given the mean first-day requests of earlier
 *   releases, ranked by forecast requests per byte.
 * - `belady`: Belady's MIN at the disk size (belady.ts), the bound on demand caching.
 * - `clairvoyant`: the edge whose protected share is filled before each day with the objects
 *   that day will request, greedily by requests per byte, with demand caching for the rest.
 */
import type { EdgeConfig } from '../../edge/config.js'
import { EdgePrefillTarget } from '../../edge/prefill/edge-target.js'
import { decide } from '../../edge/prefill/fit.js'
import {
  planTitle,
  type RenditionFilter,
  type TitlePlan,
  type TitleRequest,
} from '../../edge/prefill/planner.js'
import { Popularity } from '../../edge/prefill/popularity.js'
import { DEFAULT_RETRY } from '../../edge/prefill/retry.js'
import { Belady } from './belady.js'
import type { Catalogue } from './catalogue.js'
import { type Entries, PlainLru, ReplayEdge } from './edge-model.js'
import type { Policy, ReplayClock } from './replay.js'
import { DAY_MS, type Trace } from './trace.js'

export function lruPolicy(capacity: number, entries: Entries): Policy {
  const lru = new PlainLru(capacity, entries)
  return { name: 'lru', request: (_i, id) => lru.request(id) }
}

export function edgePolicy(
  config: Readonly<EdgeConfig>,
  entries: Entries,
  name = 'edge',
): Policy & { edge: ReplayEdge } {
  const edge = new ReplayEdge(config, entries)
  return { name, edge, request: (_i, id) => edge.request(id) }
}

export function beladyPolicy(trace: Trace, capacity: number, entries: Entries, next?: Int32Array): Policy {
  const b = new Belady(trace, capacity, (id) => entries.fileSize(id, false), next)
  return { name: 'belady', request: (i) => b.request(i) }
}

/** Plans and fills a ranked list the way a prefill job does (edge/prefill/job-runner.ts), at once. */
export async function runPrefill(
  target: EdgePrefillTarget,
  titles: readonly TitleRequest[],
  nowMs: number,
  renditions?: RenditionFilter,
): Promise<{ filled: number; leftOut: number }> {
  const noSleep = async () => undefined
  const plans: TitlePlan[] = []
  for (const t of titles)
    plans.push(
      await planTitle(target, t, {
        concurrency: 16,
        retry: DEFAULT_RETRY,
        hooks: { sleep: noSleep },
        ...(renditions ? { renditions } : {}),
      }),
    )
  const share = target.protectedShare
  const plan = decide({
    titles: plans,
    capacityBytes: share.capacityBytes,
    protectedTitles: share.titles(),
    maxBytesPerSecond: undefined,
    window: undefined,
    nowMs,
  })
  for (const u of plan.unprotect) share.unprotectTitle(u.title)
  let filled = 0
  for (const d of plan.titles) {
    if (d.decision !== 'fill') continue
    filled++
    const protect = { title: d.plan.title, rank: d.plan.rank }
    for (const o of d.plan.objects) await target.fill(o.path, { protect })
  }
  return { filled, leftOut: plan.titles.length - filled }
}

export type Feed = 'popularity' | 'forecast'

/** Titles worth planning: in order, until their bytes reach `budget` (the rest cannot fit). */
function upTo(cat: Catalogue, ids: readonly string[], budget: number): TitleRequest[] {
  const out: TitleRequest[] = []
  let bytes = 0
  for (const id of ids) {
    const t = cat.title(id)
    if (!t) continue
    out.push({ title: id, rank: out.length })
    bytes += cat.titleBytes(t)
    if (bytes >= budget) break
  }
  return out
}

export interface ForecastModel {
  readonly ageFloor: number
  readonly ageHalfLifeDays: number
}

/** The edge with a nightly prefill fed by `feed`. */
export function prefillPolicy(
  feed: Feed,
  config: Readonly<EdgeConfig>,
  entries: Entries,
  cat: Catalogue,
  clock: ReplayClock,
  model: ForecastModel,
  renditions?: RenditionFilter,
): Policy & { edge: ReplayEdge } {
  const edge = new ReplayEdge(config, entries)
  const upstream = { sizeOf: (p: string) => cat.sizeOf(p), textOf: (p: string) => cat.playlistText(p) }
  const target = new EdgePrefillTarget(edge.fillPort(upstream))
  const popularity = new Popularity({
    clock,
    halfLifeMs: config.popularityHalfLife,
    maxTitles: config.popularityMaxTitles,
  })
  const titles = entries.objects.titles
  // Requests per title on the day so far and the day before; first-day requests of releases.
  let today = new Map<string, number>()
  let yesterday = new Map<string, number>()
  const releaseFirstDays: number[] = []
  const budget = edge.share.capacityBytes * 1.5
  const age = (releaseDay: number, day: number) =>
    model.ageFloor + (1 - model.ageFloor) * 2 ** (-(day - releaseDay) / model.ageHalfLifeDays)

  const forecast = (day: number): string[] => {
    const releaseGuess = releaseFirstDays.length
      ? releaseFirstDays.reduce((s, n) => s + n, 0) / releaseFirstDays.length
      : Math.max(0, ...yesterday.values())
    const scored: Array<{ id: string; perByte: number }> = []
    for (const t of cat.available(day)) {
      const seen = yesterday.get(t.id) ?? 0
      const requests =
        t.releaseDay === day ? releaseGuess : (seen * age(t.releaseDay, day)) / age(t.releaseDay, day - 1)
      if (requests > 0) scored.push({ id: t.id, perByte: requests / cat.titleBytes(t) })
    }
    scored.sort((a, b) => b.perByte - a.perByte || (a.id < b.id ? -1 : 1))
    return scored.map((s) => s.id)
  }

  return {
    name: `edge+prefill(${feed})`,
    edge,
    request: (_i, id) => {
      const title = titles[id]
      if (title !== undefined) {
        popularity.hit(title)
        today.set(title, (today.get(title) ?? 0) + 1)
      }
      return edge.request(id)
    },
    night: async (day) => {
      yesterday = today
      today = new Map()
      for (const t of cat.titles)
        if (t.releaseDay === day - 1 && day - 1 > 0) releaseFirstDays.push(yesterday.get(t.id) ?? 0)
      if (day === 0) return
      const ranked =
        feed === 'popularity'
          ? popularity.ranking(config.popularityMaxTitles).map((r) => r.title)
          : forecast(day)
      await runPrefill(target, upTo(cat, ranked, budget), clock.now(), renditions)
    },
    prefetched: () => ({ ...edge.filled }),
  }
}

/**
 * The clairvoyant prefill bound: before each day, the edge's protected share is filled with
 * the objects the day will request, greedily by requests per byte (from the trace itself);
 * demand caching (the edge as configured) serves the rest.
 */
export function clairvoyantPolicy(trace: Trace, config: Readonly<EdgeConfig>, entries: Entries): Policy {
  const edge = new ReplayEdge(config, entries)
  const keys = entries.objects.keys
  return {
    name: 'clairvoyant',
    request: (_i, id) => edge.request(id),
    night: async (day, first) => {
      const end = (day + 1) * DAY_MS
      const counts = new Map<number, number>()
      for (let i = first; i < trace.ids.length && trace.times[i]! < end; i++) {
        const id = trace.ids[i]!
        counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      for (const p of edge.share.titles()) edge.share.unprotectTitle(p.title)
      const ranked = [...counts].sort(
        (a, b) => b[1] / entries.objects.bytes[b[0]]! - a[1] / entries.objects.bytes[a[0]]! || a[0] - b[0],
      )
      let room = edge.share.capacityBytes
      for (const [id] of ranked) {
        const size = entries.fileSize(id, true)
        if (size > room) continue
        room -= size
        if (!edge.index.get(keys[id]!)) {
          // Held in memory only: written to disk from there, without an upstream fetch.
          if (!edge.holds(id)) {
            edge.filled.bytes += entries.objects.bytes[id]!
            edge.filled.objects++
          }
          edge.store(id, true)
        }
        edge.share.protectKey(keys[id]!, { title: entries.objects.titles[id] ?? '_', rank: 0 })
      }
    },
    prefetched: () => ({ ...edge.filled }),
  }
}
