/**
 * Plain-number counters for the hot path (a hit costs a few increments, no allocation) and
 * the 10-second rate window behind /status. metrics.ts exposes the same numbers to
 * Prometheus at scrape time.
 */
import type { Clock } from '../src/clock.js'
import { RateWindow } from '../src/rate-window.js'
import { OUTCOMES, type Outcome } from './cache/outcome.js'

export class EdgeStats {
  readonly requests: Record<Outcome, number>
  bytesServed = 0
  activeConnections = 0
  /** Connections refused past --max-connections, and closed for a stalled write. */
  connectionsRefused = 0
  clientWriteStalls = 0
  /** Requests by protocol: HTTP/1.1 in the clear, over TLS, and HTTP/2. */
  readonly protocols = { h1: 0, https1: 0, h2: 0 }
  /** TLS handshakes completed: full, and resumed from a session ticket. */
  readonly tlsHandshakes = { full: 0, resumed: 0 }
  private readonly window: RateWindow

  constructor(clock: Clock) {
    this.requests = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>
    this.window = new RateWindow(clock)
  }

  get startedMono(): number {
    return this.window.startedMono
  }

  /** One request answered: `bytes` of body sent (or to be sent). */
  record(outcome: Outcome, bytes: number): void {
    this.requests[outcome]++
    this.bytesServed += bytes
    this.window.add(1, bytes)
  }

  /** Requests/s and bytes/s over the last 10 whole-or-partial seconds. */
  rates(): { requestsPerSec: number; egressBytesPerSec: number } {
    return this.window.rates()
  }

  /** Shares of requests answered by memory, disk and upstream. */
  hitShares(): { hitRatio: number; memory: number; disk: number; miss: number } {
    return hitSharesOf(this.requests)
  }

  /** The client-facing numbers, for a cluster primary to add up (edge/cluster). */
  snapshot(): ClientSnapshot {
    return {
      requests: { ...this.requests },
      bytesServed: this.bytesServed,
      activeConnections: this.activeConnections,
      ...this.rates(),
    }
  }
}

/** What one process has served its clients (EdgeStats.snapshot), and the sum over processes. */
export interface ClientSnapshot {
  requests: Record<Outcome, number>
  bytesServed: number
  activeConnections: number
  requestsPerSec: number
  egressBytesPerSec: number
}

export function sumSnapshots(all: readonly ClientSnapshot[]): ClientSnapshot {
  const out: ClientSnapshot = {
    requests: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>,
    bytesServed: 0,
    activeConnections: 0,
    requestsPerSec: 0,
    egressBytesPerSec: 0,
  }
  for (const s of all) {
    for (const o of OUTCOMES) out.requests[o] += s.requests[o] ?? 0
    out.bytesServed += s.bytesServed
    out.activeConnections += s.activeConnections
    out.requestsPerSec += s.requestsPerSec
    out.egressBytesPerSec += s.egressBytesPerSec
  }
  return out
}

/** Shares of requests answered by memory, disk and upstream. */
export function hitSharesOf(r: Readonly<Record<Outcome, number>>): {
  hitRatio: number
  memory: number
  disk: number
  miss: number
} {
  const memory = r['hit-mem'] + r.stale + r.revalidated
  const disk = r['hit-disk']
  const miss = r.miss + r.coalesced + r.bypass
  const total = memory + disk + miss
  if (total === 0) return { hitRatio: 0, memory: 0, disk: 0, miss: 0 }
  return {
    hitRatio: (memory + disk) / total,
    memory: memory / total,
    disk: disk / total,
    miss: miss / total,
  }
}
