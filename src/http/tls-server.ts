/**
 * The servers a role listens with: HTTPS speaking HTTP/2 with ALPN falling back to HTTP/1.1
 * (on TlsCertificates, tls-certificates.ts, whose reloads and ticket rotations it follows), the
 * bounds its HTTP/2 sessions and streams keep (h2-limits.ts), the 400 of plain HTTP sent to it,
 * handshake counting, and listening and closing a server that may never have listened (the
 * plain-HTTP one beside it too, which serves or redirects: redirect-server.ts).
 */
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2'
import { type IncomingMessage, Server as HttpServer, type ServerResponse } from 'node:http'
import { type AddressInfo, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { CdnError } from '../errors.js'
import type { TlsCertificates } from './tls-certificates.js'
import {
  boundSession,
  h2Settings,
  headTooLarge,
  MAX_HEAD_BYTES,
  refuseStream,
  streamRequestTimeout,
} from './h2-limits.js'
import { sendJsonError } from './errors.js'
import { lacksHost, oneValidHost } from './host.js'
import { rawErrorResponse, refuseConnect } from './one-answer.js'

/** Handshakes seen by a TLS listener: full, and resumed from a ticket. */
export interface HandshakeCounts {
  tlsHandshakes: { full: number; resumed: number }
}

/** Counts each completed handshake of `server` as full or resumed. */
export function countHandshakes(
  server: { on(e: 'secureConnection', l: (s: TLSSocket) => void): unknown },
  counts: HandshakeCounts,
): void {
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.isSessionReused()) counts.tlsHandshakes.resumed++
    else counts.tlsHandshakes.full++
  })
}

export type AnyRequest = IncomingMessage | Http2ServerRequest
export type AnyResponse = ServerResponse | Http2ServerResponse

/** Client time limits (ms) of a server: the same on HTTP/1.1 and HTTP/2. */
export interface ClientTimeouts {
  /** The TLS handshake, and then a request head from its first byte (then 408 and close). */
  headers: number
  /** A whole request, head and body (then 408: the connection closes, or the HTTP/2 stream). */
  request: number
  /** Idle time between requests: a connection, or an HTTP/2 session with no open stream. */
  keepAlive: number
}

/** The limits of a role that sets none (steering, origin): node's request timeout, the edge's others. */
export const DEFAULT_CLIENT_TIMEOUTS: Readonly<ClientTimeouts> = {
  headers: 10_000,
  request: 300_000,
  keepAlive: 5000,
}

export interface HttpsServerOptions {
  timeouts?: ClientTimeouts
  alpn?: string[]
  /** HTTP/2 streams a session may have open at once (H2_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams?: number
  /** Strict-Transport-Security max-age (seconds) on every answer (tls-options.ts hstsMaxAge); 0: none. */
  hstsMaxAge?: number
}

/**
 * An HTTPS server speaking HTTP/2 and HTTP/1.1 (ALPN, h2 preferred) with `certs`. The handler
 * gets node's HTTP/1 objects for HTTP/1.1 and the compatibility objects for HTTP/2; a request
 * without Host has its `:authority` as Host, so code reading `headers.host` works on both.
 * `timeouts` hold on both protocols: the handshake takes at most the head's limit, and an
 * HTTP/2 session and its streams are bounded as h2-limits.ts says.
 */
