/**
 * The policies one run compares on the same trace and cache size:
 *
 * - `lru`: one LRU by bytes of the disk size (the floor).
 * - `edge`: the edge as configured (memory tier in front of the disk tier, ReplayEdge), with
 *   its defaults (the demand policy: `--disk-eviction demand --disk-admission demand`);
 *   `edge(lru)`: the same with the disk policy it had by default before (`--disk-eviction lru
 *   --disk-admission all`; compare.ts lruConfigFor: the rows named `edge` until the default
 *   changed are these); `edge(...)`: the disk tier's policies set one way (compare.ts
 *   EDGE_VARIANTS): every miss admitted, the frequency admission, ladder-aware eviction, the
 *   demand order.
 * - `edge+prefill(popularity)`: the edge(lru) with a nightly prefill through the real planner
 *   (edge/prefill planTitle and decide, the EdgePrefillTarget over the model's fill port), fed
 *   the edge's own popularity ranking (edge/prefill/popularity.ts, fed by every request as the
 *   content handler feeds it) at the day's start: in effect yesterday's popularity.
 * - `edge+prefill(forecast)`: the same prefill fed a forecast that knows the release schedule
 *   (today's new titles) and the viewing model: each title's sessions per day (requests of its
 *   first segment) averaged over the days seen, older days discounted; releases given the mean
 *   first-day sessions of earlier releases; with the viewing model every title is planned and
 *   the planner fits objects by expected requests (weights in sessions), with yesterday's
 *   rendition shares of the later segments and of each of the first STARTUP_POSITIONS positions
 *   (`startupShares`: sessions start on one rung). With `Refills`, both prefills plan again
 *   during the day: the forecast updated by the day's own sessions so far.
 * - `belady`: Belady's MIN at the disk size (belady.ts), the bound on demand caching.
 * - `clairvoyant`: the edge(lru) whose protected share is filled before each day with the
 *   objects that day will request, greedily by requests per byte, with demand caching (LRU) for
 *   the rest.
 * - `edge(demand)+prefill(forecast)` and `clairvoyant(demand)`: the forecast prefill and the
 *   clairvoyant bound over the demand policy (`--disk-admission demand --disk-eviction demand`,
 *   now the edge's default) instead of LRU for what the prefill does not hold.
 * - `edge(demand-oracle)`: the demand policy with the generator's true rates in place of its
 *   estimates (oracle-demand.ts): the ceiling of ranking objects by how often they will be asked.
 */
import type { DemandModel } from '../../edge/cache/demand.js'
import type { EdgeConfig } from '../../edge/config/spec.js'
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
import type { ViewingModel } from '../../edge/prefill/viewing.js'
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
  clock?: ReplayClock,
  demand?: DemandModel,
): Policy & { edge: ReplayEdge } {
  const edge = new ReplayEdge(config, entries, clock, demand)
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
  viewing?: ViewingModel,
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
    ...(viewing ? { viewing } : {}),
  })
  for (const u of plan.unprotect) share.unprotectTitle(u.title)
  // As the job runner does: a title filled again is protected as this plan says, no more.
  for (const d of plan.titles) if (d.decision === 'fill') share.unprotectTitle(d.plan.title)
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

/** How much the forecast discounts each older day of a title's history. */
const HISTORY_DISCOUNT = 0.7
/**
 * A refill's forecast weighs a title's history as this many days of the day's own sessions
 * per day of history (discounted as above); a release of the day counts RELEASE_PRIOR_DAYS.
 */
export const PRIOR_SCALE = 1
export const RELEASE_PRIOR_DAYS = 0.5
const HOUR_MS = 3_600_000

/**
 * Titles worth planning: in order, until their bytes reach `budget` (the rest cannot fit),
 * each with its forecast weight when there is one.
 */
function upTo(
  cat: Catalogue,
  ranked: ReadonlyArray<{ id: string; weight?: number }>,
  budget: number,
): TitleRequest[] {
  const out: TitleRequest[] = []
  let bytes = 0
  for (const r of ranked) {
    const t = cat.title(r.id)
    if (!t) continue
    out.push({ title: r.id, rank: out.length, ...(r.weight === undefined ? {} : { weight: r.weight }) })
    bytes += cat.titleBytes(t)
    if (bytes >= budget) break
  }
  return out
}

/**
 * What the forecast knows of the workload: the age decay of titles' popularity (used no more:
 * sessions follow rank, see prefillPolicy) and the generic viewing model (how far sessions
 * watch; rendition shares it learns from yesterday).
 */
export interface ForecastModel {
  readonly ageFloor: number
  readonly ageHalfLifeDays: number
  /** The planner's viewing model (edge/prefill/viewing.ts); without it, whole titles are fitted. */
  readonly viewing?: Omit<ViewingModel, 'renditionShares' | 'startupShares'>
  /**
   * The first segment positions whose rendition shares the forecast learns one by one
   * (`startupShares`; default STARTUP_POSITIONS), the later segments' shares learned together.
   */
  readonly startupPositions?: number
}

/**
 * Positions learned one by one: players start on one rung before they measure the bandwidth
 * (the generator's `startupSegments`, 2, which the forecast does not read: it sees the shares).
 */
