/**
 * The one JSON error writer: sendJsonError for raw node responses, jsonErrorHandler,
 * jsonNotFoundHandler and jsonFrameworkErrors for the fastify apps of every node, all rendering
 * the body through errorBody, fastify's own refusals first mapped to the catalogue
 * (fastifyRefusal). The body is the error's code and message, never an internal code, address
 * or path.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { CdnError, errorBody } from '../errors.js'

/**
 * Writes the error to a raw response; `extra` headers go beside the standard ones (a 503's
 * `retryAfter` also in Retry-After, as jsonErrorHandler). Returns the status sent.
 */
export function sendJsonError(
  res: ServerResponse,
  err: unknown,
  extra: Record<string, string> = {},
  head = false,
): number {
  const { status, body } = errorBody(err)
  const json = JSON.stringify(body)
  const retryAfter = body.error.retryAfter
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    'cache-control': 'no-store',
    ...(status === 503 && typeof retryAfter === 'number' ? { 'retry-after': String(retryAfter) } : {}),
    ...extra,
  })
  res.end(head ? undefined : json)
  return status
}

/**
 * The fastify error handler of every node: the errorBody JSON, never stored by a cache
 * (cache-control: no-store), with a 503's `retryAfter` also in Retry-After. A 5xx is logged
 * with the request's logger, but a 503: that is a node refusing work it cannot take now
 * (overloaded, no healthy edge to offer), not a failure.
 */
export function jsonErrorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = errorBody(fastifyRefusal(err, req))
  if (status >= 500 && status !== 503) req.log.error({ err }, 'request failed')
  const retryAfter = body.error.retryAfter
  if (status === 503 && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
  return reply.code(status).header('cache-control', 'no-store').send(body)
}

/**
 * The fastify not-found handler of every node: a CDN_ERR_NOT_FOUND through the error handler,
 * naming the method and path (not the query, which may carry a token).
 */
export function jsonNotFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.send(noRoute(req))
}

/** The error of a request no route takes (jsonNotFoundHandler), for an error handler to send itself. */
export function noRoute(req: FastifyRequest): CdnError {
  return new CdnError('CDN_ERR_NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`)
}

/**
 * Whether `err` is fastify's own 404: a method its router does not know at all (`FOO`, which only
 * HTTP/2 carries this far: node's HTTP/1.1 parser refuses it) skips the not-found handler, and
 * fastify sends FST_ERR_NOT_FOUND to the error handler instead. jsonErrorHandler answers it as
 * the not-found handler does (it was `Not Found` with fastify's code as the cause).
 */
export function fastifyNoRoute(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'FST_ERR_NOT_FOUND'
}

/**
 * What fastify itself refuses, as an error of the catalogue: the body names our code and a
 * message of ours, never fastify's code (`FST_ERR_*`, which errorBody sent as the `cause`).
 * A body its content-type parsers do not take is 415 CDN_ERR_UNSUPPORTED_MEDIA_TYPE, one that
 * fails the route's schema CDN_ERR_BAD_BODY with the validation's message (a query or header
 * CDN_ERR_BAD_REQUEST), bad or empty JSON CDN_ERR_BAD_BODY, one over the body limit 413
 * CDN_ERR_BODY_TOO_LARGE; fastify's own 404 is the not-found handler's (fastifyNoRoute); a path
 * fastify cannot route (frameworkErrors) CDN_ERR_BAD_PATH. Anything else is returned as it is.
 */
export function fastifyRefusal(err: unknown, req: FastifyRequest): unknown {
  const e = err as Partial<FastifyError> | null
  switch (e?.code) {
    case 'FST_ERR_NOT_FOUND':
      return noRoute(req)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CdnError(
        'CDN_ERR_UNSUPPORTED_MEDIA_TYPE',
        `unsupported media type ${mediaType(req.headers['content-type'])}: bodies here are application/json`,
      )
    case 'FST_ERR_VALIDATION':
      return new CdnError(
        e.validationContext === 'body' ? 'CDN_ERR_BAD_BODY' : 'CDN_ERR_BAD_REQUEST',
        e.message ?? 'the request does not match its schema',
      )
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CdnError('CDN_ERR_BAD_BODY', 'body is not valid JSON')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CdnError('CDN_ERR_BAD_BODY', 'body is empty, but its content-type is JSON')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CdnError('CDN_ERR_BODY_TOO_LARGE', 'request body too large')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CdnError('CDN_ERR_BAD_REQUEST', 'request body size did not match Content-Length')
    case 'FST_ERR_BAD_URL':
      return new CdnError('CDN_ERR_BAD_PATH', 'malformed path: it does not percent-decode')
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new CdnError('CDN_ERR_BAD_PATH', 'path segment too long', { status: 414 })
    default:
      return err
  }
}

/** A Content-Type's media type, for a message: without parameters, bounded, `none` when absent. */
function mediaType(header: string | undefined): string {
  const type = (header ?? '').split(';')[0]!.trim()
  if (!type) return 'none'
  return JSON.stringify(type.length > 64 ? `${type.slice(0, 64)}...` : type)
}

/**
 * fastify's frameworkErrors of every node: what fastify refuses before any route runs, which it
 * would otherwise answer with a body of its own (`{"error":"Bad Request","code":"FST_ERR_BAD_URL"}`),
 * goes through the error handler with a code of the catalogue (fastifyRefusal): a path that
 * does not percent-decode (`/vod/%ff/...`) is CDN_ERR_BAD_PATH, a path parameter over fastify's
 * maxParamLength the same with 414.
 */
export function jsonFrameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  jsonErrorHandler(err, req, reply)
}
