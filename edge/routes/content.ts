/**
 * The edge's content routes on fastify, behind the fast paths of edge/http/server.ts: GET/HEAD
 * of anything goes to the content handler (edge/http/serve.ts; one of the edge's own paths no
 * operator route took, such as /admin/x or /steered/down/healthz, is a 404 there: cache/key.ts),
 * OPTIONS is the CORS preflight, and the other methods are relayed uncached when the operator
 * listed them (--pass-through), else refused with 405 (under /admin, where only the operator's
 * routes serve, 404: no route).
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { readCaFiles } from '../../src/http/tls-certificates.js'
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { noRoute } from '../../src/http/errors.js'
import { CORS_PREFLIGHT, titleOfPath } from '../../src/http/paths.js'
import {
  type CacheTarget,
  cacheTarget,
  isAdminPath,
  type KeyOptions,
  ownPath,
  routedPath,
} from '../cache/key.js'
import type { CacheStore } from '../cache/store.js'
import type { EdgeConfig } from '../config/spec.js'
import type { ContentHandler } from '../http/serve.js'
import type { InflightBudget } from '../inflight-budget.js'
import type { CacheStatus } from '../cache/cache-status.js'
import type { ForwardPolicy } from '../upstream/forward.js'
import { PassThrough } from '../upstream/pass-through.js'
import type { SingleFlight } from '../upstream/single-flight.js'

export interface ContentRouteDeps {
  content: ContentHandler
  /** What a successful relayed unsafe request invalidates (RFC 9111 §4.4): stored, and being fetched. */
  store: Pick<CacheStore, 'delete'>
  flights: Pick<SingleFlight, 'forget'>
  config: Pick<
    EdgeConfig,
    | 'passThrough'
    | 'upstream'
    | 'upstreamCa'
    | 'connectTimeout'
    | 'headersTimeout'
    | 'bodyTimeout'
    | 'waiterTimeout'
  >
  keyOptions: KeyOptions
  clock: Clock
  /** Relayed bodies reserve their bytes like every transfer in flight. */
  budget: InflightBudget
  /** What goes upstream of a relayed request (Via, X-Forwarded-For, deny and add lists). */
  forward: ForwardPolicy
  /** This edge's Cache-Status member (`fwd=bypass` on relayed answers); none on a cluster primary. */
  cacheStatus: CacheStatus | undefined
}

/** Largest request body relayed for a pass-through method (beacons, forms). */
export const PASS_THROUGH_MAX_BODY = 1024 * 1024

export function contentRoutes(app: FastifyInstance, d: ContentRouteDeps): void {
  const { content } = d
  app.route({
    method: ['GET', 'HEAD'],
    url: '*',
    exposeHeadRoute: false,
    handler: (req, reply) => {
      reply.hijack()
      return content.serve(req.raw, reply.raw)
    },
  })
  // CORS preflight (a player sending Range from another origin): allowed for reads only.
  app.options('*', async (_req, reply) => {
    reply.code(204).headers(CORS_PREFLIGHT).send()
  })
  otherMethods(app, d)
}

/**
 * RFC 9111 §4.4: a non-error answer to an unsafe request invalidates the stored responses for
 * its target (its cache key) and for the same-origin URIs in its Location and Content-Location.
 * An edge with --workers relays these methods to its primary, whose store tells every worker.
 */
async function invalidate(
  d: ContentRouteDeps,
  target: CacheTarget,
  host: string | undefined,
  headers: Record<string, string>,
  nowSec: number,
  log: FastifyBaseLogger,
): Promise<void> {
  const keys = new Set<string>([target.key])
  const base = `http://${host ?? 'edge.invalid'}`
  const path = target.path
  for (const name of ['location', 'content-location']) {
    const value = headers[name]
    if (value === undefined) continue
    let url: URL
    try {
      url = new URL(value, base + path)
    } catch {
      continue
    }
    // Same origin: the Host the client asked, or an upstream's own authority (the edge does not
    // forward Host, so an origin's absolute URIs name itself). Another origin's URI is not ours.
    if (url.origin !== new URL(base).origin && !upstreamOrigins(d).has(url.origin)) continue
    try {
      keys.add(
        cacheTarget(url.pathname + url.search, { ...d.keyOptions, signingKeys: undefined }, nowSec).key,
      )
    } catch {
      // Outside what this edge serves: nothing of it is stored.
    }
  }
  for (const key of keys) {
    try {
      // A sliced object's slices go with it (edge/http/slicer.ts).
      d.flights.forget(key)
      const slices = (await d.content.slicer?.drop(key, titleOfPath(key))) ?? 0
      if ((await d.store.delete(key)) || slices > 0)
        log.info({ key, slices }, 'invalidated by an unsafe request')
    } catch (err) {
      log.warn({ err, key }, 'invalidation failed')
    }
  }
}

function upstreamOrigins(d: ContentRouteDeps): Set<string> {
  const out = new Set<string>()
  for (const u of d.config.upstream) {
    try {
      out.add(new URL(u).origin)
    } catch {
      // Config validation already refused it.
    }
  }
  return out
}

/** POST, PUT, PATCH, DELETE: relayed uncached when the operator listed them, else 405. */
function otherMethods(app: FastifyInstance, d: ContentRouteDeps): void {
  const { content, clock, config } = d
  const passThrough = config.passThrough.length
    ? new PassThrough({
        upstream: config.upstream[0]!,
        connectTimeout: config.connectTimeout,
        headersTimeout: config.headersTimeout,
        bodyTimeout: config.bodyTimeout,
        maxBodySize: PASS_THROUGH_MAX_BODY,
        budget: d.budget,
        budgetWait: config.waiterTimeout,
        ca: readCaFiles(config.upstreamCa ?? [], '--upstream-ca'),
        forward: d.forward,
        cacheStatus: d.cacheStatus,
      })
    : undefined
  if (passThrough) app.addHook('onClose', () => passThrough.close())
  // Bodies of relayed methods are streamed, never parsed.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
  app.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE'],
    url: '*',
    handler: async (req, reply) => {
      if (passThrough && config.passThrough.includes(req.method) && !ownPath(req.url)) {
        // Validated like any target (traversal, signing); the query goes upstream untouched.
        const q = req.url.indexOf('?')
        const now = Math.floor(clock.now() / 1000)
        const target = cacheTarget(req.url, d.keyOptions, now, req.socket.remoteAddress)
        const path = q === -1 ? target.path : target.path + req.url.slice(q)
        reply.hijack()
        try {
          await passThrough.relay(req.raw, reply.raw, path, async (status, headers) => {
            if (status >= 200 && status < 400)
              await invalidate(d, target, req.headers.host, headers, now, req.log)
          })
        } catch (err) {
          content.sendError(req.raw, reply.raw, err, clock.monotonic())
        }
        return
      }
      // Under /admin only the operator's routes serve (admin.ts, prefill's): a path or method none
      // of them takes (`DELETE /admin/cache/feature`, without its /vod/) is no route, not content.
      const path = routedPath(req.url)
      if (path !== undefined && isAdminPath(path)) throw noRoute(req)
      reply.header('allow', 'GET, HEAD')
      throw new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served')
    },
  })
}
