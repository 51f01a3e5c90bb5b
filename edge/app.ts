/**
 * The edge's factory: wiring only. `buildEdgeApp(deps)` connects the collaborators it is given
 * (config, store, upstream, clock) to the request path in edge/http/ (raw hits → fast hit →
 * fastify route → tiers → single-flight → upstream; see edge/http/server.ts), the operator
 * routes and prefill. `app.edge.fill()` is prefill's in-process entry point.
 */
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import type { Clock } from '../src/clock.js'
import { CdnError, errorBody } from '../src/errors.js'
import { CORS_ALLOW_ORIGIN } from '../src/http/paths.js'
import { loggerOptions } from '../src/log.js'
import { freshState } from './cache/freshness.js'
import { NO_PROTECTED_SHARE, type ProtectedShare } from './cache/protected-share.js'
import { cacheTarget } from './cache/key.js'
import type { CacheStore } from './cache/store.js'
import type { EdgeConfig } from './config.js'
import { InflightBudget } from './inflight-budget.js'
import { createEdgeMetrics, type EdgeMetrics } from './metrics.js'
import { EdgePrefill } from './prefill/edge-prefill.js'
import type { EdgeFillPort } from './prefill/edge-target.js'
import { createPrefillMetrics } from './prefill/metrics.js'
import { adminRoutes } from './routes/admin.js'
import { type OpsDeps, opsRoutes } from './routes/ops.js'
import type { RawHits } from './http/raw-hits.js'
import { createEdgeServer, ownPath, type WorkerPort } from './http/server.js'
import { ContentHandler } from './http/serve.js'
import { EdgeStats } from './stats.js'
import type { Upstream } from './upstream/client.js'
import { PassThrough } from './upstream/pass-through.js'
import { type FillResult, SingleFlight } from './upstream/single-flight.js'

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
   * Set in a cluster worker (edge/cluster): the worker answers GET/HEAD/OPTIONS for content;
   * the primary owns everything else (admin, prefill, /status, /metrics, relayed methods).
   */
  worker?: WorkerPort
  /** Set in a cluster primary: /status and /metrics speak for the whole host. */
  host?: HostPort
  /**
   * Counts a request for a title, for prefill's popularity (default: this edge's own counter).
   * A cluster worker batches its counts to the primary; the primary counts none itself.
   */
  countTitle?: (title: string) => void
}

/** What a cluster primary's app needs to report for the whole host (see OpsDeps). */
export type HostPort = Pick<OpsDeps, 'host' | 'renderMetrics'>

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
  readonly raw: Pick<RawHits, 'answered' | 'handedOver'> | undefined
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

