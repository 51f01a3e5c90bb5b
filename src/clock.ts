/**
 * Time, injected. Nothing outside this file calls Date.now() or performance.now() for
 * decisions; tests pass a manual clock and move it.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (HTTP dates, freshness). */
  now(): number
  /** Monotonic milliseconds (durations, rates, timeouts). */
  monotonic(): number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
}

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  private wall: number
  private mono = 0
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.wall = start
  }
  now(): number {
    return this.wall
  }
  monotonic(): number {
    return this.mono
  }
  advance(ms: number): void {
    this.wall += ms
    this.mono += ms
  }
}
