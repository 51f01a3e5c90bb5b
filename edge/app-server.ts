/**
 * The node server under the edge's fastify (edge/http/server.ts), as the config sets it: the
 * raw hit path, client time limits, the connection cap, pass-through methods and, with
 * certificates, HTTPS with the plain-HTTP server beside it (serving or redirecting) and HSTS.
 * Also the fallbacks said once at start: a raw hit path or sendfile the config asks for and this
 * node cannot give.
 */
import type { FastifyBaseLogger } from 'fastify'
import { hstsMaxAge } from '../src/config/tls-options.js'
import type { EdgeDeps } from './app-contract.js'
import type { EdgeServerOptions } from './http/server.js'
import type { ContentHandler } from './http/serve.js'
import { sendfileProblem } from './native/sendfile.js'
import type { EdgeStats } from './stats.js'

/** The server's options; `rawHitsOff` is told why the raw hit path is off although asked for. */
export function edgeServerOptions(
  deps: EdgeDeps,
  stats: EdgeStats,
  content: () => ContentHandler,
  rawHitsOff: (problem: string) => void,
): EdgeServerOptions {
  const { config, clock } = deps
  return {
    content,
    stats,
    monotonic: () => clock.monotonic(),
    rawHits: config.rawHits,
    rawHitsOff,
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
          ...(config.httpPort !== undefined ? { plain: config.httpRedirect ? 'redirect' : 'serve' } : {}),
          redirect: { publicUrl: config.publicUrl, port: config.port },
          hstsMaxAge: hstsMaxAge(config),
        }
      : {}),
  }
}

/** Warns of what the server falls back to: node http for every request, or buffered disk hits. */
export function warnFallbacks(log: FastifyBaseLogger, deps: EdgeDeps, rawHitsOff: string | undefined): void {
  if (rawHitsOff !== undefined)
    log.warn(
      { code: 'CDN_WARN_RAW_HITS_OFF', problem: rawHitsOff },
      'raw hit path off: node http is not as it expects; every request goes through node http',
    )
  if (deps.config.diskSendfile && sendfileProblem !== undefined)
    log.warn(
      { code: 'CDN_WARN_SENDFILE_OFF', problem: sendfileProblem },
      'sendfile off: large disk hits are read into a buffer and written',
    )
}
