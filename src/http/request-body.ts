/**
 * One answer per request: a server that answers a request without reading its body (a GET that
 * carries one, a 405) must still let node's parser read that body before it answers. Answered
 * at once, a malformed body (a bad chunk, an unknown Transfer-Encoding) then gets a second
 * answer, node's 400, and a front proxy that reuses the connection reads that 400 as the answer
 * to its next request.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'

/** Whether a request carries a body (from its head; the body may still be arriving). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Reads and drops the body of `req`, then calls `then`. A body node cannot parse never calls
 * it: node's parser answers that request (400) and closes the connection, and that is its
 * one answer. The time a body may take is bounded by the server's request timeout.
 */
export function discardBody(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded) return then()
  // The failure is node's to answer; without a listener an aborted request is not an error.
  req.on('error', () => undefined)
  req.once('end', then)
  req.resume()
}
