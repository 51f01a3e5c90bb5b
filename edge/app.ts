/**
 * The edge's factory: wiring only. `buildEdgeApp(deps)` connects the collaborators it is given
 * (config, store, upstream, clock) to the request path in edge/http/ (raw hits → fast hit →
 * fastify route → tiers → single-flight → upstream; see edge/http/server.ts), whose fastify
 * routes are in edge/routes/content.ts, to the operator routes (edge/routes/) and to prefill
 * (edge/prefill/wiring.ts). `app.edge.fill()` is prefill's in-process entry point.
 *
 * Beside it: app-contract.ts (what it is given, what it returns), app-fastify.ts (the fastify
 * instance and its error answers), app-server.ts (the node server under it), app-routes.ts (the
 * operator routes) and app-collaborators.ts (single-flight, forward policy, key options).
 */
import type { DemandStatus } from '../src/http/status.js'
import type { EdgeApp, EdgeDeps, EdgeHandle } from './app-contract.js'
import { edgeKeyOptions, forwardPolicy, singleFlight } from './app-collaborators.js'
import { edgeFastify, errorAnswers } from './app-fastify.js'
import { operatorRoutes } from './app-routes.js'
import { CacheStatus } from './cache/cache-status.js'
import { ownPath } from './cache/key.js'
import { InflightBudget } from './inflight-budget.js'
import { createEdgeMetrics } from './metrics.js'
import { MissLedger } from './miss/ledger.js'
import { registerDemandMetrics } from './miss/metrics.js'
import { Prefetcher } from './prefetch/prefetcher.js'
import { buildEdgePrefill } from './prefill/wiring.js'
import { contentRoutes } from './routes/content.js'
import { joinRegistry } from './registry.js'
import { ContentHandler } from './http/serve.js'
import { EdgeStats } from './stats.js'

/**
 * Builds an edge: the request path (edge/http/), the operator routes and prefill, on the
 * collaborators it is given. Each step below is one piece of wiring.
 */
export async function buildEdgeApp(deps: EdgeDeps): Promise<EdgeApp> {
  const { config, store, upstream, clock } = deps
  const stats = new EdgeStats(clock)
  // The server is built with fastify, before the content handler it calls: it reads it lazily.
  // eslint-disable-next-line prefer-const
  let content: ContentHandler | undefined
  const { app, rawHits, plain, drainConnections } = edgeFastify(deps, stats, () => content!)
  const budget = new InflightBudget(config.inflightBudget)
  // Idle pooled body buffers count against the budget too: reserved + idle <= the budget.
  store.boundIdleBodies?.(() => budget.limit - budget.bytes)
  const metrics = createEdgeMetrics(
    stats,
    () => store.stats(),
    deps.diskErrorsByCode ?? (() => new Map()),
    budget,
  )
  for (const h of upstream.health?.() ?? []) metrics.upstreamHealth(h.url, h.up)
  upstream.watchHealth?.((url, up, why) => {
    metrics.upstreamHealth(url, up)
    if (up) app.log.info({ upstream: url, why }, 'upstream is back')
    else app.log.warn({ upstream: url, why }, 'upstream marked down: skipped until a probe succeeds')
  })
  const forward = forwardPolicy(config, deps.clusterPrimary ?? false)
  // A cluster primary adds no Cache-Status member: its workers add theirs, one per edge.
  const cacheStatus = deps.clusterPrimary ? undefined : new CacheStatus(config.viaPseudonym ?? config.id)
  const misses = new MissLedger(config.missMemory)
  // A URL found larger than the keep limit is sliced from then on (edge/http/slicer.ts).
  const flights = singleFlight(
    deps,
    metrics,
    budget,
    app.log,
    forward,
    misses,
    (key) => content?.slicer?.foundLarge(key) ?? 0,
  )
  const keyOptions = edgeKeyOptions(config)
  const prefetch = new Prefetcher({
    flights,
    store,
    keyOptions,
    clock,
    options: { concurrency: config.prefetchConcurrency, maxBytes: config.prefetchMaxBytes },
  })
  registerDemandMetrics(metrics.registry, misses, prefetch)
  const { prefill, port } = buildEdgePrefill({
    config,
    store,
    flights,
    upstream,
    clock,
    keyOptions,
    registry: metrics.registry,
    protection: deps.protection,
    log: app.log,
  })
  content = new ContentHandler({
    store,
    flights,
    clock,
    stats,
    keyOptions,
    ownPath,
    accessLog: config.accessLog ? app.log : undefined,
    log: app.log,
    budget,
    budgetWait: config.waiterTimeout,
    forward,
    cacheStatus,
    clientFreshness: config.clientFreshness,
    countTitle: deps.countTitle ?? ((title) => prefill.countRequest(title)),
    misses,
    prefetch,
    slicing: {
      options: {
        sliceSize: config.sliceSize,
        largeSliceSize: config.largeSliceSize,
        maxObjectSize: config.maxObjectSize,
        maxInflight: config.maxInflight,
      },
      observer: metrics,
      heuristicMax: config.heuristicMax,
    },
  })

  let titlesComplete: () => string[] = () => prefill.titlesComplete()
  let draining: Promise<void> | undefined
  const registry = joinRegistry(app, config)
  const demand = (): DemandStatus => ({
    misses: { ...misses.misses },
    steered: { ...misses.steered },
    prefetch: prefetch.status(),
  })
  app.decorate('edge', {
    store,
    flights,
    stats,
    metrics,
    budget,
    fill: (path, opts = {}) => port.fill(path, { protect: opts.protect ?? false }),
    setTitlesComplete: (fn) => {
      titlesComplete = fn
    },
    prefill,
    raw: rawHits,
    plain,
    tls: deps.tls,
    forward,
    demand,
    prefetch,
    drain() {
      if (!draining) {
        app.log.info(
          { event: 'draining' },
          'draining: leaving the registry, /readyz answers 503, keep-alive clients told to go',
        )
        const told = deps.drainClients ? deps.drainClients() : drainConnections()
        draining = Promise.all([told, registry.leave()]).then(() => undefined)
      }
      return draining
    },
    drainConnections,
    get draining() {
      return draining !== undefined
    },
  } satisfies EdgeHandle)

  errorAnswers(app)
  await operatorRoutes(app, deps, {
    stats,
    metrics,
    flights,
    prefill,
    titlesComplete: () => titlesComplete(),
    demand,
    draining: () => draining !== undefined,
  })
  contentRoutes(app, { content, store, flights, config, keyOptions, clock, budget, forward, cacheStatus })

  app.addHook('onClose', async () => {
    metrics.close()
    // A running prefill stops where it is (it resumes at the next start) before its paths close.
    await prefill.close()
    await upstream.close()
    await store.close()
  })
  return app
}
