/**
 * The seeded trace generator. The workload model, with its parameters published in the
 * results (DEFAULT_WORKLOAD):
 *
 * - Catalogue (catalogue.ts): a back catalogue plus new titles every day; features and
 *   episodes; the origin's five-rung ladder; 4 s segments.
 * - Popularity: each day titles are ranked by appeal × age factor, where the age factor is
 *   `floor + (1 - floor) · 2^(-age / halfLife)` (shot noise: a release arrives near the top
 *   and decays to the back catalogue's level), and a session picks the title at rank r with
 *   probability ∝ (r + 1)^-alpha (Zipf).
 * - Arrivals: sessions per day fixed, start times from a diurnal curve
 *   `1 + amplitude · cos(2π (hour - peakHour) / 24)`.
 * - A session watches a prefix: with probability `earlyStop` an exponential number of seconds
 *   (mean `earlyMeanSec`), else a uniform share of the title between `minShare` and 1.
 * - Renditions: a session's bandwidth is log-normal; it starts on the startup rung (the
 *   master's first variant, as hls.js does) for `startupSegments` segments, then plays the
 *   highest rung its bandwidth sustains (rate × 1.2); before each segment the bandwidth changes
 *   with probability `switchProb` (× log-normal), which may switch rungs. Each rung a session
 *   plays costs its media playlist and init segment once.
 * - Requests arrive in real time: segment k at start + k × segment length.
 */
import { DEFAULT_STARTUP_BITRATE } from '../../src/hls/playlist.js'
import { Catalogue, type CatalogueParams, FILE_INDEX, FILE_INIT, type Title } from './catalogue.js'
import { exponential, lognormal, pick, type Rng, seeded } from './rng.js'
import { DAY_MS, type Trace, TraceBuilder } from './trace.js'

export interface WorkloadParams extends CatalogueParams {
  readonly seed: number
  /** Requests wanted in all (sessions per day are sized to reach it). */
  readonly requests: number
  readonly alpha: number
  /** Age factor: its floor and its half-life in days. */
  readonly ageFloor: number
  readonly ageHalfLifeDays: number
  readonly diurnalAmplitude: number
  readonly peakHour: number
  /** Hour of day the replay's day starts (and the nightly fill runs). */
  readonly dayStartHour: number
  readonly earlyStop: number
  readonly earlyMeanSec: number
  readonly minShare: number
  /** Median and log-normal sigma of sessions' bandwidth, bits/s. */
  readonly bandwidthMedian: number
  readonly bandwidthSigma: number
  readonly startupSegments: number
  readonly switchProb: number
  readonly switchSigma: number
}

export const DEFAULT_WORKLOAD: WorkloadParams = {
  seed: 1,
  requests: 2_000_000,
  days: 8,
  titles: 200,
  newTitlesPerDay: 10,
  featureShare: 0.4,
  featureMinutes: [60, 140],
  episodeMinutes: [20, 50],
  segmentSec: 4,
  sizeSigma: 0.3,
  volumeSigma: 1,
  alpha: 0.8,
  ageFloor: 0.05,
  ageHalfLifeDays: 3,
  diurnalAmplitude: 0.7,
  peakHour: 21,
  dayStartHour: 4,
  earlyStop: 0.5,
  earlyMeanSec: 300,
  minShare: 0.2,
  bandwidthMedian: 6_000_000,
  bandwidthSigma: 0.8,
  startupSegments: 2,
  switchProb: 0.03,
  switchSigma: 0.5,
}

/** The day's titles, most popular first, with the cumulative Zipf weights to draw from. */
export function dayPopularity(
  cat: Catalogue,
  p: WorkloadParams,
  day: number,
): { titles: Title[]; cumulative: Float64Array } {
  const age = (t: Title) => day - t.releaseDay
  const factor = (t: Title) => p.ageFloor + (1 - p.ageFloor) * 2 ** (-age(t) / p.ageHalfLifeDays)
  const titles = cat
    .available(day)
    .map((t) => ({ t, w: t.volume * factor(t) }))
    .sort((a, b) => b.w - a.w || a.t.index - b.t.index)
    .map((x) => x.t)
  const cumulative = new Float64Array(titles.length)
  let sum = 0
  for (let r = 0; r < titles.length; r++) {
    sum += (r + 1) ** -p.alpha
    cumulative[r] = sum
  }
  return { titles, cumulative }
}

