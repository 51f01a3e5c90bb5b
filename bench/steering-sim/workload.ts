/**
 * The sessions of the simulated day: when each client starts watching (a diurnal curve in
 * its local time, the evening peak at 21:00), for how long, and which title. Seeded.
 *
 * - Sessions per client: Poisson with mean `sessionsPerClient`.
 * - Local start time: drawn from `diurnal(h)`, a low night, a midday shoulder and an evening
 *   peak; the client's time zone is its zone's longitude / 15 (whole hours).
 * - Duration: log-normal (`durationMedianMin`, `durationSigma`), cut at `durationMaxMin`.
 * - Title: Zipf(`zipfS`) over `titles` titles.
 * The day is simulated from 00:00 to 24:00 UTC after `warmupHours` of the previous
 * evening (the same day's last hours again), so the day starts with sessions in progress.
 */
import { prng } from '../../fixtures/prng.js'

export interface WorkloadParams {
  readonly seed: number
  readonly sessionsPerClient: number
  readonly durationMedianMin: number
  readonly durationSigma: number
  readonly durationMaxMin: number
  readonly titles: number
  readonly zipfS: number
  readonly peakHour: number
  /** Hours simulated (24: a day); the run reports each of them. */
  readonly hours: number
  readonly warmupHours: number
}

export const HOUR = 3600

/** Viewing intensity at local hour `h` (0–24), relative; its peak is at `peak`. */
export function diurnal(h: number, peak = 21): number {
  const g = (centre: number, width: number) => {
    let d = Math.abs(h - centre) % 24
    if (d > 12) d = 24 - d
    return Math.exp(-(d * d) / (2 * width * width))
  }
  return 0.1 + 0.3 * g(peak - 8, 3) + g(peak, 2.2)
}

/** The share of a day's sessions starting in each minute of local time, cumulated. */
function minuteCdf(peak: number): Float64Array {
  const cdf = new Float64Array(1440)
  let sum = 0
  for (let m = 0; m < 1440; m++) cdf[m] = sum += diurnal((m + 0.5) / 60, peak)
  for (let m = 0; m < 1440; m++) cdf[m]! /= sum
  return cdf
}

/** The peak of the curve over its daily mean: concurrency at the peak over the day's average. */
export function peakFactor(peak = 21): number {
  let sum = 0
  let max = 0
  for (let m = 0; m < 1440; m++) {
    const w = diurnal((m + 0.5) / 60, peak)
    sum += w
    max = Math.max(max, w)
  }
  return (max * 1440) / sum
}

/** Mean duration of a session, s: the cut log-normal's mean, estimated from a fixed sample. */
export function meanDurationSec(p: WorkloadParams): number {
  const rnd = prng(12345)
  const n = 200_000
  let s = 0
  for (let i = 0; i < n; i++) s += duration(p, rnd)
  return s / n
}

function duration(p: WorkloadParams, rnd: () => number): number {
  // Box-Muller: a standard normal from two uniforms.
  const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd())
  return Math.min(p.durationMaxMin, p.durationMedianMin * Math.exp(p.durationSigma * z)) * 60
}

/** Expected concurrent sessions per client at its local peak. */
export function peakSessionsPerClient(p: WorkloadParams): number {
  return (p.sessionsPerClient * meanDurationSec(p) * peakFactor(p.peakHour)) / (24 * HOUR)
}

export interface Sessions {
  readonly count: number
  /** Seconds from the start of the simulated day (negative in the warm-up). */
  readonly start: Float64Array
  readonly end: Float64Array
  readonly client: Int32Array
  readonly title: Int32Array
  /** Session numbers in order of start. */
  readonly order: Int32Array
}

/** Draws every session; `tzOf(client)` is the client's UTC offset in hours. */
export function generateSessions(p: WorkloadParams, clients: number, tzOf: (c: number) => number): Sessions {
  const rnd = prng(p.seed)
  const cdf = minuteCdf(p.peakHour)
  const titleCdf = new Float64Array(p.titles)
  let acc = 0
  for (let i = 0; i < p.titles; i++) titleCdf[i] = acc += 1 / (i + 1) ** p.zipfS
  for (let i = 0; i < p.titles; i++) titleCdf[i]! /= acc
  const search = (a: Float64Array, u: number) => {
    let lo = 0
    let hi = a.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (a[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const span = p.hours * HOUR
  const warm = p.warmupHours * HOUR
  const start: number[] = []
  const end: number[] = []
  const client: number[] = []
  const title: number[] = []
  const day = 24 * HOUR
  for (let c = 0; c < clients; c++) {
    const n = poisson(rnd, p.sessionsPerClient)
    const tz = tzOf(c)
    for (let k = 0; k < n; k++) {
      const local = (search(cdf, rnd()) + rnd()) * 60
      const utc = (((local - tz * HOUR) % day) + day) % day
      const dur = duration(p, rnd)
      const t = search(titleCdf, rnd())
      // The day repeats: a start is simulated at each of its copies inside [−warm-up, hours).
      for (let s = utc + day * Math.ceil((-warm - utc) / day); s < span; s += day) {
        start.push(s)
        end.push(s + dur)
        client.push(c)
        title.push(t)
      }
    }
  }
  const count = start.length
  const st = Float64Array.from(start)
  const order = Int32Array.from({ length: count }, (_, i) => i).sort((a, b) => st[a]! - st[b]! || a - b)
  return {
    count,
    start: st,
    end: Float64Array.from(end),
    client: Int32Array.from(client),
    title: Int32Array.from(title),
    order,
  }
}

function poisson(rnd: () => number, mean: number): number {
  const l = Math.exp(-mean)
  let k = 0
  let p = rnd()
  while (p > l && k < 1000) {
    k++
    p *= rnd()
  }
  return k
}
