/**
 * The edge's request path, in the order a request meets it (this folder):
 *
 *   raw-hits.ts    every connection starts on a small HTTP/1.1 parser; plain GET/HEAD of a fresh
 *                  memory hit is answered from the socket's bytes, anything else hands the
 *                  connection to node's http for good (raw-connection.ts: one connection;
 *                  raw-parse.ts: the parser)
 *   server.ts      node's http server (this file): the fast hit, target and relay checks, then
 *   serve.ts       fastify's content route calls ContentHandler: memory → disk tiers, then
 *                  revalidation or the single-flight (edge/upstream), which fetches upstream;
 *                  hit-targets.ts: a URL's cache target, memoised
 *   answers.ts     an answer from a stored entry or an error, and each request's outcome recorded
 *   pump-body.ts   a large disk hit's body, sent chunk by chunk
 *   client-sink.ts a client of a miss, fed as the upstream's bytes arrive
 *   responder.ts   the one writer of an answer's head for an entry (200/206/304/412/416, as
 *                  src/http/respond.ts decides)
 *
 * fastify's routes: content, preflight and pass-through in edge/routes/content.ts; the
 * operator's (ops, admin, prefill) beside it; edge/app.ts registers them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Http2SecureServer } from 'node:http2'
import type { Socket } from 'node:net'
import { CdnError } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { MAX_HEAD_BYTES } from '../../src/http/h2-limits.js'
import { oneValidHost } from '../../src/http/host.js'
import {
  answerClientError,
  discardBody,
  hasBody,
  refuseConnect,
  trackRequest,
} from '../../src/http/one-answer.js'
import { originForm } from '../../src/http/origin-form.js'
import type { TlsCertificates } from '../../src/http/tls-certificates.js'
import {
  type ClientTimeouts,
  countHandshakes,
  createHttpsServer,
  listeningPort,
  requestProtocol,
} from '../../src/http/tls-server.js'
import { createRedirectServer, redirectBase } from '../../src/http/redirect-server.js'
import { ownPath } from '../cache/key.js'
import type { EdgeStats } from '../stats.js'
import { ClientConnections, type ConnectionLimits } from './client-limits.js'
import { type ConnectionEvent, nodeConnectionListener, RawHits } from './raw-hits.js'
import type { ContentHandler } from './serve.js'

export interface EdgeServerOptions {
  /** The content handler; read lazily, as fastify builds the server before the app's routes. */
  content: () => ContentHandler
  stats: EdgeStats
  /** Monotonic milliseconds, for the write-stall limit. */
  monotonic: () => number
  /** Puts the raw hit path in front of node's http (HTTP/1.1, in the clear and over TLS). */
  rawHits: boolean
  /** Told why the raw path is off although asked for (node's internals not as it expects). */
  rawHitsOff?: (problem: string) => void
  /** Client-facing time limits, the same on the raw path and node's http. */
  timeouts: ClientTimeouts
  /** The connection cap and the write-stall limit. */
  connections: ConnectionLimits
  /** Methods relayed upstream with their body (--pass-through); other bodies are read and dropped. */
  passThrough?: readonly string[]
  /** Certificates: the server speaks HTTPS (HTTP/2 and HTTP/1.1, src/http/tls-server.ts). */
  tls?: TlsCertificates
  /** With `tls`: a plain-HTTP server beside, serving the same content or redirecting to HTTPS. */
  plain?: 'serve' | 'redirect'
  /**
   * Where the redirect sends clients: the edge's --public-url when it is https (always there),
   * else the request's host on `port` (--port: a cluster worker listens on a private path), or
   * on the port the HTTPS server listens on when that is 0.
   */
  redirect?: { publicUrl?: string | undefined; port: number }
  /** With `tls`: Strict-Transport-Security max-age (seconds) on every HTTPS answer; 0: none. */
  hstsMaxAge?: number
}

/** Client-facing time limits (ms), from the edge's options. */
export type { ClientTimeouts }

/** Raw hit counts over the edge's listeners. */
export type RawCounts = Pick<RawHits, 'answered' | 'handedOver'>

