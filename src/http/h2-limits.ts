/**
 * The bounds node's HTTP/2 server does not set by itself, for every role's HTTPS server
 * (tls-server.ts), so that HTTP/2 holds a client to what HTTP/1.1 does:
 *
 * - a session with no open stream is closed (GOAWAY, then the connection) after the keep-alive
 *   timeout, as an idle HTTP/1.1 connection is. It is also what ends a session that nghttp2
 *   itself sent a GOAWAY (a flood of HEADERS and RST_STREAM, a protocol error): node is not told
 *   of that GOAWAY and kept the connection open for good;
 * - a session that failed, or that was closed and still holds on, is destroyed a short grace
 *   later.
 */
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2'

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
