/** Paths and sessions for the demand model's tests (demand.test.ts, demand-order.test.ts). */
import type { DemandModel } from '../../../edge/cache/demand.js'
import type { ManualClock } from '../../../src/clock.js'

export function seg(title: string, rung: string, n: number): string {
  return `/vod/${title}/v1/${rung}/seg-${String(n).padStart(5, '0')}.m4s`
}

/** A session reading segments 1..`to` of a stream, one every `paceMs` (the clock moves). */
export function play(
  m: DemandModel,
  clock: ManualClock,
  path: (n: number) => string,
  to: number,
  paceMs = 0,
): void {
  for (let n = 1; n <= to; n++) {
    if (n > 1) clock.advance(paceMs)
    m.record(path(n))
  }
}
