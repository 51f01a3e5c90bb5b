/**
 * /healthz, /status (the contract steering reads, src/http/status.ts) and /metrics. In a
 * cluster primary both of the latter ask every worker; the answer is shared by every request
 * that arrives while it is being made and kept for OPS_CACHE_MS after, so however many ask
 * (they are unauthenticated), the workers are asked at most once per OPS_CACHE_MS.
 */
import type { FastifyInstance } from 'fastify'
import type { EdgeStatus } from '../../src/http/status.js'
import type { CacheStore } from '../cache/store.js'
import type { EdgeMetrics } from '../metrics.js'
import { type ClientSnapshot, type EdgeStats, hitSharesOf } from '../stats.js'

export interface OpsDeps {
  id: string
  version: string
  capacityBytesPerSec: number
  store: CacheStore
  stats: EdgeStats
  metrics: EdgeMetrics
  monotonic: () => number
  /** Titles held complete; prefill fills this in (issue 4). */
  titlesComplete: () => string[]
  /**
   * Cluster primary (edge/cluster): what the workers served their clients and hold in memory.
   * It replaces this process's own client numbers, since the primary serves only its workers.
   */
  host?: () => Promise<HostSnapshot>
  /** Cluster primary: the host's metrics (workers' and this process's, merged). */
  renderMetrics?: () => Promise<string>
}

export interface HostSnapshot {
  workers: number
  clients: ClientSnapshot
  memory: { bytes: number; capacityBytes: number; objects: number }
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
    titles: d.store.titles(),
    titlesComplete: d.titlesComplete(),
    ...(host ? { workers: host.workers } : {}),
  }
}

/** How long a cluster's /status and /metrics answers are reused. */
export const OPS_CACHE_MS = 1000

export async function opsRoutes(app: FastifyInstance, d: OpsDeps): Promise<void> {
  const host = d.host && reused(d.host, d.monotonic, () => d.metrics.opsRefreshed('status'))
  const hostMetrics =
    d.renderMetrics && reused(d.renderMetrics, d.monotonic, () => d.metrics.opsRefreshed('metrics'))
  app.get('/healthz', async () => ({ ok: true }))
  app.get('/status', async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return edgeStatus(d, await host?.())
  })
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', d.metrics.contentType)
    return (hostMetrics ?? d.metrics.render)()
  })
}

/**
 * `fn`, its result shared while it runs and reused for OPS_CACHE_MS after it settled (a
 * failure is not kept). `refreshed` is called each time `fn` really runs.
 */
function reused<T>(fn: () => Promise<T>, monotonic: () => number, refreshed: () => void): () => Promise<T> {
  let last: { value: Promise<T>; settledAt: number } | undefined
  return () => {
    if (last && monotonic() - last.settledAt < OPS_CACHE_MS) return last.value
    refreshed()
    const entry = { value: fn(), settledAt: Number.POSITIVE_INFINITY }
    last = entry
    entry.value.then(
      () => {
        entry.settledAt = monotonic()
      },
      () => {
        if (last === entry) last = undefined
      },
    )
    return entry.value
  }
}