interface SessionSink {
  (offsetMs: number, title: Title, rung: number, file: number): void
}

/** The rung a bandwidth sustains: the highest whose rate × 1.2 fits, else the lowest. */
function rungFor(cat: Catalogue, bandwidth: number): number {
  const i = cat.ladder.findIndex((r) => (r.videoBitrate + r.audioBitrate) * 1.2 <= bandwidth)
  return i < 0 ? cat.ladder.length - 1 : i
}

/** One viewing session's requests, as offsets from its start. */
export function playSession(
  cat: Catalogue,
  p: WorkloadParams,
  rng: Rng,
  title: Title,
  emit: SessionSink,
): number {
  const watchSec =
    rng() < p.earlyStop
      ? exponential(rng, p.earlyMeanSec)
      : (p.minShare + (1 - p.minShare) * rng()) * title.durationSec
  const segments = Math.min(title.segments, Math.max(1, Math.ceil(watchSec / p.segmentSec)))
  let bandwidth = lognormal(rng, p.bandwidthMedian, p.bandwidthSigma)
  const startup = rungFor(cat, DEFAULT_STARTUP_BITRATE / 1.2 + 1)
  const seen = new Set<number>()
  let n = 0
  for (let s = 0; s < segments; s++) {
    if (rng() < p.switchProb) bandwidth *= lognormal(rng, 1, p.switchSigma)
    const rung = s < p.startupSegments ? Math.max(startup, rungFor(cat, bandwidth)) : rungFor(cat, bandwidth)
    const at = s * p.segmentSec * 1000
    if (!seen.has(rung)) {
      seen.add(rung)
      emit(at, title, rung, FILE_INDEX)
      emit(at, title, rung, FILE_INIT)
      n += 2
    }
    emit(at, title, rung, s + 2)
    n++
  }
  return n
}

/** A start offset in the day (ms after the day's start hour) from the diurnal curve. */
function startOffset(p: WorkloadParams, rng: Rng): number {
  for (;;) {
    const ms = rng() * DAY_MS
    const hour = (p.dayStartHour + ms / 3_600_000) % 24
    const rate = 1 + p.diurnalAmplitude * Math.cos((2 * Math.PI * (hour - p.peakHour)) / 24)
    if (rng() * (1 + p.diurnalAmplitude) < rate) return ms
  }
}

export interface Generated {
  readonly trace: Trace
  readonly catalogue: Catalogue
  readonly sessionsPerDay: number
}

/** Generates the trace the parameters describe (same parameters, same trace). */
export function generateTrace(p: WorkloadParams): Generated {
  const cat = new Catalogue(p, seeded(p.seed))
  // Size the sessions from a sample of the first day's sessions (a separate stream).
  const probe = seeded(p.seed ^ 0x5eed)
  const first = dayPopularity(cat, p, 0)
  let sampled = 0
  const samples = 500
  for (let i = 0; i < samples; i++)
    sampled += playSession(cat, p, probe, first.titles[pick(first.cumulative, probe())]!, () => undefined)
  const sessionsPerDay = Math.max(1, Math.round(p.requests / p.days / (sampled / samples)))

  const rng = seeded(p.seed + 1)
  const b = new TraceBuilder()
  const codes = new Map<number, number>()
  const idOf = (t: Title, rung: number, file: number): number => {
    const code = (t.index * 8 + rung) * 8192 + file
    let id = codes.get(code)
    if (id === undefined) {
      id = b.objects.intern(cat.filePath(t, rung, file), cat.fileBytes(t, rung, file))
      codes.set(code, id)
    }
    return id
  }
  for (let day = 0; day < p.days; day++) {
    const pop = dayPopularity(cat, p, day)
    for (let s = 0; s < sessionsPerDay; s++) {
      const start = day * DAY_MS + startOffset(p, rng)
      const title = pop.titles[pick(pop.cumulative, rng())]!
      playSession(cat, p, rng, title, (at, t, rung, file) => b.push(start + at, idOf(t, rung, file)))
    }
  }
  const startMs = Date.UTC(2026, 0, 5, p.dayStartHour)
  return { trace: b.build(startMs), catalogue: cat, sessionsPerDay }
}
