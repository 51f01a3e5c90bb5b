/**
 * The steering app factory. Takes its collaborators (config, fleet registry, zones, clock,
 * logger), starts the health loop when the app is ready (the first round completes before
 * `ready()` resolves, so a fresh steering never answers from an empty view) and stops it on
 * close. Tests call this; only main.ts listens and touches `process`.
 */
import { createReadStream, existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import { type Clock, systemClock } from '../src/clock.js'
import { errorBody } from '../src/errors.js'
import type { SteeringConfig } from './config.js'
import { steeringCors } from './cors.js'
import { Decider } from './decider.js'
import { emptyZones, type Zones } from './geo.js'
import { HealthMonitor } from './health.js'
import { SteeringMetrics } from './metrics.js'
import type { Registry } from './registry.js'
import { steeringRoutes } from './routes.js'

export interface SteeringDeps {
  readonly config: SteeringConfig
  readonly registry: Registry
  readonly zones?: Zones
  readonly clock?: Clock
  /** fastify logger option: false (default) or pino options. */
  readonly logger?: boolean | Record<string, unknown>
}

export interface SteeringHandle {
  readonly health: HealthMonitor
  readonly metrics: SteeringMetrics
  readonly decider: Decider
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
  })
  const metrics = new SteeringMetrics(registry.edges.map((e) => e.id))
  const health = new HealthMonitor(
    registry,
    {
      intervalMs: config.checkIntervalMs,
      timeoutMs: config.checkTimeoutMs,
      failAfter: config.failAfter,
      recoverAfter: config.recoverAfter,
      loadHigh: config.loadHigh,
      loadLow: config.loadLow,
      concurrency: config.checkConcurrency,
      maxStatusBytes: 8 << 20,
    },
    clock,
    app.log.child({ component: 'health' }),
    { onCheck: (id, r) => metrics.check(id, r), onView: (v) => metrics.view(v) },
  )
  const decider = new Decider(config, registry, deps.zones ?? emptyZones(), health, clock)
  app.decorate('steering', { health, metrics, decider })

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = errorBody(err)
    if (status >= 500 && status !== 503) req.log.error({ err }, 'request failed')
    const retryAfter = (body.error as { retryAfter?: unknown }).retryAfter
    if (status === 503 && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
    return reply.code(status).header('cache-control', 'no-store').send(body)
  })
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'CDN_ERR_NOT_FOUND', message: `no route for ${req.method} ${req.url}` } }),
  )
  app.addHook('onReady', async () => health.start())
  app.addHook('onClose', async () => health.stop())

  steeringCors(app)
  steeringRoutes(app, { config, registry, decider, health, metrics, clock })

  app.get('/healthz', async () => ({ ok: true }))
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render()
    return reply.header('content-type', contentType).send(body)
  })

  // The player page and the fleet dashboard (steering/public, written by the demo
  // workstream), and hls.js from our own dependencies, never from an outside CDN.
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
  const hlsPath = join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js')
  app.get('/assets/hls.js', (_req, reply) => {
    if (!existsSync(hlsPath))
      return reply
        .code(404)
        .send({ error: { code: 'CDN_ERR_NOT_FOUND', message: 'hls.js is not installed' } })
    return reply
      .header('content-type', 'application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(createReadStream(hlsPath))
  })
  return app
}
