/**
 * One answer per request, in request order, on node's http server (edge and steering).
 *
 * A request that carries a body nothing reads (a GET with one, a 405) is answered only once node
 * has read that body (`hasBody`, `discardBody`): answered at once, a malformed body (a bad chunk,
 * an unknown Transfer-Encoding) got node's 400 as a second answer, which a front proxy reusing the
 * connection reads as the answer to its next request.
 *
 * A request node cannot parse is answered by `answerClientError` (the server's clientError
 * handler) after every earlier request on the connection has its answer on the socket, never
 * before: written at once, the 400 overtook the answers of pipelined requests still queued and
 * was read as one of them. Then the connection closes.
 */
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http'
import type { EventEmitter } from 'node:events'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { CdnError, errorBody } from '../errors.js'
import { refuseStream } from './h2-limits.js'

/** Whether a request carries a body (from its head; the body may still be arriving). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Reads and drops the body of `req`, then calls `then`. A body node cannot parse never calls
 * it: `answerClientError` answers that request (400) and closes the connection, and that is its
 * one answer. The time a body may take is bounded by the server's request timeout.
 */
export function discardBody(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded) return then()
  // The failure is answered by the clientError handler; an aborted request is not an error here.
  req.on('error', () => undefined)
  req.once('end', then)
  req.resume()
}

interface Connection {
  /** Answers begun by node for this connection and not yet wholly on its socket. */
  open: number
  /** The latest request and its answer. */
  last: { req: IncomingMessage; res: ServerResponse } | undefined
  /** A client error waiting for the answers before it (see answerClientError). */
  settled: (() => void) | undefined
}

const connections = new WeakMap<Socket, Connection>()

/** Counts `req`'s answer until it is wholly on the socket (its 'prefinish'); call for every request. */
export function trackRequest(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket
  let c = connections.get(socket)
  if (c === undefined) {
    c = { open: 0, last: undefined, settled: undefined }
    connections.set(socket, c)
  }
  const conn = c
  conn.open++
  conn.last = { req, res }
  let done = false
  const settle = () => {
    if (done) return
    done = true
    conn.open--
    conn.settled?.()
  }
  res.once('prefinish', settle)
  // A connection closed first (client gone) settles it too: nothing more will be written.
  res.once('close', settle)
  if (!res.socket) closeWhenQueued(socket, res)
}

/**
 * A response queued behind another on its connection (pipelining) that the connection's end
 * leaves unanswered is closed ('close', destroyed), as Node 24 does and Node 20 does not: what
 * waits for its 'close' (a lent buffer, a file held, bytes reserved in flight) would wait forever.
 * Checked a turn of the loop after the socket's 'close', so a node that closes it itself does.
 */
function closeWhenQueued(socket: Socket, res: ServerResponse): void {
  let waiting = queued.get(socket)
  if (waiting === undefined) {
    // One listener per connection, however deep its pipeline.
    const all = new Set<ServerResponse>()
    waiting = all
    queued.set(socket, all)
    socket.once('close', () => {
      setImmediate(() => {
        for (const r of all) {
          r.destroy()
          r.emit('close')
        }
        all.clear()
      })
    })
  }
  const mine = waiting
  mine.add(res)
  res.once('close', () => mine.delete(res))
}

/** The responses of each connection still queued behind another (closeWhenQueued). */
const queued = new WeakMap<Socket, Set<ServerResponse>>()

/** The answer to a request node could not take: 408 (too slow), 431 (head too large), else 400. */
function clientErrorResponse(err: { code?: string }): string {
  const e =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new CdnError('CDN_ERR_REQUEST_TIMEOUT', 'the request took too long to arrive')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new CdnError('CDN_ERR_HEADERS_TOO_LARGE', 'request head too large')
        : new CdnError('CDN_ERR_BAD_REQUEST', 'malformed request')
  return rawErrorResponse(e)
}

/**
 * A whole HTTP/1.1 answer carrying the error's JSON body (as every other error answer), for a
 * socket no ServerResponse speaks for (a client error, a refused CONNECT); it closes the connection.
 */
export function rawErrorResponse(err: CdnError, extra: Record<string, string> = {}): string {
  const { status, body } = errorBody(err)
  const json = JSON.stringify(body)
  const more = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`)
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(json)}\r\ncache-control: no-store\r\n${more.join('')}` +
    `connection: close\r\n\r\n${json}`
  )
}

/**
 * CONNECT asks for a tunnel (RFC 9110 §9.3.6), and no role is a proxy: it is refused with 400
 * CDN_ERR_BAD_REQUEST on `server`, over HTTP/1.1 (node hands over the socket: the whole answer,
 * then the close) and HTTP/2 (node's compatibility layer hands a response: the JSON 400 on the
 * stream, which closes) alike. Without it node closed an HTTP/1.1 connection without a word and
 * answered HTTP/2 a bare 405.
 */
