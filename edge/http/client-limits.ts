/**
 * Limits on the edge's client connections, on the raw path and node's http alike (both get
 * their connections through this): at most `maxConnections` at once, a connection past it
 * answered 503 with Retry-After and closed; and a connection whose answer makes no progress for
 * `writeTimeout` because the client does not read is closed (node's http has no such limit, and
 * its socket timeout would also close idle waits on the upstream).
 */
import type { Server } from 'node:http'
import { constants, type Http2Session, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { CdnError } from '../../src/errors.js'
import { H2_CLOSE_GRACE_MS } from '../../src/http/h2-limits.js'
import { rawErrorResponse } from '../../src/http/one-answer.js'

export interface ConnectionLimits {
  maxConnections: number
  /** ms an answer may make no progress (bytes queued, none taken by the client). */
  writeTimeout: number
}

/** Where the counts go (the edge's stats, read by /metrics). */
export interface ConnectionCounts {
  connectionsRefused: number
  clientWriteStalls: number
}

const REFUSAL = rawErrorResponse(new CdnError('CDN_ERR_OVERLOADED', 'too many connections; retry shortly'), {
  'retry-after': '1',
})
/** How long a refused connection may stay to read its answer (its request is read and dropped). */
const REFUSED_LINGER_MS = 1000

interface Progress {
  /** Bytes the client has taken (written minus still queued) at the last check. */
  done: number
  /** When `done` last moved while bytes were queued; -1: nothing queued. */
  since: number
}

type Listener = (socket: Socket) => void

/** Sessions already sent their first GOAWAY by goAwayGracefully. */
const goingAway = new WeakSet<Http2Session>()

/**
 * Ends an HTTP/2 session gracefully (RFC 9113 §6.8), once however often asked: a first GOAWAY
 * with the largest stream id (no new request, but those the client already sent are served),
 * then, a round trip later, node's close(): a GOAWAY with the last stream processed, and the
 * session ends once its streams finish. The round trip is a PING sent after the first GOAWAY
 * (its answer comes after every stream the client sent before it saw the GOAWAY), or the
 * client's own GOAWAY, or at most H2_CLOSE_GRACE_MS (a client that answers neither). close()
 * alone refused (RST_STREAM REFUSED_STREAM) the requests the client had sent in the same flight
 * as the one being answered.
 */
function goAwayGracefully(session: Http2Session): void {
  if (goingAway.has(session) || session.closed || session.destroyed) return
  goingAway.add(session)
  session.goaway(constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1)
  const close = (): void => {
    clearTimeout(bound)
    if (!session.closed && !session.destroyed) session.close()
  }
  const bound = setTimeout(close, H2_CLOSE_GRACE_MS).unref()
  session.once('goaway', close)
  // nghttp2 sends a PING ahead of a GOAWAY queued with it: this one goes once the GOAWAY has.
  setImmediate(() => {
    if (session.closed || session.destroyed || !session.ping(close)) close()
  })
}

export class ClientConnections {
  private readonly open = new Map<Socket, Progress>()
  /** goAway() was called: sessions get a GOAWAY with their first stream. */
  private draining = false
  /** HTTP/2 sessions (session()), each with its open streams. */
  private readonly sessions = new Map<ServerHttp2Session, { streams: Set<ServerHttp2Stream>; p: Progress }>()
  private lingering = 0

  /** Takes over `server`'s 'connection' listeners: each admitted connection goes to them in order. */
  constructor(
    server: Server,
    private readonly limits: ConnectionLimits,
    private readonly monotonic: () => number,
    private readonly counts: ConnectionCounts,
    /** 'secureConnection' on an HTTPS server: connections are counted once their handshake is done. */
    event: 'connection' | 'secureConnection' = 'connection',
  ) {
    const listeners = server.listeners(event) as Listener[]
    server.removeAllListeners(event)
    server.on(event, (socket: Socket) => {
      if (this.open.size >= limits.maxConnections) return this.refuse(socket)
      this.open.set(socket, { done: 0, since: -1 })
      socket.once('close', () => this.open.delete(socket))
      for (const l of listeners) l.call(server, socket)
    })
    const every = Math.max(10, Math.min(1000, Math.floor(limits.writeTimeout / 4)))
    const sweep = setInterval(() => this.sweep(), every).unref()
    server.once('close', () => clearInterval(sweep))
  }

  private refuse(socket: Socket): void {
    this.counts.connectionsRefused++
    socket.on('error', () => undefined)
    // An HTTP/2 client would not read an HTTP/1.1 answer: closed without one.
    if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2')
      return void socket.destroy()
    // Past a bound on refusals still lingering, no answer: only the close.
    if (this.lingering >= Math.max(64, this.limits.maxConnections >> 3)) return void socket.destroy()
    this.lingering++
    socket.once('close', () => this.lingering--)
    socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy())
    // The request is read and dropped, so closing does not reset the answer away.
    socket.resume()
    socket.end(REFUSAL)
  }

  /**
   * Holds an HTTP/2 session to the write limit too. Its answers wait in its streams (flow
   * control: DATA goes out only as the client opens its windows), not in the socket's queue, so
   * a client that stopped reading kept its streams, and the buffers they hold, for good.
   */
  session(session: ServerHttp2Session): void {
    const streams = new Set<ServerHttp2Stream>()
    this.sessions.set(session, { streams, p: { done: 0, since: -1 } })
    session.on('stream', (stream: ServerHttp2Stream) => {
      streams.add(stream)
      stream.once('close', () => streams.delete(stream))
      // A session opened during a drain gets its GOAWAY with its first stream, which it keeps
      // (and those sent with it).
      if (this.draining) goAwayGracefully(session)
    })
    session.once('close', () => this.sessions.delete(session))
  }

  /**
   * A drain: every HTTP/2 session, and each one opened from now on, is sent a GOAWAY; its open
   * streams finish, then it closes.
   */
  goAway(): void {
    this.draining = true
    for (const session of this.sessions.keys()) goAwayGracefully(session)
  }

  /** Closes connections (and HTTP/2 sessions) whose queued answer has not moved for the write timeout. */
  private sweep(): void {
    const now = this.monotonic()
    for (const [socket, p] of this.open)
      if (this.stalled(p, socket.writableLength, socket, now)) socket.destroy()
    for (const [session, { streams, p }] of this.sessions) {
      if (session.destroyed) continue
      let queued = session.socket.writableLength
      for (const stream of streams) queued += stream.writableLength
      if (this.stalled(p, queued, session.socket, now)) session.destroy()
    }
  }

  /** Whether `queued` bytes have waited on `socket` for the write timeout without its taking any (counted). */
  private stalled(p: Progress, queued: number, socket: Socket, now: number): boolean {
    if (queued === 0) {
      p.since = -1
      return false
    }
    const done = socket.bytesWritten - socket.writableLength
    if (p.since < 0 || done !== p.done) {
      p.done = done
      p.since = now
      return false
    }
    if (now - p.since < this.limits.writeTimeout) return false
    this.counts.clientWriteStalls++
    return true
  }
}
