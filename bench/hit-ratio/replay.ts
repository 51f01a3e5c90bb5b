/**
 * The replay loop: every request of a trace through one policy, in order, on a clock that is
 * the trace's own time, with each policy's nightly work (prefill) run at each day's start
 * before its first request. Counts requests and bytes served from memory, from disk and from
 * upstream, and what prefill fetched, from `warmupDays` on (the first day fills every cache
 * from cold and has no yesterday to learn from).
 */
import type { Clock } from '../../src/clock.js'
import type { Outcome } from './edge-model.js'
import { DAY_MS, type Trace } from './trace.js'

export interface Policy {
  readonly name: string
  /** Request number `i` of the trace, for object `id`. */
  request(i: number, id: number): Outcome
  /** Runs at the start of day `day`, before request `firstIndex` (the day's first). */
  night?(day: number, firstIndex: number): Promise<void>
  /** Times of day (ms after the day's start) to run `refill` at, before the first request at or after each. */
  readonly refillsAt?: readonly number[]
  /** Runs during day `day` at `refillsAt[k]` (a refill from the day's own requests so far). */
  refill?(day: number, k: number): Promise<void>
  /** Bytes and objects prefill has fetched so far. */
  prefetched?(): { bytes: number; objects: number }
}

export interface Tally {
  objects: number
  bytes: number
}

export interface ReplayResult {
  readonly requests: Tally
  readonly memory: Tally
  readonly disk: Tally
  /** Viewers' misses: fetched from upstream on demand. */
  readonly upstream: Tally
  /** Fetched by prefill (off-peak), not counted as misses. */
  readonly prefill: Tally
  readonly objectHitRatio: number
  readonly byteHitRatio: number
  readonly memoryByteHitRatio: number
  readonly diskByteHitRatio: number
  /** Replay time (the policy's work, nights included), seconds. */
  readonly seconds: number
}

/** The trace's own time, for the policies' clocks (popularity decay, fill windows). */
export class ReplayClock implements Clock {
  at = 0
  now(): number {
    return this.at
  }
  monotonic(): number {
    return this.at
  }
}

export async function replay(
  trace: Trace,
  policy: Policy,
  opts: { warmupDays?: number; clock?: ReplayClock } = {},
): Promise<ReplayResult> {
  const warmup = opts.warmupDays ?? 1
  const clock = opts.clock ?? new ReplayClock()
  const { times, ids } = trace
  const sizes = trace.objects.bytes
  const tiers = [
    { objects: 0, bytes: 0 },
    { objects: 0, bytes: 0 },
    { objects: 0, bytes: 0 },
  ]
  const requests = { objects: 0, bytes: 0 }
  let prefillAtWarmup = { bytes: 0, objects: 0 }
  const t0 = performance.now()
  let day = -1
  let counting = false
  const refills = policy.refill ? (policy.refillsAt ?? []) : []
  let nextRefill = refills.length
  for (let i = 0; i < ids.length; i++) {
    const t = times[i]!
    while (t >= (day + 1) * DAY_MS) {
      day++
      clock.at = trace.startMs + day * DAY_MS
      if (day === warmup) prefillAtWarmup = { ...(policy.prefetched?.() ?? prefillAtWarmup) }
      counting = day >= warmup
      await policy.night?.(day, i)
      nextRefill = 0
    }
    while (nextRefill < refills.length && t >= day * DAY_MS + refills[nextRefill]!) {
      clock.at = trace.startMs + day * DAY_MS + refills[nextRefill]!
      await policy.refill!(day, nextRefill++)
    }
    clock.at = trace.startMs + t
    const id = ids[i]!
    const outcome = policy.request(i, id)
    if (!counting) continue
    const bytes = sizes[id]!
    requests.objects++
    requests.bytes += bytes
    const tier = tiers[outcome]!
    tier.objects++
    tier.bytes += bytes
  }
  const seconds = (performance.now() - t0) / 1000
  const fetched = policy.prefetched?.() ?? { bytes: 0, objects: 0 }
  const [memory, disk, upstream] = tiers as [Tally, Tally, Tally]
  const share = (n: number, d: number) => (d ? n / d : 0)
  return {
    requests,
    memory,
    disk,
    upstream,
    prefill: {
      objects: fetched.objects - prefillAtWarmup.objects,
      bytes: fetched.bytes - prefillAtWarmup.bytes,
    },
    objectHitRatio: share(memory.objects + disk.objects, requests.objects),
    byteHitRatio: share(memory.bytes + disk.bytes, requests.bytes),
    memoryByteHitRatio: share(memory.bytes, requests.bytes),
    diskByteHitRatio: share(disk.bytes, requests.bytes),
    seconds,
  }
}
