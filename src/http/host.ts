/**
 * The host of a request, checked the same way on every listener and protocol (the edge's
 * request listener, the HTTPS roles' HTTP/2 streams, the plain-HTTP redirect): one Host field
 * (RFC 9112 §3.2), a plain name or address with a port up to 65535, and on HTTP/2 an
 * `:authority` held to the same rule, which a Host field sent beside it must name too
 * (RFC 9113 §8.3.1).
 */
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/

/** Host must be a plain name or address, with a port up to 65535; anything else is a Host game. */
export function validHost(host: string | undefined): boolean {
  if (host === undefined) return true
  if (!HOST_RE.test(host)) return false
  const colon = host.lastIndexOf(':')
  // A port is the digits after the last colon outside an IPv6 literal's brackets.
  return colon === -1 || colon < host.lastIndexOf(']') || Number(host.slice(colon + 1)) <= 65535
}

/**
 * Whether a request names its host once and validly: at most one Host field (node keeps the
 * first of two) that validHost accepts and, on HTTP/2, a valid `:authority` that any Host field
 * names too (case aside). An absolute-form target's authority has been taken as the Host by then
 * (origin-form.ts) and is checked as one.
 */
export function oneValidHost(req: IncomingMessage | Http2ServerRequest): boolean {
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return false
  }
  const host = req.headers.host
  const authority = req.httpVersionMajor === 2 ? req.headers[':authority'] : undefined
  if (typeof authority !== 'string') return validHost(host)
  return validHost(authority) && (host === undefined || host.toLowerCase() === authority.toLowerCase())
}

/** An HTTP/1.1 request without a Host field (RFC 9112 §3.2: answered 400); HTTP/1.0 needs none. */
export function lacksHost(req: IncomingMessage | Http2ServerRequest): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined
}