export function createHttpsServer(
  certs: TlsCertificates,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  opts: HttpsServerOptions = {},
): Http2SecureServer {
  const timeouts = opts.timeouts ?? DEFAULT_CLIENT_TIMEOUTS
  const hsts = opts.hstsMaxAge ? `max-age=${opts.hstsMaxAge}` : undefined
  const server = createSecureServer(
    {
      ...certs.serverOptions(),
      allowHTTP1: true,
      ALPNProtocols: opts.alpn ?? ['h2', 'http/1.1'],
      handshakeTimeout: timeouts.headers,
      settings: h2Settings(opts.maxConcurrentStreams),
    },
    (req, res) => {
      if (hsts !== undefined) res.setHeader('strict-transport-security', hsts)
      if (req.httpVersionMajor === 2) {
        if (headTooLarge(req))
          return refuseStream(res, new CdnError('CDN_ERR_HEADERS_TOO_LARGE', 'request head too large'))
        // RFC 9113 §8.3.1: `:authority` held to HTTP/1.1's Host rule, and a Host beside it the same.
        if (!oneValidHost(req))
          return refuseStream(
            res,
            new CdnError(
              'CDN_ERR_BAD_REQUEST',
              'a request needs one valid :authority, and any Host the same',
            ),
          )
        streamRequestTimeout(req, res, timeouts.request)
        withHost(req)
      } else if (lacksHost(req)) {
        // RFC 9112 §3.2, as node's own http server answers it (requireHostHeader), which its
        // HTTP/2 server's HTTP/1.1 fallback does not: such a request was served.
        const err = new CdnError('CDN_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header')
        sendJsonError(res as unknown as ServerResponse, err, { connection: 'close' }, req.method === 'HEAD')
        return
      }
      handler(req as unknown as IncomingMessage, res as unknown as ServerResponse)
    },
  )
  certs.attach(server)
  server.once('close', () => certs.detach(server))
  refuseConnect(server)
  server.on('tlsClientError', answerPlainHttp)
  // node's HTTP/2 server lacks these: HTTP/1.1 connections are tracked by node's http code
  // (allowHTTP1), whose own methods close them; HTTP/2 sessions are sent a GOAWAY.
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s)
    s.once('close', () => sessions.delete(s))
    boundSession(s, timeouts.keepAlive)
  })
  const h1 = HttpServer.prototype
  const extra = server as unknown as Pick<HttpServer, 'closeIdleConnections' | 'closeAllConnections'>
  extra.closeIdleConnections = () => {
    h1.closeIdleConnections.call(server as unknown as HttpServer)
    for (const s of sessions) s.close()
  }
  extra.closeAllConnections = () => {
    h1.closeAllConnections.call(server as unknown as HttpServer)
    for (const s of sessions) s.destroy()
  }
  const close = server.close.bind(server)
  server.close = (cb?: (err?: Error) => void) => {
    const r = close(cb)
    for (const s of sessions) s.close()
    return r
  }
  // HTTP/1.1 over TLS: node's http limits, as on a plain listener.
  const limits = server as unknown as Pick<
    HttpServer,
    'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout'
  > & {
    maxHeaderSize: number
  }
  limits.maxHeaderSize = MAX_HEAD_BYTES
  limits.headersTimeout = timeouts.headers
  limits.requestTimeout = timeouts.request
  limits.keepAliveTimeout = timeouts.keepAlive
  return server
}

/**
 * Plain HTTP sent to the HTTPS port (`curl http://host:8443/healthz`) is answered as nginx
 * answers it, a 400 (CDN_ERR_PLAIN_HTTP_ON_TLS, the JSON body, `connection: close`) in the clear,
 * then the close; the client saw "Empty reply from server". OpenSSL itself recognises such a first
 * record (a GET, POST, HEAD or PUT, ERR_SSL_HTTP_REQUEST; a CONNECT, ERR_SSL_HTTPS_PROXY_REQUEST)
 * and fails the handshake, so a TLS connection pays nothing for this: no byte is peeked. Other
 * methods (which ones depends on OpenSSL's version: Node 20's does not know OPTIONS, Node 24's
 * does) fail as any non-TLS bytes do and are closed without an answer. The
 * answer goes on the TCP socket under the TLS one (`_parent`, node's, still open while the
 * error is emitted: it closes after the handlers); without one it is closed as before.
 */
function answerPlainHttp(err: Error & { code?: string }, socket: TLSSocket): void {
  if (err.code !== 'ERR_SSL_HTTP_REQUEST' && err.code !== 'ERR_SSL_HTTPS_PROXY_REQUEST') return
  const raw = (socket as TLSSocket & { _parent?: unknown })._parent
  if (!(raw instanceof Socket) || !raw.writable) return
  raw.on('error', () => undefined)
  raw.end(
    rawErrorResponse(
      new CdnError('CDN_ERR_PLAIN_HTTP_ON_TLS', 'the plain HTTP request was sent to an HTTPS port'),
    ),
  )
}

/** HTTP/2 names the host `:authority`; code written for HTTP/1 reads `host`. */
export function withHost(req: Http2ServerRequest | IncomingMessage): void {
  const h = req.headers as Record<string, string | string[] | undefined>
  if (h.host === undefined && typeof h[':authority'] === 'string') h.host = h[':authority']
}

/** The protocol of a request: `h2`, `h1` over TLS (`https1`) or in the clear (`h1`). */
export function requestProtocol(req: AnyRequest): 'h1' | 'https1' | 'h2' {
  if (req.httpVersionMajor === 2) return 'h2'
  return (req.socket as TLSSocket).encrypted ? 'https1' : 'h1'
}

/** Listens `server` (the plain-HTTP one beside HTTPS) on `port`; resolves with the port it got. */
export function listenServer(server: HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host }, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Closes a server that may never have listened, its connections with it. */
export function closeServer(server: HttpServer): Promise<void> {
  if (!server.listening) return Promise.resolve()
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/** The port `server` listens on, undefined before it listens or on a path (a cluster worker's). */
export function listeningPort(server: { address(): ReturnType<HttpServer['address']> }): number | undefined {
  const addr = server.address()
  return addr !== null && typeof addr === 'object' ? addr.port : undefined
}
