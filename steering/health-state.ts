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
 */
import type { EdgeStatus } from '../src/http/status.js'

export type EdgeState = 'unknown' | 'up' | 'down'

export type CheckFailure = 'timeout' | 'refused' | 'error' | 'http' | 'bad-status'

export type CheckResult =
  | { readonly ok: true; readonly status: EdgeStatus; readonly latencyMs: number }
  | { readonly ok: false; readonly kind: CheckFailure; readonly message: string; readonly latencyMs: number }

export interface HealthRules {
  readonly failAfter: number
  readonly recoverAfter: number
  readonly loadHigh: number
  readonly loadLow: number
}

export interface EdgeHealth {
  readonly id: string
  readonly state: EdgeState
  readonly overloaded: boolean
  /** Egress over capacity from the last good /status, 0 before any. */
  readonly load: number
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
    load: 0,
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
  let { state, overloaded, load, consecutiveFailures: fails, consecutiveSuccesses: oks } = prev
  let lastError = prev.lastError
  let status = prev.status
  let lastOkAt = prev.lastOkAt
  if (result.ok) {
    oks++
    fails = 0
    lastOkAt = nowMs
    status = result.status
    load = result.status.egressBytesPerSec / capacityBytesPerSec
    if (state === 'unknown' || (state === 'down' && oks >= rules.recoverAfter)) state = 'up'
    if (!overloaded && load > rules.loadHigh) overloaded = true
    else if (overloaded && load < rules.loadLow) overloaded = false
  } else {
    fails++
    oks = 0
    lastError = `${result.kind}: ${result.message}`
    if (state !== 'down' && fails >= rules.failAfter) state = 'down'
  }
  let why: string | null = null
  if (state === 'down')
    why = `${lastError ?? 'unreachable'} (${fails} consecutive failures; back after ${rules.recoverAfter} good checks, ${oks} so far)`
  else if (state === 'unknown') why = `not reachable yet: ${lastError ?? 'no check yet'}`
  else if (overloaded)
    why = `overloaded: load ${load.toFixed(2)} above ${rules.loadHigh} (back below ${rules.loadLow})`
  const next: EdgeHealth = {
    id: prev.id,
    state,
    overloaded,
    load,
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
