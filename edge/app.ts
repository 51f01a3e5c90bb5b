/**
 * The edge's factory: wiring only. `buildEdgeApp(deps)` connects the collaborators it is given
 * (config, store, upstream, clock) to the request path in edge/http/ (raw hits → fast hit →
 * fastify route → tiers → single-flight → upstream; see edge/http/server.ts), whose fastify
 * routes are in edge/routes/content.ts, to the operator routes (edge/routes/) and to prefill
 * (edge/prefill/wiring.ts). `app.edge.fill()` is prefill's in-process entry point.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { Clock } from '../src/clock.js'
import { hstsMaxAge } from '../src/config/tls-options.js'
import type { DemandStatus } from '../src/http/status.js'
import { jsonErrorHandler, jsonFrameworkErrors, jsonNotFoundHandler } from '../src/http/errors.js'
import { answerClientError } from '../src/http/one-answer.js'
import { CORS_ALLOW_ORIGIN } from '../src/http/paths.js'
import { parseSigningKeys, type SigningKey } from '../src/http/signing.js'
import { loggerOptions } from '../src/log.js'
import type { TlsCertificates } from '../src/http/tls-certificates.js'
import { closeServer } from '../src/http/tls-server.js'
import { CacheStatus } from './cache/cache-status.js'
import { type KeyOptions, ownPath } from './cache/key.js'
import type { ProtectedShare } from './cache/protected-share.js'
import type { CacheStore } from './cache/store.js'
import type { EdgeConfig } from './config/spec.js'
import { InflightBudget } from './inflight-budget.js'
import { createEdgeMetrics, type EdgeMetrics } from './metrics.js'
import { MissLedger } from './miss/ledger.js'
import { registerDemandMetrics } from './miss/metrics.js'
import { Prefetcher } from './prefetch/prefetcher.js'
import type { EdgePrefill } from './prefill/edge-prefill.js'
import { buildEdgePrefill } from './prefill/wiring.js'
import { adminRoutes } from './routes/admin.js'
import { contentRoutes } from './routes/content.js'
import { type OpsDeps, opsRoutes } from './routes/ops.js'
import { joinRegistry } from './registry.js'
import { createEdgeServer, type RawCounts } from './http/server.js'
import { ContentHandler } from './http/serve.js'
import { EdgeStats } from './stats.js'
import type { Upstream } from './upstream/client.js'
import { ForwardPolicy } from './upstream/forward.js'
import type { FillResult } from './upstream/fill.js'
import { SingleFlight } from './upstream/single-flight.js'
import { sendfileProblem } from './native/sendfile.js'

export interface EdgeDeps {
  config: Readonly<EdgeConfig>
  store: CacheStore
  upstream: Upstream
  clock: Clock
  /** fastify logger option; defaults to the config's log level. */
  logger?: boolean | Record<string, unknown>
  /** Disk error counts by errno code, for /metrics. */
  diskErrorsByCode?: () => ReadonlyMap<string, number>
  /** The disk tier's protected share (prefill); without one nothing is protected. */
  protection?: ProtectedShare
  /**
   * Counts a request for a title, for prefill's popularity (default: this edge's own counter).
   * A cluster worker batches its counts to the primary; the primary counts none itself.
   */
  countTitle?: (title: string) => void
  /** Certificates: the edge serves HTTPS (HTTP/2 and HTTP/1.1) on its port. */
  tls?: TlsCertificates
  /**
   * A cluster primary (edge/cluster/primary.ts), reached only by its own workers over a private
   * socket: their requests already carry Via and X-Forwarded-For for the client, and pass as they are.
   */
  clusterPrimary?: boolean
}

