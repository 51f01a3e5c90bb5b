/**
 * The edge's fastify instance, on the edge's own node server (app-server.ts, edge/http/server.ts):
 * plain fresh memory hits are answered from the socket's bytes (http/raw-hits.ts) unless the
 * config turns that off. Also every error fastify answers, with the one JSON body
 * (src/http/errors.ts): a request node cannot parse, a path refused before any route, and the
 * errors and not-found of the routes.
 */
import type { Server } from 'node:http'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import { jsonErrorHandler, jsonFrameworkErrors, jsonNotFoundHandler } from '../src/http/errors.js'
import { answerClientError } from '../src/http/one-answer.js'
import { CORS_ALLOW_ORIGIN } from '../src/http/paths.js'
import { loggerOptions } from '../src/log.js'
import { closeServer } from '../src/http/tls-server.js'
import type { EdgeApp, EdgeDeps } from './app-contract.js'
import { edgeServerOptions, warnFallbacks } from './app-server.js'
import { createEdgeServer, type RawCounts } from './http/server.js'
import type { ContentHandler } from './http/serve.js'
import type { EdgeStats } from './stats.js'

/**
 * The fastify app, not yet decorated with `edge`; `content` is read lazily, as the server is
 * built before the content handler. With certificates and --http-port, `plain` is the
 * plain-HTTP server beside the HTTPS one, closed with the app.
 */
export function edgeFastify(
  deps: EdgeDeps,
  stats: EdgeStats,
  content: () => ContentHandler,
): {
  app: EdgeApp
  rawHits: RawCounts | undefined
  plain: Server | undefined
  drainConnections: () => void
} {
  const { config } = deps
  let rawHits: RawCounts | undefined
  let drainConnections: () => void = () => undefined
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
        edgeServerOptions(deps, stats, content, (problem) => {
          rawHitsOff = problem
        }),
        handler,
      )
      rawHits = built.rawHits
      plain = built.plain
      drainConnections = built.drainConnections
      return built.server
    },
  }) as unknown as EdgeApp
  warnFallbacks(app.log, deps, rawHitsOff)
  if (plain) {
    const p = plain
    app.addHook('onClose', () => closeServer(p))
  }
  return { app, rawHits, plain, drainConnections }
}

/** Errors of fastify routes: the one JSON body (src/http/errors.ts), never stored by a cache. */
export function errorAnswers(app: FastifyInstance): void {
  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(jsonNotFoundHandler)
}
