/**
 * /healthz, /status (the contract steering reads, src/http/status.ts) and /metrics, which asks
 * for --metrics-token when one is set (its labels name the upstreams: internal addresses). A
 * cluster primary answers the latter two for the whole host instead (edge/cluster/host-ops.ts,
 * with `edgeStatus` and `METRICS_REALM` from here).
 */
import type { FastifyInstance } from 'fastify'
import { CdnError } from '../../src/errors.js'
import { requireMetricsToken } from '../../src/http/auth.js'
import { type DemandStatus, type EdgeStatus, HEALTHZ } from '../../src/http/status.js'
import type { CacheStore } from '../cache/store.js'
import type { EdgeMetrics } from '../metrics.js'
import { type ClientSnapshot, type EdgeStats, hitSharesOf } from '../stats.js'

/** The protection space of the edge's /metrics, named in a 401's challenge. */
export const METRICS_REALM = 'cdn-edge-metrics'

export interface OpsDeps {
  id: string
  version: string
  capacityBytesPerSec: number
  store: CacheStore
  stats: EdgeStats
  metrics: EdgeMetrics
  /** Bearer token /metrics asks for; undefined: /metrics is open. */
  metricsToken: string | undefined
  monotonic: () => number
  /** Titles held complete (prefill's). */
  titlesComplete: () => string[]
  /** Miss causes, steered requests and prefetch counts (edge/miss, edge/prefetch). */
  demand?: () => DemandStatus
  /** True once the edge drains before closing (SIGTERM with --drain-delay). */
  draining: () => boolean
}

/**
 * A cluster primary's view of its workers: what they served their clients, hold in memory and
 * counted of their demand. It replaces the primary's own client numbers and demand, since the
 * primary serves only its workers (and sees each of their misses again); their memory titles
 * join the primary's disk titles.
 */
export interface HostSnapshot {
  workers: number
  clients: ClientSnapshot
  memory: { bytes: number; capacityBytes: number; objects: number }
  demand: DemandStatus | undefined
  titles: readonly string[]
}

export function edgeStatus(d: OpsDeps, host?: HostSnapshot): EdgeStatus {
  const s = host ? { ...d.store.stats(), memory: host.memory } : d.store.stats()
  const clients = host?.clients ?? d.stats.snapshot()
  const shares = hitSharesOf(clients.requests)
  const tier = (t: { bytes: number; capacityBytes: number; objects: number } | undefined) => ({
    bytes: t?.bytes ?? 0,
    capacityBytes: t?.capacityBytes ?? 0,
    objects: t?.objects ?? 0,
  })
  return {
    id: d.id,
    version: d.version,
    uptimeSec: Math.round((d.monotonic() - d.stats.startedMono) / 1000),
    activeConnections: clients.activeConnections,
    requestsPerSec: Math.round(clients.requestsPerSec * 100) / 100,
    egressBytesPerSec: Math.round(clients.egressBytesPerSec),
    ...(d.capacityBytesPerSec > 0 ? { capacityBytesPerSec: d.capacityBytesPerSec } : {}),
    tiers: { memory: tier(s.memory), disk: tier(s.disk) },
    hitRatio: shares.hitRatio,
    hits: { memory: shares.memory, disk: shares.disk, miss: shares.miss },
    bytesServed: clients.bytesServed,
    titles: host ? [...new Set([...d.store.titles(), ...host.titles])].sort() : d.store.titles(),
    titlesComplete: d.titlesComplete(),
    ...(host ? (host.demand ? { demand: host.demand } : {}) : d.demand ? { demand: d.demand() } : {}),
    ...(host ? { workers: host.workers } : {}),
    ...(d.draining() ? { draining: true as const } : {}),
  }
}

export async function opsRoutes(app: FastifyInstance, d: OpsDeps): Promise<void> {
  app.get('/healthz', async () => HEALTHZ)
  // Readiness (kubernetes' readinessProbe, a load balancer): 503 while the edge drains, when
  // /healthz (liveness) still answers 200 and content is still served.
  app.get('/readyz', async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    if (!d.draining()) return HEALTHZ
    throw new CdnError('CDN_ERR_DRAINING', 'this edge is draining: it closes soon')
  })
  app.get('/status', async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return edgeStatus(d)
  })
  app.get('/metrics', async (req, reply) => {
    requireMetricsToken(req.headers.authorization, d.metricsToken, reply, METRICS_REALM)
    reply.header('content-type', d.metrics.contentType)
    return d.metrics.render()
  })
}