export function refuseConnect(server: EventEmitter): void {
  server.on('connect', (req: IncomingMessage | Http2ServerRequest, out: Socket | Http2ServerResponse) => {
    const err = new CdnError('CDN_ERR_BAD_REQUEST', 'CONNECT is not served: this server is not a proxy')
    if (req.httpVersionMajor === 2) return refuseStream(out as Http2ServerResponse, err)
    const socket = out as Socket
    socket.on('error', noop)
    lingeringClose(socket, rawErrorResponse(err))
  })
}

/**
 * The server's clientError handler (node calls it for a request it cannot parse or that took
 * too long). It stops reading, waits until every earlier request's answer is on the socket, then
 * answers the failed request (unless its own answer has begun: then it has one) and closes.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || beforeHandshake(err, socket))
    return void socket.destroy()
  // Nothing more is read: not node's parser (its 'end' handler would end the socket under the
  // answers still to come), nor anyone else's.
  socket.removeAllListeners('data')
  socket.removeAllListeners('end')
  socket.pause()
  const c = connections.get(socket)
  // A request whose body failed is the latest one, incomplete: it is the one answered here.
  const failed = c?.last && !c.last.req.complete ? c.last.res : undefined
  const own = failed !== undefined && !failed.headersSent ? 1 : 0
  // Bytes after a request that asked to close (`Connection: close`, HTTP/1.0 without keep-alive)
  // are no malformed request: RFC 9112 §9.6, the server processes nothing after it, nor answers.
  const unasked = err.code === 'HPE_CLOSED_CONNECTION'
  const answer = () => {
    if (c) c.settled = undefined
    const last =
      socket.writable && !unasked && (failed === undefined || !failed.headersSent)
        ? clientErrorResponse(err)
        : undefined
    lingeringClose(socket, last)
  }
  if (c === undefined || c.open <= own) return answer()
  c.settled = () => {
    if (c.open <= own) answer()
  }
}

/**
 * Whether `err` came before any HTTP: a TLS error or a handshake that never completed (a client
 * that sent nothing, or not TLS). There is nothing to answer in (a plain-text 400 would go out
 * unencrypted to a client speaking TLS, if at all; plain HTTP that OpenSSL recognised has had its
 * 400 from tls-server.ts already), so the connection is closed at once: lingered
 * on, a socket that never finished its handshake stayed the 60 s linger cap, uncounted by
 * --max-connections (which counts connections once their handshake is done).
 */
function beforeHandshake(err: { code?: string }, socket: Socket): boolean {
  const code = err.code ?? ''
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return true
  const tls = socket as Socket & { encrypted?: boolean; getCipher?: () => unknown }
  return tls.encrypted === true && tls.getCipher?.() === undefined
}

/** How long a connection ended after a client error stays, once its last byte went out, for the client's close. */
export const LINGER_MS = 1000
/** Longest a connection ended after a client error stays at all (a client that never reads what is queued). */
export const LINGER_CAP_MS = 60_000

/**
 * Ends the connection after `last` (RFC 9112 §9.6): every answer queued goes out whole, then the
 * FIN; what the client still sends is read and dropped (closing with its bytes unread would reset
 * the connection, and the client's stack drop the answers it had not yet read) until it closes
 * too, or for LINGER_MS after the last byte went out (always so on a connection node's parser
 * reads itself: the parser takes the client's bytes and its close). A client that does not read
 * what is queued is the write timeout's (edge/http/client-limits.ts). Destroying at once, as
 * before, threw away the answers still queued in the socket: a client that read slowly lost the
 * end of the answers before the bad request, and the 400.
 */
export function lingeringClose(socket: Socket, last: string | undefined, capMs = LINGER_CAP_MS): void {
  socket.on('data', noop)
  socket.once('end', () => socket.destroySoon())
  socket.resume()
  if (last === undefined) socket.end()
  else socket.end(last)
  const timer = (): void => {
    const t = setTimeout(() => socket.destroy(), LINGER_MS)
    t.unref()
    socket.once('close', () => clearTimeout(t))
  }
  if (socket.writableFinished) timer()
  else socket.once('finish', timer)
  // The edge's write timeout closes a connection whose answers make no progress; steering and
  // the origin have none, so the linger has a bound of its own.
  const cap = setTimeout(() => socket.destroy(), capMs)
  cap.unref()
  socket.once('close', () => clearTimeout(cap))
}

function noop(): void {}

/**
 * A client that half-closes once its requests are sent (`printf ... | nc -N`, RFC 9112 §9.6)
 * still gets every answer, then the close: node's default ends the connection at the client's
 * FIN and drops the answers not ready yet (a catalogue read, a master fetched for steering).
 */
export function answerHalfClosed(server: object): void {
  ;(server as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
}
