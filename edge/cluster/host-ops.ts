/**
 * A cluster primary's /status, /metrics and GET /admin/cache speak for the whole host. The
 * workers serve the clients, so the client numbers, demand (misses by cause, prefetch, CMCD)
 * and the memory tier are theirs, summed (the primary serves only its workers); the disk tier,
 * prefill and titles held complete are the primary's own, and the titles held are the disk's
 * and the workers' memory's. /metrics merges every process's registry (metrics.ts). Answered by
 * a hook in front of the primary edge's own routes, which workers reach through their relay.
 *
 * Both ask every worker, and use a worker's last answer when it is slow (worker-views.ts); an
 * answer is shared by every request that arrives while it is being made and kept for
 * OPS_CACHE_MS after, so however many ask (/status is unauthenticated, and so is /metrics
 * without --metrics-token), the workers are asked at most once per OPS_CACHE_MS.
 */
import type { EdgeApp } from '../app-contract.js'
import { routedPath } from '../cache/key.js'
import type { TierStats } from '../cache/store.js'
import type { EdgeConfig } from '../config/spec.js'
import { type CacheParts, cacheSummary, OPERATOR_REALM, storeParts } from '../routes/admin.js'
import { edgeStatus, type HostSnapshot, METRICS_REALM, type OpsDeps } from '../routes/ops.js'
import { sumSnapshots } from '../stats.js'
import { packageVersion } from '../version.js'
import { systemClock } from '../../src/clock.js'
import { requireBearer, requireMetricsToken } from '../../src/http/auth.js'
import type { DemandStatus } from '../../src/http/status.js'
import { readEnv } from '../../src/config/env.js'
import { hostMetrics } from './metrics.js'
import type { Ask, WorkerStats } from './protocol.js'
import type { Answer } from './worker-rpc.js'
import { addCounts, type WorkerViews } from './worker-views.js'

/** How long a cluster's /status and /metrics answers are reused. */
const OPS_CACHE_MS = 1000

/**
 * The reuse window: OPS_CACHE_MS, or a test hook's (test/edge/boundary/ops-cache.test.ts), read
 * once at start: CDN_EDGE_TEST_OPS_REUSE_MS, so that a test's concurrent calls share one answer
 * however slowly a busy machine delivers them. Unset in production.
 */
function reuseMs(): number {
  const v = Number(readEnv().CDN_EDGE_TEST_OPS_REUSE_MS)
  return Number.isSafeInteger(v) && v > 0 ? v : OPS_CACHE_MS
}

export function answerForHost(
  app: EdgeApp,
  config: Readonly<EdgeConfig>,
  views: WorkerViews,
  /** Asks every worker (GET /admin/cache asks them what their memory tiers hold). */
  askAll: (question: Ask) => Promise<Array<Answer | undefined>>,
): void {
  const ops: OpsDeps = {
    id: config.id,
    version: packageVersion(),
    capacityBytesPerSec: config.capacity,
    store: app.edge.store,
    stats: app.edge.stats,
    metrics: app.edge.metrics,
    metricsToken: config.metricsToken,
    monotonic: () => systemClock.monotonic(),
    titlesComplete: () => app.edge.prefill.titlesComplete(),
    draining: () => app.edge.draining,
  }
  const monotonic = ops.monotonic
  const reuse = reuseMs()
  const host = reused(
    async (): Promise<HostSnapshot> => {
      const { workers, stats } = await views.stats()
      return {
        workers,
        clients: sumSnapshots(stats.map((s) => s.clients)),
        memory: sumTiers(stats),
        demand: stats.reduce<DemandStatus | undefined>(
          (sum, s) => (s.demand ? addCounts(sum, s.demand) : sum),
          undefined,
        ),
        titles: [...new Set(stats.flatMap((s) => s.titles ?? []))],
      }
    },
    monotonic,
    reuse,
    () => app.edge.metrics.opsRefreshed('status'),
  )
  const metrics = reused(
    async () => hostMetrics(app.edge.metrics.registry, await views.metrics()),
    monotonic,
    reuse,
    () => app.edge.metrics.opsRefreshed('metrics'),
  )
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return
    // Read as the routes read it: `/%73tatus` is /status too, not the primary's own.
    const path = routedPath(req.raw.url ?? '')
    if (path === '/status')
      return reply.header('cache-control', 'no-store').send(edgeStatus(ops, await host()))
    if (path === '/metrics') {
      // As the route's own check (edge/routes/ops.ts), before any worker is asked.
      requireMetricsToken(req.headers.authorization, config.metricsToken, reply, METRICS_REALM)
      return reply.header('content-type', app.edge.metrics.contentType).send(await metrics())
    }
    if (path === '/admin/cache') {
      // As the admin route's own check (edge/routes/admin.ts), before any worker is asked.
      requireBearer(req.headers.authorization, config.adminToken, reply, OPERATOR_REALM)
      const answers = await askAll({ what: 'cache' })
      return reply.send(cacheSummary(hostCache(storeParts(app.edge.store), answers)))
    }
  })
}

/** The primary's store with every worker's memory tier: its stats summed, its keys added to the titles. */
function hostCache(own: CacheParts, answers: ReadonlyArray<Answer | undefined>): CacheParts {
  const caches = answers.flatMap((a) => (a?.cache ? [a.cache] : []))
  const titles = new Map<string, Map<string, Set<string>>>()
  const add = (title: string, version: string, keys: Iterable<string>) => {
    let versions = titles.get(title)
    if (!versions) titles.set(title, (versions = new Map()))
    let set = versions.get(version)
    if (!set) versions.set(version, (set = new Set()))
    for (const k of keys) set.add(k)
  }
  for (const [title, versions] of own.titles) for (const [v, keys] of versions) add(title, v, keys)
  for (const c of caches)
    for (const [title, versions] of Object.entries(c.titles))
      for (const [v, keys] of Object.entries(versions)) add(title, v, keys)
  return { stats: { ...own.stats, memory: sumTiers(caches) }, titles }
}

function sumTiers(answers: ReadonlyArray<Pick<WorkerStats, 'memory'>>): TierStats {
  const out: TierStats = { bytes: 0, capacityBytes: 0, objects: 0, evictions: 0 }
  for (const a of answers) {
    out.bytes += a.memory?.bytes ?? 0
    out.capacityBytes += a.memory?.capacityBytes ?? 0
    out.objects += a.memory?.objects ?? 0
    out.evictions += a.memory?.evictions ?? 0
  }
  return out
}

/**
 * `fn`, its result shared while it runs and reused for `reuseMs` after it settled (a failure is
 * not kept). `refreshed` is called each time `fn` really runs.
 */
function reused<T>(
  fn: () => Promise<T>,
  monotonic: () => number,
  reuseMs: number,
  refreshed: () => void,
): () => Promise<T> {
  let last: { value: Promise<T>; settledAt: number } | undefined
  return () => {
    if (last && monotonic() - last.settledAt < reuseMs) return last.value
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
