/**
 * The edge's content routes on fastify, behind the fast paths of edge/http/server.ts: GET/HEAD
 * of anything goes to the content handler (edge/http/serve.ts; an /admin path no operator
 * route took is a 404), OPTIONS is the CORS preflight, and the other methods are relayed
 * uncached when the operator listed them (--pass-through), else refused with 405.
 */
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { CORS_ALLOW_ORIGIN } from '../../src/http/paths.js'
import { cacheTarget, type KeyOptions } from '../cache/key.js'
import type { EdgeConfig } from '../config.js'
import type { ContentHandler } from '../http/serve.js'
import type { InflightBudget } from '../inflight-budget.js'
import { PassThrough } from '../upstream/pass-through.js'

export interface ContentRouteDeps {
  content: ContentHandler
  config: Pick<
    EdgeConfig,
    'passThrough' | 'upstream' | 'connectTimeout' | 'headersTimeout' | 'bodyTimeout' | 'waiterTimeout'
  >
  keyOptions: KeyOptions
  clock: Clock
  /** Relayed bodies reserve their bytes like every transfer in flight. */
  budget: InflightBudget
}

/** Largest request body relayed for a pass-through method (beacons, forms). */
const PASS_THROUGH_MAX_BODY = 1024 * 1024

export function contentRoutes(app: FastifyInstance, d: ContentRouteDeps): void {
  const { content, clock } = d
  app.route({
    method: ['GET', 'HEAD'],
    url: '*',
    exposeHeadRoute: false,
    handler: (req, reply) => {
      reply.hijack()
      if (req.url.startsWith('/admin'))
        return content.sendError(
          req.raw,
          reply.raw,
          new CdnError('CDN_ERR_NOT_FOUND', 'not found'),
          clock.monotonic(),
        )
      return content.serve(req.raw, reply.raw)
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
  otherMethods(app, d)
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
      if (passThrough && config.passThrough.includes(req.method) && !req.url.startsWith('/admin')) {
        // Validated like any target (traversal, signing); the query goes upstream untouched.
        const q = req.url.indexOf('?')
        const now = Math.floor(clock.now() / 1000)
        const checked = cacheTarget(req.url, d.keyOptions, now, req.socket.remoteAddress).path
        const path = q === -1 ? checked : checked + req.url.slice(q)
        reply.hijack()
        try {
          await passThrough.relay(req.raw, reply.raw, path)
        } catch (err) {
          content.sendError(req.raw, reply.raw, err, clock.monotonic())
        }
        return
      }
      reply.header('allow', 'GET, HEAD')
      throw new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served')
    },
  })
}