export async function buildEdgeApp(deps: EdgeDeps): Promise<EdgeApp> {
  const { config, store, upstream, clock } = deps
  const stats = new EdgeStats(clock)
  const budget = new InflightBudget(config.inflightBudget)
  const metrics = createEdgeMetrics(
    stats,
    () => store.stats(),
    deps.diskErrorsByCode ?? (() => new Map()),
    budget,
  )
  const flights = new SingleFlight({
    upstream,
    store,
    clock,
    observer: metrics,
    maxObjectSize: config.maxObjectSize,
    maxInflight: config.maxInflight,
    waiterTimeout: config.waiterTimeout,
    heuristicMax: config.heuristicMax,
    budget,
    log: { warn: (obj, msg) => app.log.warn(obj, msg) },
  })
  const keyOptions = { ignoreQueryParams: config.ignoreQueryParams, signingKey: config.signingKey }
  // Assigned once below; the server factory's closure needs the binding before that.
  // eslint-disable-next-line prefer-const
  let content: ContentHandler | undefined
  // eslint-disable-next-line prefer-const
  let prefill: EdgePrefill | undefined
  let rawHits: RawHits | undefined
  let rawHitsOff: string | undefined

  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config.logLevel, `edge:${config.id}`),
    logController: new LogController({ disableRequestLogging: !config.accessLog }),
    return503OnClosing: true,
    serverFactory: (handler) => {
      // Plain fresh memory hits are answered from the socket's bytes (http/raw-hits.ts).
      const built = createEdgeServer(
        {
          content: () => content!,
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
          passThrough: config.passThrough,
          worker: deps.worker,
        },
        handler,
      )
      rawHits = built.rawHits
      return built.server
    },
  }) as unknown as EdgeApp
  if (rawHitsOff !== undefined)
    app.log.warn(
      { code: 'CDN_WARN_RAW_HITS_OFF', problem: rawHitsOff },
      'raw hit path off: node http is not as it expects; every request goes through node http',
    )

  content = new ContentHandler({
    store,
    flights,
    clock,
    stats,
    keyOptions,
    ownPath,
    accessLog: config.accessLog ? app.log : undefined,
    budget,
    budgetWait: config.waiterTimeout,
    countTitle: deps.countTitle ?? ((title) => prefill!.countRequest(title)),
  })

  // Prefill's own paths are never signed: it names objects, it does not play them.
  const fillTarget = (path: string) =>
    cacheTarget(path, { ...keyOptions, signingKey: undefined }, Math.floor(clock.now() / 1000))
  const port: EdgeFillPort = {
    keyOf: (path) => fillTarget(path).key,
    fill: (path, opts) => flights.fill(fillTarget(path), opts),
    holds: (key) => {
      const e = store.lookup?.(key)
      return e ? freshState(e.fresh, clock.now()) === 'fresh' : store.has(key)
    },
    heldBytes: (key) => store.lookup?.(key)?.meta.bodyLength,
    readHeld: async (key) => (await store.get(key))?.entry.body,
    head: async (path) => {
      const res = await upstream.fetch(fillTarget(path).key, {}, 'HEAD')
      res.body.resume()
      const length = Number(res.headers['content-length'])
      return { status: res.status, length: Number.isFinite(length) ? length : undefined }
    },
    protection: deps.protection ?? NO_PROTECTED_SHARE,
  }
  prefill = new EdgePrefill({
    port,
    cacheDir: config.cacheDir,
    clock,
    adminToken: config.adminToken,
    concurrency: config.prefillConcurrency,
    maxConcurrency: config.prefillMaxConcurrency,
    trickleBytesPerSecond: config.prefillTrickleRate,
    ...(config.prefillTimeZone ? { timeZone: config.prefillTimeZone } : {}),
    popularityHalfLifeMs: config.popularityHalfLife,
    popularityMaxTitles: config.popularityMaxTitles,
    metrics: createPrefillMetrics(metrics.registry),
    retry: {
      attempts: config.prefillRetryAttempts,
      initialDelayMs: config.prefillRetryDelay,
      maxDelayMs: config.prefillRetryMaxDelay,
    },
    log: app.log,
  })
  const edgePrefill = prefill

  let titlesComplete: () => string[] = () => edgePrefill.titlesComplete()
  const handle: EdgeHandle = {
    store,
    flights,
    stats,
    metrics,
    budget,
    fill: (path, opts = {}) => flights.fill(fillTarget(path), opts),
    setTitlesComplete: (fn) => {
      titlesComplete = fn
    },
    prefill: edgePrefill,
    raw: rawHits,
  }
  app.decorate('edge', handle)

  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = errorBody(err)
    if (status >= 500) app.log.error({ err }, 'request failed')
    reply.code(status).header('cache-control', 'no-store').send(body)
  })
  app.setNotFoundHandler((_req, reply) => {
    reply.send(new CdnError('CDN_ERR_NOT_FOUND', 'not found'))
  })

  // A worker's ops, admin and prefill paths are relayed to the primary before fastify.
  if (!deps.worker) {
    await app.register(async (scope) =>
      opsRoutes(scope, {
        id: config.id,
        version: packageVersion(),
        capacityBytesPerSec: config.capacity,
        store,
        stats,
        metrics,
        monotonic: () => clock.monotonic(),
        titlesComplete: () => titlesComplete(),
        ...deps.host,
      }),
    )
    await app.register(async (scope) =>
      adminRoutes(scope, { adminToken: config.adminToken, store, settle: (t) => flights.settled(t) }),
    )
    await app.register(edgePrefill.routes)
  }

  app.route({
    method: ['GET', 'HEAD'],
    url: '*',
    exposeHeadRoute: false,
    handler: (req, reply) => {
      reply.hijack()
      if (req.url.startsWith('/admin'))
        return content!.sendError(
          req.raw,
          reply.raw,
          new CdnError('CDN_ERR_NOT_FOUND', 'not found'),
          clock.monotonic(),
        )
      return content!.serve(req.raw, reply.raw)
    },
  })
  // CORS preflight (a player sending Range from another origin): allowed for reads only.
  app.options('*', async (_req, reply) => {
    reply
      .code(204)
      .header('access-control-allow-origin', CORS_ALLOW_ORIGIN)
      .header('access-control-allow-methods', 'GET, HEAD')
      .header('access-control-allow-headers', 'Range, If-None-Match, If-Modified-Since, If-Range')
      .header('access-control-max-age', '86400')
      .header('allow', 'GET, HEAD, OPTIONS')
      .send()
  })
  // Other methods: relayed uncached when the operator listed them, else 405.
  const passThrough = config.passThrough.length
    ? new PassThrough({
        upstream: config.upstream[0]!,
        connectTimeout: config.connectTimeout,
        headersTimeout: config.headersTimeout,
        bodyTimeout: config.bodyTimeout,
        maxBodySize: 1024 * 1024,
        budget,
        budgetWait: config.waiterTimeout,
      })
    : undefined
  // Bodies of relayed methods are streamed, never parsed.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
  app.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url: '*',
    handler: async (req, reply) => {
      if (passThrough && config.passThrough.includes(req.method) && !req.url.startsWith('/admin')) {
        // Validated like any target (traversal, signing); the query goes upstream untouched.
        const q = req.url.indexOf('?')
        const checked = cacheTarget(req.url, keyOptions, Math.floor(clock.now() / 1000)).path
        const path = q === -1 ? checked : checked + req.url.slice(q)
        reply.hijack()
        try {
          await passThrough.relay(req.raw, reply.raw, path)
        } catch (err) {
          content!.sendError(req.raw, reply.raw, err, clock.monotonic())
        }
        return
      }
      reply.header('allow', 'GET, HEAD')
      throw new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served')
    },
  })

  app.addHook('onClose', async () => {
    // A running prefill stops where it is (it resumes at the next start) before its paths close.
    await edgePrefill.close()
    await passThrough?.close()
    await upstream.close()
    await store.close()
  })
  if (!deps.worker) await edgePrefill.start()
  return app
}
