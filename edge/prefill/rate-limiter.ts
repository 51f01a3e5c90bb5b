/**
 * A token bucket on bytes, and a meter of the rate actually achieved.
 *
 * Objects are taken whole: a fill may start whenever the bucket is not in debt, and its bytes
 * are then charged (the bucket may go negative). Waiters pay the debt back at the rate. So an
 * object larger than the burst still goes through, and over any span the bytes sent stay
 * within `burst + rate × span + one object`. The rate can change while a job runs (the fill
 * window opening or closing); 0 pauses, undefined is unlimited.
 */
import type { Clock } from '../../src/clock.js'
import type { Sleep } from './sleep.js'

export interface RateLimiterOptions {
  /** Bytes per second; undefined = unlimited, 0 = paused. */
  readonly rate: number | undefined
  /** Bucket size in bytes; defaults to `burstMs` at the rate (at least 64 KiB). */
  readonly burst?: number
  /** The default bucket, in ms at the rate (default 100). */
  readonly burstMs?: number
  /**
   * Shortest hold `pace` asks for once the bucket is in debt (default 0: just the debt). A
   * paced body then sleeps in a few long steps and reads what the bucket refilled in one go,
   * rather than a timer and a pause per chunk; the bucket must hold at least this much, or the
   * rate is lost.
   */
  readonly minHoldMs?: number
  readonly clock: Clock
}

/** Longest single sleep while paused, so a rate change is noticed. */
const MAX_WAIT_MS = 1000

export class ByteRateLimiter {
  private rate: number | undefined
  private burst: number
  private readonly fixedBurst: number | undefined
  private readonly burstMs: number
  private readonly minHoldMs: number
  private tokens: number
  private last: number
  private readonly clock: Clock

  constructor(options: RateLimiterOptions) {
    this.clock = options.clock
    this.rate = options.rate
    this.fixedBurst = options.burst
    this.burstMs = options.burstMs ?? 100
    this.minHoldMs = options.minHoldMs ?? 0
    this.burst = this.burstFor(options.rate)
    this.tokens = this.burst
    this.last = this.clock.monotonic()
  }

  get currentRate(): number | undefined {
    return this.rate
  }

  setRate(rate: number | undefined): void {
    if (rate === this.rate) return
    this.refill()
    this.rate = rate
    this.burst = this.burstFor(rate)
    this.tokens = Math.min(this.tokens, this.burst)
  }

  /**
   * Takes `bytes` if the bucket is not in debt and returns 0; otherwise returns how many ms
   * to wait before asking again (Infinity while paused).
   */
  tryTake(bytes: number): number {
    if (this.rate === undefined) return 0
    this.refill()
    if (this.rate === 0) return Number.POSITIVE_INFINITY
    if (this.tokens >= 0) {
      this.tokens -= bytes
      return 0
    }
    return Math.ceil((-this.tokens / this.rate) * 1000)
  }

  /**
   * Charges `bytes` as they arrive (a paced body, chunk by chunk) and returns how many ms to
   * hold the next chunk so the bytes stay within the rate (0 when the bucket is not in debt, or
   * the rate is unlimited or paused: an object admitted before a pause finishes). A hold is at
   * least `minHoldMs`.
   */
  pace(bytes: number): number {
    if (!this.rate) return 0
    this.refill()
    this.tokens -= bytes
    if (this.tokens >= 0) return 0
    const debtMs = Math.ceil((-this.tokens / this.rate) * 1000)
    return Math.min(MAX_WAIT_MS, Math.max(this.minHoldMs, debtMs))
  }

  /** Adjusts the charge once an object's real size is known (positive = more bytes). */
  charge(bytes: number): void {
    if (this.rate === undefined) return
    this.refill()
    this.tokens = Math.min(this.burst, this.tokens - bytes)
  }

  /** Waits until `bytes` may go. Resolves false if `signal` aborted first. */
  async take(bytes: number, sleep: Sleep, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false
      const wait = this.tryTake(bytes)
      if (wait === 0) return true
      await sleep(Math.min(wait, MAX_WAIT_MS), signal)
    }
  }

  private refill(): void {
    const now = this.clock.monotonic()
    const dt = Math.max(0, now - this.last)
    this.last = now
    if (this.rate) this.tokens = Math.min(this.burst, this.tokens + (this.rate * dt) / 1000)
  }

  private burstFor(rate: number | undefined): number {
    return this.fixedBurst ?? Math.max(64 * 1024, ((rate ?? 0) * this.burstMs) / 1000)
  }
}

/** Bytes per second over the last `spanMs`, in one-second buckets (bounded memory). */
export class RateMeter {
  private readonly buckets: number[]
  private readonly stamps: number[]
  private readonly clock: Clock
  private readonly start: number

  constructor(clock: Clock, spanMs = 10_000) {
    this.clock = clock
    this.start = clock.monotonic()
    const n = Math.max(1, Math.ceil(spanMs / 1000))
    this.buckets = new Array(n).fill(0)
    this.stamps = new Array(n).fill(-1)
  }

  add(bytes: number): void {
    const sec = Math.floor(this.clock.monotonic() / 1000)
    const i = sec % this.buckets.length
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec
      this.buckets[i] = 0
    }
    this.buckets[i]! += bytes
  }

  /** Average over the span (a partial current second counts as the time elapsed in it). */
  rate(): number {
    const nowMs = this.clock.monotonic()
    const sec = Math.floor(nowMs / 1000)
    const n = this.buckets.length
    let total = 0
    for (let i = 0; i < n; i++) {
      const s = this.stamps[i]!
      if (s > sec - n && s <= sec) total += this.buckets[i]!
    }
    const spanSec = Math.min(n - 1 + (nowMs - sec * 1000) / 1000, (nowMs - this.start) / 1000)
    return spanSec > 0 ? total / spanSec : 0
  }
}
