/**
 * The edge's `/status` document: the contract between edges and steering. Steering polls it;
 * the fleet dashboard draws it. Add fields freely; never rename or remove one.
 */
/**
 * The answer of every role's `GET /healthz` (200: the process serves). Probes read the status
 * alone (the edge's upstream probe, kubernetes, the demo); the body is the same on each role.
 */
export const HEALTHZ: Readonly<{ ok: true }> = Object.freeze({ ok: true })

export interface TierStatus {
  bytes: number
  capacityBytes: number
  objects: number
}

export interface EdgeStatus {
  id: string
  version: string
  uptimeSec: number
  activeConnections: number
  /** Requests and egress bytes per second over the last 10 s. */
  requestsPerSec: number
  egressBytesPerSec: number
  /** Optional configured capacity so steering can compute load without the fleet file. */
  capacityBytesPerSec?: number
  tiers: { memory: TierStatus; disk: TierStatus }
  hitRatio: number
  /** Hit ratio per tier: share of requests answered from memory, from disk, from upstream. */
  hits: { memory: number; disk: number; miss: number }
  bytesServed: number
  /** Titles with any object cached. */
  titles: string[]
  /** Titles held complete (every object of the current version), e.g. after a prefill. */
  titlesComplete: string[]
  /**
   * Present (true) once the edge drains before it closes (SIGTERM with --drain-delay): it still
   * serves, but steering takes it out of rotation.
   */
  draining?: true
  /**
   * Requests that went upstream by cause, requests steered here by reason, and next-segment
   * prefetch (edge/miss, edge/prefetch): counts since start.
   */
  demand?: DemandStatus
  /** Worker processes serving clients, when the edge runs as a cluster (`--workers`). */
  workers?: number
}

export interface DemandStatus {
  misses: Record<'content' | 'capacity' | 'freshness' | 'health' | 'variant' | 'prefetch-late', number>
  steered: { down: number; overloaded: number }
  prefetch: {
    started: number
    used: number
    late: number
    wasted: number
    failed: number
    skipped: number
    /** Next objects already held (or being fetched): nothing to prefetch. */
    held: number
    upstreamBytes: number
    /** Requests whose CMCD was read, or ignored as malformed. */
    cmcd: { valid: number; malformed: number }
  }
}
