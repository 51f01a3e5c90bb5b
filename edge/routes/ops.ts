/** /healthz, /status (the contract steering reads, src/http/status.ts) and /metrics. */
import type { FastifyInstance } from 'fastify'
import type { EdgeStatus } from '../../src/http/status.js'
import type { CacheStore } from '../cache/store.js'
import type { EdgeMetrics } from '../metrics.js'
import type { EdgeStats } from '../stats.js'

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
}

export function edgeStatus(d: OpsDeps): EdgeStatus {
  const s = d.store.stats()
  const rates = d.stats.rates()
  const shares = d.stats.hitShares()
  const tier = (t: { bytes: number; capacityBytes: number; objects: number } | undefined) => ({
    bytes: t?.bytes ?? 0,
    capacityBytes: t?.capacityBytes ?? 0,
    objects: t?.objects ?? 0,
  })
  return {
    id: d.id,
    version: d.version,
    uptimeSec: Math.round((d.monotonic() - d.stats.startedMono) / 1000),
    activeConnections: d.stats.activeConnections,
    requestsPerSec: Math.round(rates.requestsPerSec * 100) / 100,
    egressBytesPerSec: Math.round(rates.egressBytesPerSec),
    ...(d.capacityBytesPerSec > 0 ? { capacityBytesPerSec: d.capacityBytesPerSec } : {}),
    tiers: { memory: tier(s.memory), disk: tier(s.disk) },
    hitRatio: shares.hitRatio,
    hits: { memory: shares.memory, disk: shares.disk, miss: shares.miss },
    bytesServed: d.stats.bytesServed,
    titles: d.store.titles(),
    titlesComplete: d.titlesComplete(),
  }
}

export async function opsRoutes(app: FastifyInstance, d: OpsDeps): Promise<void> {
  app.get('/healthz', async () => ({ ok: true }))
  app.get('/status', async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    return edgeStatus(d)
  })
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', d.metrics.contentType)
    return d.metrics.render()
  })
}