export interface EdgeServer {
  /** The server fastify listens on: HTTPS with `tls`, else plain HTTP. */
  server: Server
  /** The plain-HTTP server beside the HTTPS one (`plain`), which the caller listens on. */
  plain: Server | undefined
  rawHits: RawCounts | undefined
  connections: ClientConnections
  /**
   * Tells the clients on keep-alive connections to go (a drain: --drain-delay): from now on every
   * HTTP/1.1 answer carries `connection: close` and its connection closes after it (on the raw
   * path too: its connections hand their next request to node's http), and every HTTP/2 session
   * is sent a GOAWAY: its open streams finish, and the client's next request opens a new
   * connection, which a load balancer (a kubernetes Service) gives to an edge still ready.
   * Idle connections are left to their client's next request or the close, so no request that
   * crosses the close on the wire is lost; new connections are served the same way.
   */
  drainConnections(): void
}

/**
 * Builds the node server fastify runs on (its serverFactory): `handler` is fastify's.
 * Fresh memory hits are answered before fastify; absolute-form targets are taken in origin-form,
 * other forms and CONNECT are refused.
 */
export function createEdgeServer(
  opts: EdgeServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): EdgeServer {
  const { stats } = opts
  let draining = false
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    stats.protocols[requestProtocol(req)]++
    if (!oneValidHost(req)) return refuseHost(req, res)
    if (!ROUTED_METHODS.has(req.method!)) return refuseMethod(res)
    if (opts.content().fastHit(req, res)) return
    const url = req.url ?? ''
    // Anything not origin-form (an absolute-form target is in origin-form by now): refused here.
    if (url.charCodeAt(0) !== 47 || url.startsWith('//')) {
      sendJsonError(res, new CdnError('CDN_ERR_BAD_PATH', 'request target must be an origin-form path'))
      return
    }
    handler(req, res)
  }
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    // Answers leave in request order, a client error's after the others (src/http/one-answer.ts);
    // a body nothing here reads is read to its end before the answer (decided on the origin-form).
    trackRequest(req, res)
    // Node then answers `connection: close` and closes the connection after the answer.
    if (draining && req.httpVersionMajor === 1) res.shouldKeepAlive = false
    originForm(req)
    if (hasBody(req.headers) && !readsBody(req, opts)) return discardBody(req, () => dispatch(req, res))
    dispatch(req, res)
  }
  const main = opts.tls
    ? serveOn(
        createHttpsServer(opts.tls, listener, {
          timeouts: opts.timeouts,
          ...(opts.hstsMaxAge ? { hstsMaxAge: opts.hstsMaxAge } : {}),
        }) as unknown as Server,
        'secureConnection',
        'https1',
        opts,
      )
    : serveOn(createServer(HTTP_OPTIONS, listener), 'connection', 'h1', opts)
  if (opts.tls) countHandshakes(main.server as unknown as Http2SecureServer, stats)
  // HTTP/2 answers wait in their streams, not in the socket: the write limit watches the sessions.
  if (opts.tls)
    (main.server as unknown as Http2SecureServer).on('session', (s) => main.connections!.session(s))
  let plain: Served | undefined
  if (opts.tls && opts.plain === 'serve') {
    plain = serveOn(createServer(HTTP_OPTIONS, listener), 'connection', 'h1', opts)
    // fastify installs its clientErrorHandler on the main server only: without this, node's bare 400.
    plain.server.on('clientError', answerClientError)
  } else if (opts.tls && opts.plain === 'redirect')
    plain = {
      server: createRedirectServer({
        base: redirectBase(opts.redirect?.publicUrl),
        httpsPort: () => opts.redirect?.port || listeningPort(main.server),
      }),
      rawHits: undefined,
    }
  const raws = [main.rawHits, plain?.rawHits].filter((r) => r !== undefined)
  const rawHits: RawCounts | undefined = raws.length
    ? {
        get answered() {
          return raws.reduce((n, r) => n + r.answered, 0)
        },
        get handedOver() {
          return raws.reduce((n, r) => n + r.handedOver, 0)
        },
      }
    : undefined
  const drainConnections = (): void => {
    if (draining) return
    draining = true
    for (const r of [main.rawHits, plain?.rawHits]) r?.drain()
    main.connections!.goAway()
  }
  return {
    server: main.server,
    plain: plain?.server,
    rawHits,
    connections: main.connections!,
    drainConnections,
  }
}

/**
 * The one answer to a request with two Host fields or an invalid one (src/http/host.ts; RFC 9112
 * §3.2: a port above 65535 too): 400, whatever its path, then the connection closes (as after
 * any framing error). node keeps the first of two Host fields, and the raw path hands any head
 * with two to node, so every request meets this check here (an HTTP/2 one in the HTTPS server
 * first, with its `:authority`).
 */
