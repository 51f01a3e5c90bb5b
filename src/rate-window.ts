/**
 * Requests and bytes per second over the last 10 seconds, for every node's /status: one bucket
 * per second, indexed by second modulo the window, so adding is a few increments and no
 * allocation (the edge calls it on its hit path).
 */
import type { Clock } from './clock.js'

const WINDOW_SEC = 10

export class RateWindow {
  private readonly reqBuckets = new Float64Array(WINDOW_SEC)
  private readonly byteBuckets = new Float64Array(WINDOW_SEC)
  private readonly bucketSec = new Float64Array(WINDOW_SEC).fill(-1)
  readonly startedMono: number

  constructor(private readonly clock: Clock) {
    this.startedMono = clock.monotonic()
  }

  add(requests: number, bytes: number): void {
    const sec = Math.floor(this.clock.monotonic() / 1000)
    const i = sec % WINDOW_SEC
    if (this.bucketSec[i] !== sec) {
      this.bucketSec[i] = sec
      this.reqBuckets[i] = 0
      this.byteBuckets[i] = 0
    }
    this.reqBuckets[i]! += requests
    this.byteBuckets[i]! += bytes
  }

  /** Requests/s and bytes/s over the last 10 whole-or-partial seconds. */
  rates(): { requestsPerSec: number; egressBytesPerSec: number } {
    const now = Math.floor(this.clock.monotonic() / 1000)
    let req = 0
    let bytes = 0
    for (let i = 0; i < WINDOW_SEC; i++) {
      const s = this.bucketSec[i]!
      if (s >= 0 && now - s < WINDOW_SEC) {
        req += this.reqBuckets[i]!
        bytes += this.byteBuckets[i]!
      }
    }
    const span = Math.min(WINDOW_SEC, Math.max(1, (this.clock.monotonic() - this.startedMono) / 1000))
    return { requestsPerSec: req / span, egressBytesPerSec: bytes / span }
  }
}
