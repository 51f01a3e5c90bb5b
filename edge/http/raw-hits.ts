/**
 * The raw hit path: fresh memory hits answered straight from the socket's bytes, before node's
 * http builds a request and a response object. A bare node:http server costs about twice the
 * CPU per small response of a net server writing prebuilt bytes (measured: docs/bench.md), and
 * on small objects that per-request work is the whole cost of a hit.
 *
 * Every connection starts here. While its requests are plain GET/HEAD of fresh memory hits
 * (HTTP/1.1, a Host, no body, no conditionals, no range, no Cache-Control or Pragma, no Connection other than keep-alive)
 * they are parsed here and answered with the entry's memoised head and body in one writev (over
 * TLS, a large body in a write of its own: TLS_SOLO_BODY). The
 * first request that is anything else, or anything this parser is not sure of, hands the
 * connection, with every byte not yet answered, to node's http server for good, which
 * answers it exactly as before (fastify, the synchronous fast hit, disk, misses, errors).
 * Responses stay in request order: what was answered here is queued on the socket before the
 * hand-over.
 *
 * It never waits on bytes it is not sure of: a partial head is kept only while it is the start
 * of a request this parser would answer (`plainStart`); a bare LF, a lone CR, a framing header
 * or any other surprise hands over at once, so node answers it (400) at once. A partial head
 * waits at most the server's headers timeout (then the server's clientError answer, 408), and
 * a client that half-closes mid-head is handed over with its bytes, as node would see them.
 *
 * Here: taking connections over and handing them to node; raw-connection.ts: one connection's
 * reads and writes; raw-parse.ts: the request parser.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { RawConnection } from './raw-connection.js'
import { answerHead, type RawAnswer, type RawHitSource, type RawRetry } from './raw-parse.js'

type Listener = (socket: Socket) => void

/**
 * Where a server's connections arrive: 'connection' on node's http server, 'secureConnection'
 * (after the handshake) on the HTTPS one (src/http/tls-server.ts), whose own listener runs
 * HTTP/2 or, for ALPN http/1.1, node's http on the TLS socket. The raw path takes HTTP/1.1 on
 * either; an HTTP/2 connection goes to node's listener at once.
 */
export type ConnectionEvent = 'connection' | 'secureConnection'

/**
 * The start-up self-check: node's own connection listener on a fresh http server, found by its
 * function name (an internal of node's http, the same on Node 20 and 24). The raw path hands
 * connections to it; when node's internals are not as expected, this says why, and the edge
 * serves every request through node's http instead.
 */
export function nodeConnectionListener(
  server: Server,
  event: ConnectionEvent = 'connection',
): { listener: Listener } | { problem: string } {
  const own = server.listeners(event).filter((l) => l.name === 'connectionListener')
  if (own.length !== 1 || own[0]!.length !== 1)
    return { problem: `node http: expected one connectionListener(socket), found ${own.length}` }
  if (typeof server.headersTimeout !== 'number' || typeof server.keepAliveTimeout !== 'number')
    return { problem: 'node http: no numeric headersTimeout/keepAliveTimeout on the server' }
  return { listener: own[0] as Listener }
}

export class RawHits {
  private readonly sockets = new Set<Socket>()
  private readonly httpConnection: Listener
  private closing = false
  private draining = false
  /** Raw requests answered and connections handed to node's http, for tests and figures. */
  answered = 0
  handedOver = 0

  /** Takes over `server`'s connections; node's own connection listener gets them on hand-over. */
  constructor(
    readonly server: Server,
    private readonly source: RawHitSource,
    event: ConnectionEvent = 'connection',
    /** Header lines every answer here carries (the HTTPS listener's Strict-Transport-Security). */
    private readonly extraHead = '',
  ) {
    const found = nodeConnectionListener(server, event)
    if ('problem' in found) throw new Error(`raw hits: ${found.problem}`)
    this.httpConnection = found.listener
    server.removeListener(event, found.listener)
    server.prependListener(event, (socket: Socket) => this.accept(socket))
    // Closing the server ends the connections parked here too (node's http only knows its own).
    const close = server.close.bind(server)
    server.close = (cb?: (err?: Error) => void) => {
      this.endAll(false)
      return close(cb)
    }
    const closeIdle = server.closeIdleConnections.bind(server)
    server.closeIdleConnections = () => {
      this.endAll(false)
      closeIdle()
    }
    const closeAll = server.closeAllConnections.bind(server)
    server.closeAllConnections = () => {
      this.endAll(true)
      closeAll()
    }
  }

  private endAll(destroy: boolean): void {
    this.closing = true
    for (const s of this.sockets) {
      if (destroy) s.destroy()
      else s.end()
    }
  }

  /**
   * A drain (EdgeServer.drainConnections): each connection hands its next request to node's
   * http, which answers it with `connection: close` and closes the connection after it.
   */
  drain(): void {
    this.draining = true
  }

  /** Closing or draining: no request is answered here any more. */
  get isClosing(): boolean {
    return this.closing || this.draining
  }

  private accept(socket: Socket): void {
    if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2')
      return void this.httpConnection.call(this.server, socket)
    this.sockets.add(socket)
    const t = Math.floor(this.server.keepAliveTimeout / 1000)
    const suffix =
      (t > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${t}\r\n` : 'connection: keep-alive\r\n') +
      this.extraHead
    new RawConnection(this, socket, suffix)
  }

  /** node's http takes `socket` for good, then `rest`, the bytes not answered here. */
  handOver(socket: Socket, rest: Buffer): void {
    this.sockets.delete(socket)
    this.handedOver++
    this.httpConnection.call(this.server, socket)
    // Node's parser reads from the socket's handle itself (consumed) unless the socket has a
    // 'data' listener: a listener added and taken away sets it back to plain 'data' events, the
    // mode in which node's pause is a paused stream, so no byte reaches its parser while it is
    // paused. Consumed, a resume node itself had scheduled (on a drain, then paused again within
    // the same parse of `rest`) restarted reading on the next tick, and the next bytes reached
    // the paused parser: a 400 (HPE_PAUSED) to a valid pipelined request.
    socket.on('data', noop)
    socket.removeListener('data', noop)
    if (rest.length) socket.emit('data', rest)
    // Reading goes on (the raw path may have paused it) unless node stopped it while it parsed
    // `rest`: its answers backed up (`_paused`: it resumes the socket once they drain), or a
    // request it could not parse (answerClientError took the socket's 'data' listeners).
    const pausedByNode = (socket as Socket & { _paused?: boolean })._paused === true
    if (!socket.destroyed && !pausedByNode && socket.listenerCount('data') > 0) socket.resume()
  }

  /** Longest a request head may take here: what node allows for a head (and for a whole request). */
  headLimit(): number {
    const { headersTimeout, requestTimeout } = this.server
    return requestTimeout > 0 && requestTimeout < headersTimeout ? requestTimeout : headersTimeout
  }

  /** A connection the raw path holds closed. */
  forget(socket: Socket): void {
    this.sockets.delete(socket)
  }

  /** Parses one request head (bytes start..end, end at its CRLFCRLF); the hit's bytes or undefined. */
  answer(
    buf: Buffer,
    start: number,
    end: number,
    suffix: string,
    retried: boolean,
  ): RawAnswer | RawRetry | undefined {
    return answerHead(this.source, buf, start, end, suffix, retried)
  }
}

function noop(): void {}
