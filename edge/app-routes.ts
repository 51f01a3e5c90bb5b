/**
 * The operator's routes on the edge app, each in its own fastify scope: /status, /metrics and
 * /healthz (edge/routes/ops.ts), admin purge (edge/routes/admin.ts) and prefill's API
 * (edge/prefill/routes.ts). The content routes are edge/routes/content.ts.
 */
import type { FastifyInstance } from 'fastify'
import type { EdgeDeps, EdgeHandle } from './app-contract.js'
import { adminRoutes } from './routes/admin.js'
import { type OpsDeps, opsRoutes } from './routes/ops.js'
import { packageVersion } from './version.js'

/** The operator's paths: /status, /metrics, /healthz, admin (purge) and prefill's API. */
export async function operatorRoutes(
  app: FastifyInstance,
  deps: EdgeDeps,
  parts: Pick<EdgeHandle, 'stats' | 'metrics' | 'flights' | 'prefill'> & {
    titlesComplete: () => string[]
    demand: OpsDeps['demand']
    draining: OpsDeps['draining']
  },
): Promise<void> {
  const { config, store, clock } = deps
  await app.register(async (scope) =>
    opsRoutes(scope, {
      id: config.id,
      version: packageVersion(),
      capacityBytesPerSec: config.capacity,
      store,
      stats: parts.stats,
      metrics: parts.metrics,
      metricsToken: config.metricsToken,
      monotonic: () => clock.monotonic(),
      titlesComplete: parts.titlesComplete,
      demand: parts.demand,
      draining: parts.draining,
    }),
  )
  await app.register(async (scope) =>
    adminRoutes(scope, {
      adminToken: config.adminToken,
      store,
      stopFetches: (title) => parts.flights.purge(title),
    }),
  )
  await app.register(parts.prefill.routes)
}
