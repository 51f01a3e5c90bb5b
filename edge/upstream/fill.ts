/**
 * Prefill's way into the single-flight (single-flight.ts `fill`): makes sure an object is
 * stored, through the same coalescing path as a viewer's miss, and says how.
 */
import type { Clock } from '../../src/clock.js'
import { freshState } from '../cache/freshness.js'
import type { CacheStore } from '../cache/store.js'
import type { Flight, FlightSink } from './flight.js'
import type { Target } from './single-flight.js'

export interface FillResult {
  key: string
  /** Already held and fresh, fetched by this call, or joined a fetch already running. */
  how: 'held' | 'fetched' | 'joined'
  status: number
  bytes: number
  stored: boolean
}

/** What a fill needs of the single-flight. */
export interface FillVia {
  store: CacheStore
  clock: Clock
  /** A fetch for this key is running. */
  running(key: string): boolean
  request(target: Target, sink: FlightSink, opts: { protect?: boolean }): { flight: Flight; joined: boolean }
}

/**
 * Prefill's entry point: makes sure `target` is stored, through the same coalescing path.
 * Resolves when the object is committed (or refused), never rejects for upstream errors
 * before headers: those reject with the CdnError.
 */
export interface FillOptions {
  protect?: boolean
  /** Paces the fetch this fill starts (a capped prefill): each chunk's length in, ms to hold out. */
  pace?: (bytes: number) => number
}

export async function fillTarget(via: FillVia, target: Target, opts: FillOptions = {}): Promise<FillResult> {
  // Held and fresh: nothing to fetch. A stale copy (a short-lived master) is fetched again.
  const entry = via.store.lookup?.(target.key)
  const held = entry ? freshState(entry.fresh, via.clock.now()) === 'fresh' : via.store.has(target.key)
  if (held && !via.running(target.key))
    return {
      key: target.key,
      how: 'held',
      status: entry?.meta.status ?? 200,
      bytes: entry?.meta.bodyLength ?? 0,
      stored: true,
    }
  return new Promise<FillResult>((resolve, reject) => {
    let joined = false
    let flight: Flight | undefined
    let status = 0
    const sink: FlightSink = {
      headers: (f) => {
        flight = f
        status = f.head!.status
      },
      data: () => undefined,
      end: () => {
        const f = flight!
        f.committed.then(
          (e) =>
            resolve({
              key: target.key,
              how: joined ? 'joined' : 'fetched',
              status,
              bytes: f.received,
              stored: !!e,
            }),
          reject,
        )
      },
      error: (err) => reject(err),
      entry: (e) =>
        resolve({
          key: target.key,
          how: 'joined',
          status: e.meta.status,
          bytes: e.meta.bodyLength,
          stored: true,
        }),
    }
    const started = via.request(target, sink, { protect: opts.protect ?? false })
    joined = started.joined
    // Only a fetch this fill started is paced (the pace is its job's; a viewer's is never).
    if (!joined && opts.pace) started.flight.throttle = opts.pace
  })
}
