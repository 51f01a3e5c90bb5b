/**
 * The absolute-form of a request target (RFC 9112 §3.2.2), taken in origin-form: shared by the
 * edge's server, the origin (fastify's rewriteUrl) and the HTTPS roles' plain-HTTP redirect.
 */
import type { IncomingMessage } from 'node:http'

/**
 * RFC 9112 §3.2.2: a server MUST accept the absolute-form (`GET http://edge.example/vod/a/x HTTP/1.1`)
 * and then use its authority as the request's host, ignoring any Host field. The request goes on
 * in origin-form, the authority as its Host: what is served depends only on the path, as ever
 * (only configured upstreams are asked: the edge is no proxy), and the authority is checked as a
 * Host is. Anything else that is not origin-form (`*`, `//x`, another scheme, userinfo) is left
 * as it is, for the origin-form check to refuse.
 */
export function originForm(req: IncomingMessage): void {
  const url = req.url
  if (url === undefined || url.charCodeAt(0) === 47) return
  const m = /^https?:\/\/([^/?#@]+)([/?][^#]*)?$/i.exec(url)
  if (!m) return
  const path = m[2] ?? '/'
  req.url = path.startsWith('?') ? `/${path}` : path
  req.headers.host = m[1]!
}
