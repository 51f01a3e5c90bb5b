/**
 * The steering app factory. Takes its collaborators (config, fleet registry, zones, clock,
 * logger), starts the health loop when the app is ready (the first round completes before
 * `ready()` resolves, so a fresh steering never answers from an empty view) and stops it on
 * close. Tests call this; only main.ts listens and touches `process`.
 */
import type { TLSSocket } from 'node:tls'
import type { RoleTls } from '../src/http/role-tls.js'
import { readCaFiles } from '../src/http/tls-certificates.js'
import { requestProtocol } from '../src/http/tls-server.js'
import { existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type HTTPMethods,
  LogController,
} from 'fastify'
import { CdnError } from '../src/errors.js'
import { type Clock, systemClock } from '../src/clock.js'
import { requireMetricsToken } from '../src/http/auth.js'
import { jsonErrorHandler, jsonFrameworkErrors, jsonNotFoundHandler } from '../src/http/errors.js'
import { HEALTHZ } from '../src/http/status.js'
import {
  answerClientError,
  answerHalfClosed,
  discardBody,
  hasBody,
  trackRequest,
} from '../src/http/one-answer.js'
import type { SteeringConfig } from './config.js'
import { corsHeaders, steeringCors } from './cors.js'
import { Decider } from './decider.js'
import { emptyZones, type Zones } from './geo.js'
import { HealthMonitor } from './health.js'
import { SteeringMetrics } from './metrics.js'
import type { Registry } from './registry.js'
import { mergeFleet, recordConfig } from './registry-records.js'
import { RegistryWatch } from './registry-watch.js'
import { steeringRoutes } from './routes.js'
import { asWatched } from './upstreams.js'
import { vendorRoutes } from './vendor.js'

/** The protection space of steering's /metrics, named in a 401's challenge. */
const METRICS_REALM = 'cdn-steering-metrics'

export interface SteeringDeps {
  readonly config: SteeringConfig
  readonly registry: Registry
  readonly zones?: Zones
  readonly clock?: Clock
  /** fastify logger option: false (default) or pino options. */
  readonly logger?: boolean | Record<string, unknown>
  /** HTTPS on the app's server (src/http/role-tls.ts); its plain listener is the caller's to listen. */
  readonly tls?: RoleTls
  /** The Node process's metrics in /metrics too (steering/metrics.ts): what main.ts asks for. */
  readonly processMetrics?: boolean
}

