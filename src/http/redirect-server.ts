/**
 * The plain-HTTP listener `--http-redirect` puts beside a role's HTTPS one: every request is
 * answered with a 308 to the same path over HTTPS (a player following it keeps its method).
 *
 * Where to: with a canonical public HTTPS URL (the edge's `--public-url`), always there, whatever
 * the request said; otherwise to the request's own host on the public HTTPS port. That host is
 * checked as the main listener checks it (host.ts: one Host field, a plain name or address, a
 * port up to 65535), and only an origin-form target is redirected, so a Location never carries
 * what a client made up beyond its host name: two Host fields, `Host: x:99999`, `OPTIONS *` or
 * `//x` get 400 (`OPTIONS *` made `https://host:port*`). A request node cannot parse gets the
 * JSON 400 (431, 408) of the other listeners.
 */
import { createServer, type Server as HttpServer } from 'node:http'
import { CdnError } from '../errors.js'
import { sendJsonError } from './errors.js'
import { MAX_HEAD_BYTES } from './h2-limits.js'
import { oneValidHost } from './host.js'
import { answerClientError, refuseConnect, trackRequest } from './one-answer.js'
import { originForm } from './origin-form.js'

export interface RedirectTarget {
  /** The canonical HTTPS URL clients reach the role at (redirectBase): every redirect goes there. */
  base?: string | undefined
  /**
   * Without `base`: the port clients reach HTTPS on (the public one: a cluster worker's own
   * server listens on a private path). Undefined when unknown: the request gets 400.
   */
  httpsPort(): number | undefined
}

/**
 * The base of redirects from a role's public URL: an https URL without query or fragment, as
 * `https://cdn.example` or `https://cdn.example/edge-1` (its path, trailing slash dropped, goes
 * before the request's). Anything else (an http URL, which would redirect to itself) is no base.
 */
export function redirectBase(publicUrl: string | undefined): string | undefined {
  if (publicUrl === undefined) return undefined
  let u: URL
  try {
    u = new URL(publicUrl)
  } catch {
    return undefined
  }
  if (u.protocol !== 'https:' || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '')
    return undefined
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`
}

export function createRedirectServer(to: RedirectTarget): HttpServer {
  const server = createServer({ maxHeaderSize: MAX_HEAD_BYTES }, (req, res) => {
    // A request node cannot parse is answered after the redirects pipelined before it.
    trackRequest(req, res)
    // An absolute-form target's authority is the host, its path the target (RFC 9112 §3.2.2).
    originForm(req)
    const url = req.url ?? ''
    if (!oneValidHost(req)) {
      const err = new CdnError('CDN_ERR_BAD_REQUEST', 'a request needs exactly one valid Host header')
      return void sendJsonError(res, err, { connection: 'close' }, req.method === 'HEAD')
    }
    if (url.charCodeAt(0) !== 47 || url.startsWith('//')) {
      const err = new CdnError('CDN_ERR_BAD_PATH', 'request target must be an origin-form path')
      return void sendJsonError(res, err, {}, req.method === 'HEAD')
    }
    const location = to.base !== undefined ? to.base + url : sameHost(req.headers.host, to.httpsPort(), url)
    if (location === undefined) {
      const err = new CdnError('CDN_ERR_BAD_REQUEST', 'no host to redirect to')
      return void sendJsonError(res, err, {}, req.method === 'HEAD')
    }
    res.writeHead(308, { location, 'content-length': '0', 'cache-control': 'no-store' })
    res.end()
  })
  // The JSON error of every listener, not node's bare `400 Bad Request` (src/http/one-answer.ts).
  server.on('clientError', answerClientError)
  refuseConnect(server)
  return server
}

/** `url` over HTTPS on the request's host (checked by oneValidHost) and `port`. */
function sameHost(host: string | undefined, port: number | undefined, url: string): string | undefined {
  if (host === undefined || port === undefined) return undefined
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!
  return `https://${name}${port === 443 ? '' : `:${port}`}${url}`
}