/** What other parts of the edge (prefill) use in-process. */
export interface EdgeHandle {
  readonly store: CacheStore
  readonly flights: SingleFlight
  readonly stats: EdgeStats
  readonly metrics: EdgeMetrics
  /** Bytes held for transfers in flight (misses, disk reads, relays), bounded by --inflight-budget. */
  readonly budget: InflightBudget
  /**
   * Makes sure the object at `path` (a request path, query allowed) is cached, through the
   * same single-flight as viewers. `protect` puts it in the protected share of the disk tier.
   */
  fill(path: string, opts?: { protect?: boolean }): Promise<FillResult>
  /** Prefill registers the titles it holds complete; /status reports them. */
  setTitlesComplete(fn: () => string[]): void
  /** Prefill: jobs, popularity, titles held complete. */
  readonly prefill: EdgePrefill
  /** The raw hit path's counts (undefined when access logs are on). */
  readonly raw: RawCounts | undefined
  /** With --tls-cert and --http-port: the plain-HTTP server beside the HTTPS one, not yet listening. */
  readonly plain: Server | undefined
  /** With --tls-cert: the certificates (reload, ticket keys). */
  readonly tls: TlsCertificates | undefined
  /** What goes upstream of a client's request (a cluster worker relays its methods with it). */
  readonly forward: ForwardPolicy
  /** Miss causes, steered requests, prefetch and CMCD counts (/status `demand`; a cluster adds its workers'). */
  demand(): DemandStatus
  /** Next-segment prefetch (a cluster worker settles its prefetches by the other workers' requests). */
  readonly prefetch: Prefetcher
}

export type EdgeApp = FastifyInstance & { edge: EdgeHandle }

export function packageVersion(): string {
  let dir = new URL('.', import.meta.url)
  for (let i = 0; i < 4; i++) {
    try {
      return (JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version: string }).version
    } catch {
      dir = new URL('..', dir)
    }
  }
  return '0.0.0'
}

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
  const { app, rawHits, plain } = edgeFastify(deps, stats, () => content!)
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
  } satisfies EdgeHandle)

  errorAnswers(app)
  await operatorRoutes(app, deps, {
    stats,
    metrics,
    flights,
    prefill,
    titlesComplete: () => titlesComplete(),
    demand,
  })
  contentRoutes(app, { content, store, config, keyOptions, clock, budget, forward, cacheStatus })
  joinRegistry(app, config)

  app.addHook('onClose', async () => {
    metrics.close()
    // A running prefill stops where it is (it resumes at the next start) before its paths close.
    await prefill.close()
    await upstream.close()
    await store.close()
  })
  return app
}

/** The one place misses coalesce (edge/upstream/single-flight.ts), with the config's bounds. */
function singleFlight(
  deps: EdgeDeps,
  metrics: EdgeMetrics,
  budget: InflightBudget,
  log: FastifyBaseLogger,
  forward: ForwardPolicy,
  misses: MissLedger,
  large: (key: string) => number,
): SingleFlight {
  const { config } = deps
  return new SingleFlight({
    upstream: deps.upstream,
    store: deps.store,
    clock: deps.clock,
    observer: metrics,
    maxObjectSize: config.maxObjectSize,
    maxInflight: config.maxInflight,
    waiterTimeout: config.waiterTimeout,
    heuristicMax: config.heuristicMax,
    compress: config.compress,
    notFoundTtl: config.notFoundTtl,
    hitForMiss: config.hitForMiss,
    errorTtl: config.errorTtl,
    budget,
    log: { warn: (obj, msg) => log.warn(obj, msg) },
    ownRequest: forward.own(),
    stored: (key) => misses.stored(key),
    large,
  })
}

/** What goes upstream of a client's request: Via, X-Forwarded-For, the deny and add lists. */
function forwardPolicy(config: Readonly<EdgeConfig>, clusterPrimary: boolean): ForwardPolicy {
  return new ForwardPolicy({
    pseudonym: config.viaPseudonym ?? config.id,
    trustedProxies: config.trustedProxy ?? [],
    deny: config.forwardDeny ?? [],
    add: config.forwardAdd ?? [],
    relayed: clusterPrimary,
  })
}

