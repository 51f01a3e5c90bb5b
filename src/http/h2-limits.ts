/**
 * The bounds node's HTTP/2 server does not set by itself, for every role's HTTPS server
 * (tls-server.ts), so that HTTP/2 holds a client to what HTTP/1.1 does:
 *
 * - a session with no open stream is closed (GOAWAY, then the connection) after the keep-alive
 *   timeout, as an idle HTTP/1.1 connection is. It is also what ends a session that nghttp2
 *   itself sent a GOAWAY (a flood of HEADERS and RST_STREAM, a protocol error): node is not told
 *   of that GOAWAY and kept the connection open for good;
 * - a session that failed, or that was closed and still holds on, is destroyed a short grace
 *   later;
 * - a stream whose request (head and body) has not all arrived within the request timeout is
 *   answered 408 and closed, as HTTP/1.1's request timeout does.
 */
import {
  constants,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import type { ServerResponse } from 'node:http'
import { CdnError } from '../errors.js'
import { sendJsonError } from './errors.js'

/** How long a session that failed or was closed may take to end by itself before it is destroyed. */
export const H2_CLOSE_GRACE_MS = 1000

/**
 * Ends `session` once it has had no open stream for `idleMs` (GOAWAY, then the close), and
 * destroys it H2_CLOSE_GRACE_MS after it failed or was so closed, whatever it still holds.
 */
export function boundSession(session: ServerHttp2Session, idleMs: number): void {
  let open = 0
  let idle: NodeJS.Timeout | undefined
  let grace: NodeJS.Timeout | undefined
  const destroyLater = (): void => {
    if (grace !== undefined || session.destroyed) return
    grace = setTimeout(() => session.destroy(), H2_CLOSE_GRACE_MS)
    grace.unref()
  }
  const arm = (): void => {
    idle = setTimeout(() => {
      idle = undefined
      // GOAWAY (NO_ERROR): a request already on its way is refused, and the client retries it.
      if (!session.closed) session.close()
      destroyLater()
    }, idleMs)
    idle.unref()
  }
  session.on('stream', (stream: ServerHttp2Stream) => {
    open++
    clearTimeout(idle)
    stream.once('close', () => {
      if (--open === 0 && !session.closed && !session.destroyed) arm()
    })
  })
  // node destroys a session that failed; this is the bound if it does not get that far.
  session.on('error', destroyLater)
  session.once('close', () => {
    clearTimeout(idle)
    clearTimeout(grace)
  })
  arm()
}

/**
 * Gives the request on `req`'s stream `ms` to arrive whole (its END_STREAM), from its HEADERS:
 * then it is answered 408 (CDN_ERR_REQUEST_TIMEOUT) unless its answer has begun, and the stream
 * is closed. A request without a body arrived whole with its HEADERS and gets no timer.
 */
export function streamRequestTimeout(req: Http2ServerRequest, res: Http2ServerResponse, ms: number): void {
  const stream = req.stream
  if (stream.endAfterHeaders) return
  const timer = setTimeout(() => expire(stream, res), ms)
  timer.unref()
  stream.once('close', () => clearTimeout(timer))
}

function expire(stream: ServerHttp2Stream, res: Http2ServerResponse): void {
  if (stream.destroyed || stream.state.remoteClose === 1) return
  if (!res.headersSent) {
    sendJsonError(
      res as unknown as ServerResponse,
      new CdnError('CDN_ERR_REQUEST_TIMEOUT', 'the request took too long to arrive'),
    )
    // RST_STREAM (NO_ERROR) once the 408 is out: the client stops sending (RFC 9113 §8.1).
    stream.close(constants.NGHTTP2_NO_ERROR)
  } else stream.close(res.writableFinished ? constants.NGHTTP2_NO_ERROR : constants.NGHTTP2_CANCEL)
  // A stream whose session can no longer send (nghttp2 ended it) is not waited for.
  const t = setTimeout(() => stream.destroy(), H2_CLOSE_GRACE_MS)
  t.unref()
  stream.once('close', () => clearTimeout(t))
}
