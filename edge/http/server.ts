/**
 * The edge's request path, in the order a request meets it (this folder):
 *
 *   raw-hits.ts    every connection starts on a small HTTP/1.1 parser; plain GET/HEAD of a fresh
 *                  memory hit is answered from the socket's bytes, anything else hands the
 *                  connection to node's http for good
 *   server.ts      node's http server (this file): the fast hit, target and relay checks, then
 *   serve.ts       fastify's content route calls ContentHandler: memory → disk tiers, then
 *                  revalidation or the single-flight (edge/upstream), which fetches upstream
 *   client-sink.ts a client of a miss, fed as the upstream's bytes arrive
 *   responder.ts   the one writer of an answer's head for an entry (200/206/304/412/416, as
 *                  src/http/respond.ts decides)
 *
 * fastify's routes: content, preflight and pass-through in edge/routes/content.ts; the
 * operator's (ops, admin, prefill) beside it; edge/app.ts registers them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { CdnError } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { discardBody, hasBody, trackRequest } from '../../src/http/one-answer.js'
import type { EdgeStats } from '../stats.js'
import { ClientConnections, type ConnectionLimits } from './client-limits.js'
import { nodeConnectionListener, RawHits } from './raw-hits.js'
import type { ContentHandler } from './serve.js'

const OWN_PATHS = new Set(['/healthz', '/status', '/metrics'])

/** The edge's own operator paths (answered by this process or, in a cluster, by the primary). */
export function ownPath(url: string): boolean {
  if (url.startsWith('/admin')) return true
  const q = url.indexOf('?')
  return OWN_PATHS.has(q === -1 ? url : url.slice(0, q))
}

export interface EdgeServerOptions {
  /** The content handler; read lazily, as fastify builds the server before the app's routes. */
  content: () => ContentHandler
  stats: EdgeStats
  /** Monotonic milliseconds, for the write-stall limit. */
  monotonic: () => number
  /** Puts the raw hit path in front of node's http. */
  rawHits: boolean
  /** Told why the raw path is off although asked for (node's internals not as it expects). */
  rawHitsOff?: (problem: string) => void
  /** Client-facing time limits, the same on the raw path and node's http. */
  timeouts: ClientTimeouts
  /** The connection cap and the write-stall limit. */
  connections: ConnectionLimits
  /** Methods relayed upstream with their body (--pass-through); other bodies are read and dropped. */
  passThrough?: readonly string[]
}

/** Client-facing time limits (ms), from the edge's options. */
export interface ClientTimeouts {
  /** A request head, from its first byte (then 408 and close). */
  headers: number
  /** A whole request, head and body (then 408 and close). */
  request: number
  /** Idle time between requests on a kept-alive connection. */
  keepAlive: number
}

export interface EdgeServer {
  server: Server
  rawHits: RawHits | undefined
  connections: ClientConnections
}

/**
 * Builds the node server fastify runs on (its serverFactory): `handler` is fastify's.
 * Fresh memory hits are answered before fastify; proxy-form targets and CONNECT are refused.
 */
export function createEdgeServer(
  opts: EdgeServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): EdgeServer {
  const { stats } = opts
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.content().fastHit(req, res)) return
    const url = req.url ?? ''
    // Absolute-form targets (proxy requests) and anything not origin-form: refused here.
    if (url.charCodeAt(0) !== 47 || url.startsWith('//')) {
      sendJsonError(res, new CdnError('CDN_ERR_BAD_PATH', 'request target must be an origin-form path'))
      return
    }
    handler(req, res)
  }
  const { timeouts } = opts
  const serverOptions = {
    maxHeaderSize: 16 * 1024,
    headersTimeout: timeouts.headers,
    requestTimeout: timeouts.request,
    keepAliveTimeout: timeouts.keepAlive,
    // node checks the head and request limits on this period: a few checks per limit.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(timeouts.headers / 4))),
  }
  const server = createServer(serverOptions, (req: IncomingMessage, res: ServerResponse) => {
    // Answers leave in request order, a client error's after the others (src/http/one-answer.ts);
    // a body nothing here reads is read to its end before the answer.
    trackRequest(req, res)
    if (hasBody(req.headers) && !readsBody(req, opts)) return discardBody(req, () => dispatch(req, res))
    dispatch(req, res)
  })
  // Set again as properties: fastify sets its own only on servers it makes itself.
  server.headersTimeout = timeouts.headers
  server.requestTimeout = timeouts.request
  server.keepAliveTimeout = timeouts.keepAlive
  // CONNECT (authority-form) is a proxy request: refused, never tunnelled.
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  server.on('connection', (socket) => {
    stats.activeConnections++
    socket.once('close', () => stats.activeConnections--)
  })
  const rawHits = opts.rawHits ? rawHitsOn(server, opts) : undefined
  // Last: it takes over the connection listeners set up above (raw path or node's, the count).
  const connections = new ClientConnections(server, opts.connections, opts.monotonic, stats)
  return { server, rawHits, connections }
}

/** The raw path in front of `server`, or undefined (and why) when node's http is not as it expects. */
function rawHitsOn(server: Server, opts: EdgeServerOptions): RawHits | undefined {
  const found = nodeConnectionListener(server)
  if ('problem' in found) {
    opts.rawHitsOff?.(found.problem)
    return undefined
  }
  return new RawHits(server, {
    rawHit: (head, url, host, suffix) => opts.content().rawHit(head, url, host, suffix),
  })
}

/** Whether the request's handler reads its body itself (relayed upstream, to the primary, or an operator path). */
function readsBody(req: IncomingMessage, opts: EdgeServerOptions): boolean {
  const m = req.method!
  const url = req.url ?? ''
  const bodyless = m === 'GET' || m === 'HEAD' || m === 'OPTIONS'
  return !bodyless && (ownPath(url) || (opts.passThrough ?? []).includes(m))
}