/** The operator's paths: /status, /metrics, /healthz, admin (purge) and prefill's API. */
async function operatorRoutes(
  app: FastifyInstance,
  deps: EdgeDeps,
  parts: Pick<EdgeHandle, 'stats' | 'metrics' | 'flights' | 'prefill'> & {
    titlesComplete: () => string[]
    demand: OpsDeps['demand']
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
      monotonic: () => clock.monotonic(),
      titlesComplete: parts.titlesComplete,
      demand: parts.demand,
    }),
  )
  await app.register(async (scope) =>
    adminRoutes(scope, {
      adminToken: config.adminToken,
      store,
      settle: (title) => parts.flights.settled(title),
    }),
  )
  await app.register(parts.prefill.routes)
}

/**
 * The fastify app on the edge's own node server (edge/http/server.ts): plain fresh memory hits
 * are answered from the socket's bytes (http/raw-hits.ts) unless the config turns that off.
 */
function edgeFastify(
  deps: EdgeDeps,
  stats: EdgeStats,
  content: () => ContentHandler,
): { app: EdgeApp; rawHits: RawCounts | undefined; plain: Server | undefined } {
  const { config, clock } = deps
  let rawHits: RawCounts | undefined
  let plain: Server | undefined
  let rawHitsOff: string | undefined
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config.logLevel, `edge:${config.id}`),
    logController: new LogController({ disableRequestLogging: !config.accessLog }),
    return503OnClosing: true,
    // A request node cannot parse is answered after the answers before it (src/http/one-answer.ts).
    clientErrorHandler: answerClientError,
    // A path fastify refuses before any route (it does not percent-decode): the JSON error body,
    // readable by a player on another origin as the content handler's errors are.
    frameworkErrors: (err, req, reply) => {
      reply.header('access-control-allow-origin', CORS_ALLOW_ORIGIN)
      jsonFrameworkErrors(err, req, reply)
    },
    serverFactory: (handler) => {
      const built = createEdgeServer(
        {
          content,
          stats,
          monotonic: () => clock.monotonic(),
          rawHits: config.rawHits,
          rawHitsOff: (problem) => {
            rawHitsOff = problem
          },
          timeouts: {
            headers: config.clientHeadersTimeout,
            request: config.clientRequestTimeout,
            keepAlive: config.keepAliveTimeout,
          },
          connections: { maxConnections: config.maxConnections, writeTimeout: config.clientWriteTimeout },
          passThrough: config.passThrough,
          ...(deps.tls
            ? {
                tls: deps.tls,
                ...(config.httpPort !== undefined
                  ? { plain: config.httpRedirect ? 'redirect' : 'serve' }
                  : {}),
                redirect: { publicUrl: config.publicUrl, port: config.port },
                hstsMaxAge: hstsMaxAge(config),
              }
            : {}),
        },
        handler,
      )
      rawHits = built.rawHits
      plain = built.plain
      return built.server
    },
  }) as unknown as EdgeApp
  if (rawHitsOff !== undefined)
    app.log.warn(
      { code: 'CDN_WARN_RAW_HITS_OFF', problem: rawHitsOff },
      'raw hit path off: node http is not as it expects; every request goes through node http',
    )
  if (deps.config.diskSendfile && sendfileProblem !== undefined)
    app.log.warn(
      { code: 'CDN_WARN_SENDFILE_OFF', problem: sendfileProblem },
      'sendfile off: large disk hits are read into a buffer and written',
    )
  if (plain) {
    const p = plain
    app.addHook('onClose', () => closeServer(p))
  }
  return { app, rawHits, plain }
}

/** Errors of fastify routes: the one JSON body (src/http/errors.ts), never stored by a cache. */
function errorAnswers(app: FastifyInstance): void {
  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(jsonNotFoundHandler)
}

/** What the edge serves and how it keys it (edge/cache/key.ts), from the config. */
function edgeKeyOptions(config: Readonly<EdgeConfig>): KeyOptions {
  const keys = parseSigningKeys(config.signingKey) as SigningKey[]
  return {
    keepQueryParams: config.keepQueryParams,
    publicPaths: config.publicPath,
    signingKeys: keys.length ? keys : undefined,
  }
}
