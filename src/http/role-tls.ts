/**
 * HTTPS for a fastify role (steering, origin) from its TLS options (src/config/tls-options.ts):
 * the certificates (tls-certificates.ts) watched and their ticket keys rotated, fastify's
 * serverFactory building the HTTPS server (tls-server.ts), and the plain-HTTP server beside it.
 * The edge wires its own (edge/http/server.ts), for its raw-hit path.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import { hstsMaxAge, type TlsOptions } from '../config/tls-options.js'
import { MAX_HEAD_BYTES } from './h2-limits.js'
import { answerClientError, refuseConnect } from './one-answer.js'
import { certFilesOf, TlsCertificates } from './tls-certificates.js'
import { createRedirectServer } from './redirect-server.js'
import { createHttpsServer, listeningPort } from './tls-server.js'

/** What a fastify role (steering, origin) needs to serve HTTPS: its serverFactory and the rest. */
export interface RoleTls {
  readonly certs: TlsCertificates
  /** fastify's serverFactory: the HTTPS server (HTTP/2 and HTTP/1.1). */
  serverFactory(handler: (req: IncomingMessage, res: ServerResponse) => void): HttpServer
  /** The plain-HTTP server beside it (after serverFactory ran), with `plain`. */
  readonly plain: HttpServer | undefined
}

/**
 * HTTPS for a fastify role from its TLS options (undefined without --tls-cert): certificates
 * watched and their ticket keys rotated, and with --http-port a plain server that serves the
 * same handler or redirects. Reloads are reported to `log` (read when they happen).
 */
export function roleTls(
  o: TlsOptions,
  log: () => { info(o: object, m: string): void; warn(o: object, m: string): void } | undefined,
): RoleTls | undefined {
  if (!o.tlsCert.length) return undefined
  const certs = new TlsCertificates(certFilesOf(o), {
    onReload: (r) => {
      if (r.ok) log()?.info({ names: r.names }, 'TLS certificates reloaded')
      else
        log()?.warn(
          { code: r.code, problem: r.message },
          'TLS certificates not reloaded; the ones in use stay',
        )
    },
  })
  certs.watch(o.tlsReloadInterval)
  certs.rotateTickets(o.tlsTicketRotation)
  let plain: HttpServer | undefined
  return {
    certs,
    get plain() {
      return plain
    },
    serverFactory(handler) {
      const server = createHttpsServer(certs, handler, { hstsMaxAge: hstsMaxAge(o) })
      if (o.httpPort !== undefined)
        plain = o.httpRedirect
          ? createRedirectServer({ httpsPort: () => listeningPort(server) })
          : plainServer(handler)
      return server as unknown as HttpServer
    },
  }
}

/**
 * The plain listener that serves fastify's handler as the HTTPS one does: a request node cannot
 * parse gets the JSON error of answerClientError (fastify installs it on its own server only,
 * so this one answered node's bare `400 Bad Request`), and CONNECT its JSON 400.
 */
function plainServer(handler: (req: IncomingMessage, res: ServerResponse) => void): HttpServer {
  const server = createServer({ maxHeaderSize: MAX_HEAD_BYTES }, handler)
  server.on('clientError', answerClientError)
  refuseConnect(server)
  return server
}