export const STARTUP_POSITIONS = 4

/**
 * Refills during the day (`--refill-hours`): hours after the day's start (04:00) at which the
 * prefill plans again, the forecast updated by the day's own sessions so far (the popularity
 * feed: the edge's popularity then); the prior's weights (defaults PRIOR_SCALE, RELEASE_PRIOR_DAYS).
 */
export interface Refills {
  readonly hours: readonly number[]
  readonly priorScale?: number
  readonly releasePriorDays?: number
}

/** The edge with a nightly prefill fed by `feed`, and refills during the day when asked. */
export function prefillPolicy(
  feed: Feed,
  config: Readonly<EdgeConfig>,
  entries: Entries,
  cat: Catalogue,
  clock: ReplayClock,
  model: ForecastModel,
  renditions?: RenditionFilter,
  refill: Refills = { hours: [] },
): Policy & { edge: ReplayEdge } {
  const edge = new ReplayEdge(config, entries, clock)
  const upstream = { sizeOf: (p: string) => cat.sizeOf(p), textOf: (p: string) => cat.playlistText(p) }
  const target = new EdgePrefillTarget(edge.fillPort(upstream))
  const popularity = new Popularity({
    clock,
    halfLifeMs: config.popularityHalfLife,
    maxTitles: config.popularityMaxTitles,
  })
  const titles = entries.objects.titles
  // Sessions per title (requests of a first segment) on the day so far and the day before;
  // first-day sessions of releases.
  let today = new Map<string, number>()
  let yesterday = new Map<string, number>()
  // Segment requests per rung today and yesterday (the rendition shares of the viewing model):
  // of the first `positions` positions one by one, and of the later segments.
  const positions = model.startupPositions ?? STARTUP_POSITIONS
  const perRung = () => Array.from({ length: positions + 1 }, () => new Float64Array(8))
  let rungsToday = perRung()
  let rungsYesterday = perRung()
  const positionCache = new Int32Array(1 << 20).fill(-2)
  /** A segment's index in its rendition (-1: not a segment). */
  const positionOf = (id: number): number => {
    if (id < positionCache.length && positionCache[id] !== -2) return positionCache[id]!
    const m = /\/seg-(\d+)\.m4s$/.exec(entries.objects.keys[id]!)
    const p = m ? Number(m[1]) - 1 : -1
    if (id < positionCache.length) positionCache[id] = p
    return p
  }
  // Sessions started in each hour of the day (the diurnal curve a refill learns from yesterday).
  let startsToday = new Float64Array(24)
  let startsYesterday = new Float64Array(24)
  let dayStartMs = 0
  const releaseFirstDays: number[] = []
  // Each title's sessions per day, averaged over the days seen with the older ones discounted:
  // one day's count of a back-catalogue title is a handful. Not scaled by the age factor: a
  // title's sessions follow its rank among the titles, which moves far less than its own age
  // factor (scaled: 0.871 of the clairvoyant bound at 10%, 0.878 by half; unscaled: 0.882).
  const history = new Map<string, { sum: number; weight: number }>()
  // Fitting objects takes the heads of many titles: plan every title with a forecast.
  const budget = model.viewing ? Number.POSITIVE_INFINITY : edge.share.capacityBytes * 1.5
  // The forecast counts sessions; the edge's popularity counts requests (the planner's default).
  const weights = feed === 'forecast' ? 'sessions' : 'requests'
  const first = new Uint8Array(1 << 20)
  const isFirst = (id: number) => {
    if (id >= first.length) return entries.objects.keys[id]!.endsWith('/seg-00001.m4s')
    if (first[id] === 0) first[id] = entries.objects.keys[id]!.endsWith('/seg-00001.m4s') ? 2 : 1
    return first[id] === 2
  }
  const viewingToday = (): ViewingModel | undefined => {
    if (!model.viewing) return undefined
    // Yesterday's requests per rung and, during the day, the day's own so far.
    const shares = rungsYesterday.map((y, k) => {
      const rungs = y.map((n, i) => n + rungsToday[k]![i]!)
      const total = rungs.reduce((s, n) => s + n, 0)
      const out: Record<string, number> = {}
      if (total) cat.ladder.forEach((r, i) => (out[r.name] = rungs[i]! / total))
      return out
    })
    const steady = shares[positions]!
    if (!Object.keys(steady).length) return { ...model.viewing, weights }
    return {
      ...model.viewing,
      renditionShares: steady,
      ...(positions ? { startupShares: shares.slice(0, positions) } : {}),
      weights,
    }
  }
  /** The share of a day's sessions that start before `ms` after its start, from yesterday's. */
  const elapsedShare = (ms: number): number => {
    const total = startsYesterday.reduce((s, n) => s + n, 0)
    if (!total) return ms / DAY_MS
    const h = Math.min(24, ms / HOUR_MS)
    let before = 0
    for (let k = 0; k < Math.floor(h); k++) before += startsYesterday[k]!
    if (h < 24) before += startsYesterday[Math.floor(h)]! * (h - Math.floor(h))
    return before / total
  }

  // `elapsed`: during the day (a refill), the share of the day's sessions already started; each
  // title's rate is then its history's, as a prior, updated by the day's own sessions so far
  // (a gamma-Poisson posterior: the history counts as PRIOR_SCALE days per day seen).
  const forecast = (day: number, elapsed = 0): Array<{ id: string; weight: number }> => {
    const releaseGuess = releaseFirstDays.length
      ? releaseFirstDays.reduce((s, n) => s + n, 0) / releaseFirstDays.length
      : Math.max(0, ...yesterday.values())
    const scored: Array<{ id: string; requests: number; perByte: number }> = []
    for (const t of cat.available(day)) {
      const h = history.get(t.id)
      const prior = t.releaseDay === day ? releaseGuess : h?.weight ? h.sum / h.weight : 0
      const days =
        t.releaseDay === day
          ? (refill.releasePriorDays ?? RELEASE_PRIOR_DAYS)
          : (h?.weight ?? 0) * (refill.priorScale ?? PRIOR_SCALE)
      const seen = today.get(t.id) ?? 0
      const requests = elapsed > 0 ? (prior * days + seen) / (days + elapsed) : prior
      if (requests > 0) scored.push({ id: t.id, requests, perByte: requests / cat.titleBytes(t) })
    }
    // Whole titles by sessions per byte; objects (the viewing model) by sessions.
    scored.sort(
      (a, b) => (model.viewing ? b.requests - a.requests : b.perByte - a.perByte) || (a.id < b.id ? -1 : 1),
    )
    return scored.map((s) => ({ id: s.id, weight: s.requests }))
  }

  return {
    name: `edge+prefill(${feed})`,
    edge,
    request: (_i, id) => {
      const title = titles[id]
      if (title !== undefined) {
        popularity.hit(title)
        if (isFirst(id)) {
          today.set(title, (today.get(title) ?? 0) + 1)
          startsToday[Math.min(23, Math.floor((clock.now() - dayStartMs) / HOUR_MS))]!++
        }
      }
      const rung = entries.objects.rungs[id]!
      const position = rung >= 0 ? positionOf(id) : -1
      if (position >= 0) rungsToday[Math.min(position, positions)]![rung]!++
      return edge.request(id)
    },
    night: async (day) => {
      yesterday = today
      today = new Map()
      rungsYesterday = rungsToday
      rungsToday = perRung()
      startsYesterday = startsToday
      startsToday = new Float64Array(24)
      dayStartMs = clock.now()
      for (const t of cat.titles)
        if (t.releaseDay === day - 1 && day - 1 > 0) releaseFirstDays.push(yesterday.get(t.id) ?? 0)
      if (day > 0)
        for (const t of cat.available(day - 1)) {
          const h = history.get(t.id) ?? { sum: 0, weight: 0 }
          h.sum = h.sum * HISTORY_DISCOUNT + (yesterday.get(t.id) ?? 0)
          h.weight = h.weight * HISTORY_DISCOUNT + 1
          history.set(t.id, h)
        }
      if (day === 0) return
      const ranked =
        feed === 'popularity'
          ? popularity.ranking(config.popularityMaxTitles).map((r) => ({ id: r.title, weight: r.weight }))
          : forecast(day)
      await runPrefill(target, upTo(cat, ranked, budget), clock.now(), renditions, viewingToday())
    },
    refillsAt: refill.hours.map((h) => h * HOUR_MS),
    refill: async (day, k) => {
      if (day === 0) return
      const ranked =
        feed === 'popularity'
          ? popularity.ranking(config.popularityMaxTitles).map((r) => ({ id: r.title, weight: r.weight }))
          : forecast(day, elapsedShare(refill.hours[k]! * HOUR_MS))
      await runPrefill(target, upTo(cat, ranked, budget), clock.now(), renditions, viewingToday())
    },
    prefetched: () => ({ ...edge.filled }),
  }
}

/**
 * The clairvoyant prefill bound: before each day, the edge's protected share is filled with
 * the objects the day will request, greedily by requests per byte (from the trace itself);
 * demand caching (the edge as configured) serves the rest.
 */
export function clairvoyantPolicy(
  trace: Trace,
  config: Readonly<EdgeConfig>,
  entries: Entries,
  name = 'clairvoyant',
  clock?: ReplayClock,
): Policy {
  const edge = new ReplayEdge(config, entries, clock)
  const keys = entries.objects.keys
  return {
    name,
    request: (_i, id) => edge.request(id),
    night: async (day, first) => {
      const end = (day + 1) * DAY_MS
      const counts = new Map<number, number>()
      for (let i = first; i < trace.ids.length && trace.times[i]! < end; i++) {
        const id = trace.ids[i]!
        counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      for (const p of edge.share.titles()) edge.share.unprotectTitle(p.title)
      // By requests: each byte held serves as many bytes as the object has requests (the
      // byte hit ratio's knapsack); ties to the smaller object.
      const ranked = [...counts].sort(
        (a, b) => b[1] - a[1] || entries.objects.bytes[a[0]]! - entries.objects.bytes[b[0]]! || a[0] - b[0],
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
