/**
 * What steering believes about one edge, and how one health check changes it. Pure: the
 * poller (health.ts) does the I/O and the clock reading, this file does the hysteresis, so
 * the rules are tested as data.
 *
 * Reachability: an edge is out after `failAfter` consecutive failed checks and back after
 * `recoverAfter` consecutive good ones. A never-checked edge starts `unknown` and joins on
 * its first good check (there is nothing to recover from yet).
 * Load (egress / capacity): out of rotation above `loadHigh`, back only below `loadLow`, so
 * an edge hovering near the threshold does not flap.
 * Queueing delay (a throughput signal, off unless `queueDelayHigh` is set): an edge's /status
 * round trip is its distance plus the time the answer waits behind other bytes on its uplink.
 * The floor (the smallest round trip seen) is the distance; the median of the last
 * `QUEUE_WINDOW` round trips, less the floor, is the queue: one slow answer (a busy moment)
 * is not a queue, nor is one quick answer (a TCP flow backing off) the end of one. Above
 * `queueDelayHigh` ms the edge takes no new clients (overloaded), back below half of it.
 */
import type { EdgeStatus } from '../src/http/status.js'

export type EdgeState = 'unknown' | 'up' | 'down'

/**
 * `full`: the edge answered /status with its connection cap's refusal (503 CDN_ERR_OVERLOADED,
 * edge/http/client-limits.ts): reachable, taking no new clients.
 */
export type CheckFailure = 'timeout' | 'refused' | 'error' | 'http' | 'bad-status' | 'full'

export type CheckResult =
  | { readonly ok: true; readonly status: EdgeStatus; readonly latencyMs: number }
  | { readonly ok: false; readonly kind: CheckFailure; readonly message: string; readonly latencyMs: number }

export interface HealthRules {
  readonly failAfter: number
  readonly recoverAfter: number
  readonly loadHigh: number
  readonly loadLow: number
  /** Queueing delay (ms) above which an edge takes no new clients; 0 or absent: not used. */
  readonly queueDelayHigh?: number
}

/** Round trips the queueing delay is taken over (their median, less the floor). */
export const QUEUE_WINDOW = 3

export interface EdgeHealth {
  readonly id: string
  readonly state: EdgeState
  /** Out of rotation for load or for queueing delay (while up). */
  readonly overloaded: boolean
  /** Over loadHigh (and not yet back below loadLow). */
  readonly loadOver: boolean
  /** Queueing delay over queueDelayHigh (and not yet back below half of it). */
  readonly queueOver: boolean
  /** At its connection cap: /status refused as full, and no /status answered since. */
  readonly full: boolean
  /** Egress over capacity from the last good /status, 0 before any. */
  readonly load: number
  /** Smallest good /status round trip seen (ms), and the last QUEUE_WINDOW ones. */
  readonly floorLatencyMs: number | null
  readonly recentLatencyMs: readonly number[]
  /** Queueing delay (ms) once QUEUE_WINDOW good checks are in, else null. */
  readonly queueDelayMs: number | null
  readonly consecutiveFailures: number
  readonly consecutiveSuccesses: number
  readonly checks: number
  /** Wall-clock ms of the last check, of the last good one, of the last change of state. */
  readonly lastCheckAt: number | null
  readonly lastOkAt: number | null
  readonly changedAt: number | null
  readonly lastLatencyMs: number | null
  readonly lastError: string | null
  /** Why the edge takes no new clients; null when it is in rotation. */
  readonly why: string | null
  /** The last /status document the edge sent (the dashboard draws it). */
  readonly status: EdgeStatus | null
}

export function initialHealth(id: string): EdgeHealth {
  return {
    id,
    state: 'unknown',
    overloaded: false,
    loadOver: false,
    queueOver: false,
    full: false,
    load: 0,
    floorLatencyMs: null,
    recentLatencyMs: [],
    queueDelayMs: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    checks: 0,
    lastCheckAt: null,
    lastOkAt: null,
    changedAt: null,
    lastLatencyMs: null,
    lastError: null,
    why: 'not checked yet',
    status: null,
  }
}

export function isUsable(h: EdgeHealth): boolean {
  return h.state === 'up' && !h.overloaded
}

export interface Transition {
  readonly next: EdgeHealth
  /** Set when the edge entered or left rotation, or changed state: worth a log line. */
  readonly change: { readonly from: string; readonly to: string; readonly why: string } | null
}