function refuseHost(req: IncomingMessage, res: ServerResponse): void {
  const err = new CdnError('CDN_ERR_BAD_REQUEST', 'a request needs exactly one valid Host header')
  // HTTP/2 has no Connection field (the stream ends; the connection serves others).
  sendJsonError(res, err, req.httpVersionMajor === 1 ? { connection: 'close' } : {}, req.method === 'HEAD')
}

/**
 * The methods the edge's routes take (edge/routes/content.ts: GET and HEAD, OPTIONS for the
 * preflight; POST, PUT, PATCH, DELETE relayed with --pass-through or refused with 405, and the
 * operator's). Any other gets that same 405 here: fastify answered those it knows 404 and those
 * it does not (`FOO` over HTTP/2) 404 with its own code. Over HTTP/1.1 a method node's parser does
 * not know never gets this far: it is a malformed request (400, then the close).
 */
const ROUTED_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
])

function refuseMethod(res: ServerResponse): void {
  sendJsonError(res, new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served'), {
    allow: 'GET, HEAD',
  })
}

/** Request heads up to 16 KiB (the raw path's limit too, and HTTP/2's: src/http/h2-limits.ts), on every listener. */
const HTTP_OPTIONS = { maxHeaderSize: MAX_HEAD_BYTES }

interface Served {
  server: Server
  rawHits: RawHits | undefined
  connections?: ClientConnections
}

/** Sets the client limits on `server`, and the raw path and connection limits in front of it. */
function serveOn(
  server: Server,
  event: ConnectionEvent,
  protocol: 'h1' | 'https1',
  opts: EdgeServerOptions,
): Served {
  const { timeouts, stats } = opts
  ;(server as Server & { maxHeaderSize: number }).maxHeaderSize = HTTP_OPTIONS.maxHeaderSize
  server.headersTimeout = timeouts.headers
  server.requestTimeout = timeouts.request
  server.keepAliveTimeout = timeouts.keepAlive
  // A client that half-closes once its requests are sent (`printf ... | nc -N`, RFC 9112 §9.6)
  // still gets every answer, then the close: node's default drops the answers not ready yet.
  ;(server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
  // node checks the head and request limits on this period: a few checks per limit.
  ;(server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(
    25,
    Math.min(1000, Math.floor(timeouts.headers / 4)),
  )
  // CONNECT (authority-form) is a proxy request: refused, never tunnelled (the HTTPS server
  // refuses it itself, HTTP/2 included).
  if (protocol === 'h1') refuseConnect(server)
  server.on(event, (socket: Socket) => {
    stats.activeConnections++
    socket.once('close', () => stats.activeConnections--)
  })
  const rawHits = opts.rawHits ? rawHitsOn(server, event, protocol, opts) : undefined
  // Last: it takes over the connection listeners set up above (raw path or node's, the count).
  const connections = new ClientConnections(server, opts.connections, opts.monotonic, stats, event)
  return { server, rawHits, connections }
}

/** The raw path in front of `server`, or undefined (and why) when node's http is not as it expects. */
function rawHitsOn(
  server: Server,
  event: ConnectionEvent,
  protocol: 'h1' | 'https1',
  opts: EdgeServerOptions,
): RawHits | undefined {
  const found = nodeConnectionListener(server, event)
  if ('problem' in found) {
    opts.rawHitsOff?.(found.problem)
    return undefined
  }
  const { protocols } = opts.stats
  return new RawHits(
    server,
    {
      rawHit: (head, url, host, suffix, acceptEncoding, retried) => {
        const out = opts.content().rawHit(head, url, host, suffix, acceptEncoding, retried)
        // Counted once answered (a RawRetry is asked again).
        if (out && !('ready' in out)) protocols[protocol]++
        return out
      },
    },
    event,
    protocol === 'https1' && opts.hstsMaxAge
      ? `strict-transport-security: max-age=${opts.hstsMaxAge}\r\n`
      : '',
  )
}
/** Whether the request's handler reads its body itself (relayed upstream, to the primary, or an operator path). */
function readsBody(req: IncomingMessage, opts: EdgeServerOptions): boolean {
  const m = req.method!
  const url = req.url ?? ''
  const bodyless = m === 'GET' || m === 'HEAD' || m === 'OPTIONS'
  return !bodyless && (ownPath(url) || (opts.passThrough ?? []).includes(m))
}
