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
 *   answered 408 and closed, as HTTP/1.1's request timeout does;
 * - at most H2_MAX_CONCURRENT_STREAMS streams open at once per session, and request heads up to
 *   MAX_HEAD_BYTES (its SETTINGS): node advertises 2^32-1 for both, so a client could hold
 *   any number of streams, each with its buffers, and send heads HTTP/1.1 refuses (431).
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

/** Streams one HTTP/2 session may have open at once (nginx: 128, h2o: 100). */
export const H2_MAX_CONCURRENT_STREAMS = 100
/** The largest request head on every listener: HTTP/1.1's maxHeaderSize, HTTP/2's header list. */
export const MAX_HEAD_BYTES = 16 * 1024
/** How long a session that failed or was closed may take to end by itself before it is destroyed. */
export const H2_CLOSE_GRACE_MS = 1000

/**
 * The SETTINGS a server session advertises and holds its client to. A stream past the limit is
 * refused (RST_STREAM REFUSED_STREAM; node ends a session that goes on opening them), and a head
 * past the size is refused before any handler sees it (RST_STREAM ENHANCE_YOUR_CALM) once the
 * client has acknowledged the SETTINGS; before that, headTooLarge answers it.
 */
export function h2Settings(maxConcurrentStreams = H2_MAX_CONCURRENT_STREAMS): {
  maxConcurrentStreams: number
  maxHeaderListSize: number
} {
  return { maxConcurrentStreams, maxHeaderListSize: MAX_HEAD_BYTES }
}

/**
 * Whether an HTTP/2 request's head is past MAX_HEAD_BYTES, counted as HTTP/2 counts a header
 * list (each field's name and value, plus 32: RFC 9113 §6.5.2). nghttp2 holds a stream to the
 * SETTINGS only once the client has acknowledged them, so the requests a client sends at once
 * with its preface meet this check instead, and get HTTP/1.1's 431.
 */
export function headTooLarge(req: Http2ServerRequest): boolean {
  const raw = req.rawHeaders
  let size = 0
  for (let i = 0; i < raw.length; i += 2) size += raw[i]!.length + raw[i + 1]!.length + 32
  return size > MAX_HEAD_BYTES
}

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
  if (stream.destroyed || requestEnded(stream)) return
  if (!res.headersSent)
    refuseStream(res, new CdnError('CDN_ERR_REQUEST_TIMEOUT', 'the request took too long to arrive'))
  else stream.close(res.writableFinished ? constants.NGHTTP2_NO_ERROR : constants.NGHTTP2_CANCEL)
  // A stream whose session can no longer send (nghttp2 ended it) is not waited for.
  const t = setTimeout(() => stream.destroy(), H2_CLOSE_GRACE_MS)
  t.unref()
  stream.once('close', () => clearTimeout(t))
}

/**
 * Answers an HTTP/2 request with `err` (the JSON error body) and, when the client is still
 * sending its body, closes the stream once the whole answer, END_STREAM included, is out
 * (RST_STREAM NO_ERROR, RFC 9113 §8.1): node leaves such a stream open, half-closed, for as long
 * as the client likes. A request that had ended gets the answer alone.
 */
export function refuseStream(
  res: Http2ServerResponse,
  err: CdnError,
  extra: Record<string, string> = {},
): void {
  const stream = res.stream
  sendJsonError(res as unknown as ServerResponse, err, extra, res.req.method === 'HEAD')
  if (stream.destroyed || requestEnded(stream)) return
  // After the answer's END_STREAM has gone out (as node itself closes a stream it never read):
  // closed before, the answer would end without one, which a client takes as a failed request.
  const close = (): void =>
    void setImmediate(() => stream.destroyed || stream.close(constants.NGHTTP2_NO_ERROR))
  if (stream.writableFinished) close()
  else stream.once('finish', close)
}

/**
 * Whether the client has sent all of its request: END_STREAM on its HEADERS (nghttp2 marks the
 * remote side closed only after the handler has run) or since. A stream closed before its answer
 * ended the answer has no END_STREAM, which a strict client takes as a failed request.
 */
function requestEnded(stream: ServerHttp2Stream): boolean {
  return stream.endAfterHeaders || stream.state.remoteClose === 1
}