function label(h: EdgeHealth): string {
  return h.state === 'up' && h.overloaded ? 'overloaded' : h.state
}

export function applyCheck(
  prev: EdgeHealth,
  result: CheckResult,
  capacityBytesPerSec: number,
  rules: HealthRules,
  nowMs: number,
): Transition {
  let { state, loadOver, queueOver, full, load, consecutiveFailures: fails, consecutiveSuccesses: oks } = prev
  let { floorLatencyMs: floor, recentLatencyMs: recent, queueDelayMs: queue } = prev
  let lastError = prev.lastError
  let status = prev.status
  let lastOkAt = prev.lastOkAt
  if (result.ok) {
    oks++
    fails = 0
    full = false
    lastOkAt = nowMs
    status = result.status
    load = result.status.egressBytesPerSec / capacityBytesPerSec
    if (state === 'unknown' || (state === 'down' && oks >= rules.recoverAfter)) state = 'up'
    if (!loadOver && load > rules.loadHigh) loadOver = true
    else if (loadOver && load < rules.loadLow) loadOver = false
    floor = floor === null ? result.latencyMs : Math.min(floor, result.latencyMs)
    recent = [...recent.slice(1 - QUEUE_WINDOW), result.latencyMs]
    queue =
      recent.length === QUEUE_WINDOW ? [...recent].sort((a, b) => a - b)[QUEUE_WINDOW >> 1]! - floor : null
    const high = rules.queueDelayHigh ?? 0
    if (high <= 0 || queue === null) queueOver = false
    else if (!queueOver && queue > high) queueOver = true
    else if (queueOver && queue < high / 2) queueOver = false
  } else if (result.kind === 'full') {
    // It answered: reachable (as a good check for reachability), out of rotation until a
    // /status answers again. Never a failure: a fleet filling at once is not steering's
    // network trouble (fail-static), and its players are refused as overloaded, not unhealthy.
    oks++
    fails = 0
    full = true
    lastError = `${result.kind}: ${result.message}`
    if (state === 'unknown' || (state === 'down' && oks >= rules.recoverAfter)) state = 'up'
  } else {
    fails++
    oks = 0
    lastError = `${result.kind}: ${result.message}`
    if (state !== 'down' && fails >= rules.failAfter) state = 'down'
  }
  // Draining before it closes (SIGTERM with --drain-delay): out of rotation at once, though it
  // still serves the clients it has. Its last good /status says so until it answers again.
  const draining = status?.draining === true
  const overloaded = loadOver || queueOver || full || draining
  let why: string | null = null
  if (state === 'down')
    why = `${lastError ?? 'unreachable'} (${fails} consecutive failures; back after ${rules.recoverAfter} good checks, ${oks} so far)`
  else if (state === 'unknown') why = `not reachable yet: ${lastError ?? 'no check yet'}`
  else if (draining) why = 'draining: it is leaving the fleet (its /status says draining)'
  else if (full) why = `overloaded: at its connection cap (${lastError})`
  else if (loadOver)
    why = `overloaded: load ${load.toFixed(2)} above ${rules.loadHigh} (back below ${rules.loadLow})`
  else if (queueOver)
    why = `overloaded: /status waits ${Math.round(queue!)} ms in its uplink's queue (round trip ${Math.round(result.latencyMs)} ms, floor ${Math.round(floor!)} ms), above ${rules.queueDelayHigh} ms (back below ${rules.queueDelayHigh! / 2})`
  const next: EdgeHealth = {
    id: prev.id,
    state,
    overloaded,
    loadOver,
    queueOver,
    full,
    load,
    floorLatencyMs: floor,
    recentLatencyMs: recent,
    queueDelayMs: queue,
    consecutiveFailures: fails,
    consecutiveSuccesses: oks,
    checks: prev.checks + 1,
    lastCheckAt: nowMs,
    lastOkAt,
    changedAt: prev.changedAt,
    lastLatencyMs: result.latencyMs,
    lastError,
    why,
    status,
  }
  const from = label(prev)
  const to = label(next)
  if (from === to) return { next, change: null }
  return {
    next: { ...next, changedAt: nowMs },
    change: { from, to, why: why ?? (result.ok ? 'healthy' : (lastError ?? '')) },
  }
}