/** With registry endpoints: registered edges merged with the file's, applied as they change. */
function registryWatch(
  config: SteeringConfig,
  file: { edges: Registry['edges'] },
  health: HealthMonitor,
  log: FastifyBaseLogger,
): RegistryWatch | undefined {
  const { endpoints, prefix, maxEdges, checkIntervalMs } = config.registry
  if (!endpoints.length) return undefined
  let lastShadowed = ''
  const shadowedWarn = (shadowed: readonly string[]) => {
    if (shadowed.join() !== lastShadowed && shadowed.length)
      log.warn(
        { event: 'registry-shadowed', ids: shadowed },
        'registered edges also in the fleet file: the file wins',
      )
    lastShadowed = shadowed.join()
  }
  return new RegistryWatch({
    endpoints,
    prefix,
    maxEdges,
    checkIntervalMs,
    file: file.edges,
    log,
    onChange: (records, changed) => {
      let change = { joined: 0, left: 0, changed: 0 }
      if (changed === null) {
        // A full read: the merged list, diffed by id.
        const sorted = [...records.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        const { edges, shadowed } = mergeFleet(file.edges, sorted)
        change = health.setEdges(edges)
        shadowedWarn(shadowed)
      } else {
        // A burst of puts and deletes: each edge joins, changes or leaves on its own.
        const fileIds = new Set(file.edges.map((e) => e.id))
        const shadowed: string[] = []
        for (const id of changed) {
          const r = records.get(id)
          if (fileIds.has(id)) {
            if (r?.tier === 1) shadowed.push(id)
            continue
          }
          if (r?.tier === 1) {
            const u = health.upsert(recordConfig(r))
            if (u !== 'same') change[u]++
          } else if (health.remove(id)) change.left++
        }
        if (shadowed.length) shadowedWarn(shadowed)
      }
      if (change.joined + change.left + change.changed)
        log.info({ event: 'fleet-changed', ...change, edges: health.size }, 'fleet changed from the registry')
    },
  })
}

export interface SteeringHandle {
  readonly health: HealthMonitor
  /** The parents and origin above the edges (fleet file "upstreams"), watched, never chosen. */
  readonly upstreams: HealthMonitor
  readonly metrics: SteeringMetrics
  readonly decider: Decider
  /**
   * Applies a fleet file read again (SIGHUP): its edges join, change and leave, merged with the
   * registry's as at start; edges whose entry is unchanged keep their health. The file's
   * `upstreams` are kept as they were at start (a warning says when they differ).
   */
  reloadFleet(next: Registry): { joined: number; left: number; changed: number }
}

declare module 'fastify' {
  interface FastifyInstance {
    steering: SteeringHandle
  }
}

/**
 * The package root (where package.json is), found from this file: works from src (tap) and
 * from dist/src (a build). A dist/ directory is never the root, even if it holds a copy.
 */
export function packageRoot(from = import.meta.url): string {
  let dir = dirname(fileURLToPath(from))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && basename(dir) !== 'dist') return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(from)}`)
    dir = up
  }
}

export async function buildSteeringApp(deps: SteeringDeps): Promise<FastifyInstance> {
  const { config, registry } = deps
  const clock = deps.clock ?? systemClock
  // Per-request lines off: decisions are counted in /metrics; edge state changes are logged.
  const app = Fastify({
    logger: deps.logger ?? false,
    logController: new LogController({ disableRequestLogging: true }),
    // A request node cannot parse is answered after the answers before it (src/http/one-answer.ts).
    clientErrorHandler: answerClientError,
    // A path fastify refuses before any route (it does not percent-decode): the JSON error body,
    // with CORS as every answer (its onSend hooks do not run).
    frameworkErrors: (err, req, reply) => {
      corsHeaders(reply)
      jsonFrameworkErrors(err, req, reply)
    },
    // ready() waits for the first health round, which each check's timeout bounds; at
    // thousands of edges it takes longer than fastify's default 10 s plugin timeout.
    pluginTimeout: 0,
    ...(deps.tls ? { serverFactory: deps.tls.serverFactory } : {}),
  })
  const metrics = new SteeringMetrics(
    registry.edges.map((e) => e.id),
    { defaultMetrics: deps.processMetrics === true },
  )
  const healthOptions = {
    intervalMs: config.checkIntervalMs,
    timeoutMs: config.checkTimeoutMs,
    failAfter: config.failAfter,
    recoverAfter: config.recoverAfter,
    loadHigh: config.loadHigh,
    loadLow: config.loadLow,
    queueDelayHigh: config.queueDelayHigh,
    concurrency: config.checkConcurrency,
    maxStatusBytes: 8 << 20,
    ca: readCaFiles(config.edgeCa, '--edge-ca'),
  }
  const health = new HealthMonitor(registry, healthOptions, clock, app.log.child({ component: 'health' }), {
    onCheck: (id, r) => metrics.check(id, r),
  })
  metrics.watch(() => health.view)
  const upstreams = new HealthMonitor(
    asWatched(registry.upstreams ?? []),
    { ...healthOptions, concurrency: 8 },
    clock,
    app.log.child({ component: 'upstream-health' }),
  )
  const decider = new Decider(config, deps.zones ?? emptyZones(), health, clock)
  const reloadFleet = (next: Registry) => {
    file.edges = next.edges
    const log = app.log.child({ component: 'fleet' })
    // At once, with the records the registry holds now; the watch then weighs its URL claims
    // again against the new file from a full read.
    const change = health.setEdges(watch ? mergeFleet(next.edges, watch.current).edges : next.edges)
    if (watch) void watch.setFile(next.edges)
    log.info({ event: 'fleet-reloaded', ...change, edges: health.size }, 'fleet file read again')
    if (JSON.stringify(next.upstreams ?? []) !== JSON.stringify(registry.upstreams ?? []))
      log.warn(
        { event: 'fleet-upstreams-kept' },
        "the fleet file's upstreams changed: they apply at a restart",
      )
    return change
  }
  app.decorate('steering', { health, upstreams, metrics, decider, reloadFleet })

  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(jsonNotFoundHandler)
  // One answer per request, in order: no route reads a body, so a body is read to its end
  // before the answer, and a malformed one gets the 400 alone (src/http/one-answer.ts).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
  // Handshakes (full or resumed) and each request's protocol, for /metrics.
  answerHalfClosed(app.server)
  if (deps.tls) app.server.on('secureConnection', (s: TLSSocket) => metrics.handshake(s.isSessionReused()))
  app.addHook('onRequest', (req, reply, done) => {
    metrics.request(requestProtocol(req.raw))
    trackRequest(req.raw, reply.raw)
    if (!hasBody(req.headers)) return done()
    discardBody(req.raw, () => done())
  })
  // The fleet file's edges: replaced when it is read again (reloadFleet, SIGHUP).
  const file = { edges: registry.edges }
  const watch = registryWatch(config, file, health, app.log.child({ component: 'registry' }))
  if (watch) metrics.watchRegistry(() => ({ leftOut: watch.leftOut, staleWatches: watch.staleWatches }))
  app.addHook('onReady', async () => {
    // The registry's first read joins the first round when it comes in time; a registry still
    // unreachable then does not hold steering up (its edges join as soon as it answers).
    if (watch) {
      watch.start()
      const bound = new AbortController()
      await Promise.race([
        watch.synced,
        delay(config.checkTimeoutMs, undefined, { signal: bound.signal }).catch(() => undefined),
      ])
      bound.abort()
    }
    await Promise.all([health.start(), upstreams.start()])
  })
  app.addHook('onClose', async () => {
    await Promise.all([health.stop(), upstreams.stop(), watch?.stop()])
  })

  // Every path served to GET, for the 405 of the other methods (registered last, below).
  const getPaths = new Set<string>()
  app.addHook('onRoute', (r) => {
    if ((Array.isArray(r.method) ? r.method : [r.method]).includes('GET')) getPaths.add(r.url)
  })
  steeringCors(app)
  steeringRoutes(app, {
    config,
    registry,
    decider,
    health,
    upstreams,
    metrics,
    clock,
    edgeCa: healthOptions.ca,
  })

  app.get('/healthz', async () => HEALTHZ)
  // Readiness (kubernetes' readinessProbe): with a registry, once its first full read is in; a
  // replica started while etcd is unreachable steers with the fleet file's edges alone, which in
  // a registry-only fleet is none. Liveness (/healthz) holds regardless, and so does a replica
  // once ready that loses etcd later: it answers from its last view (fail-static).
  let ready = !watch
  void watch?.synced.then(() => (ready = true))
  app.get('/readyz', async (_req, reply) => {
    reply.header('cache-control', 'no-store')
    if (ready) return HEALTHZ
    throw new CdnError('CDN_ERR_NOT_READY', 'the fleet registry has not been read yet')
  })
  app.get('/metrics', async (req, reply) => {
    requireMetricsToken(req.headers.authorization, config.metricsToken, reply, METRICS_REALM)
    const { contentType, body } = await metrics.render()
    return reply.header('content-type', contentType).send(body)
  })

  // The player page and the fleet dashboard (steering/public), and the browser libraries
  // they use from our own dependencies (vendor.ts), never from an outside CDN.
  const root = packageRoot()
  const publicDir = join(root, 'steering', 'public')
  await app.register(fastifyStatic, {
    root: publicDir,
    prefix: '/assets/',
    index: false,
    wildcard: true,
    cacheControl: true,
    maxAge: 60_000,
  })
  app.get('/', (_req, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html'))
  app.get('/fleet', (_req, reply) => reply.header('cache-control', 'no-cache').sendFile('fleet.html'))
  vendorRoutes(app, root, publicDir)
  // A method a resource does not take is a 405 naming those it does (RFC 9110 §15.5.6), as the
  // edge and the origin answer, not a 404 saying the resource is not there. CONNECT keeps its
  // 400 (src/http/one-answer.ts); a path no GET route serves stays a 404.
  const answered = new Set(['GET', 'HEAD', 'OPTIONS', 'CONNECT'])
  const others = app.supportedMethods.filter((m) => !answered.has(m)) as HTTPMethods[]
  for (const url of getPaths)
    app.route({
      method: others,
      url,
      handler: async (_req, reply) => {
        reply.header('allow', 'GET, HEAD, OPTIONS')
        throw new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served')
      },
    })
  return app
}
