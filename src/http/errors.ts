/**
 * The one JSON error writer: sendJsonError for raw node responses, jsonErrorHandler,
 * jsonNotFoundHandler and jsonFrameworkErrors for the fastify apps of every node, all rendering
 * the body through errorBody. The body is the error's code and message, never an internal
 * address or path.
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
  const { status, body } = errorBody(fastifyNoRoute(err) ? noRoute(req) : err)
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
 * fastify's frameworkErrors of every node: what fastify refuses before any route runs, which it
 * would otherwise answer with a body of its own (`{"error":"Bad Request","code":"FST_ERR_BAD_URL"}`),
 * goes through the error handler with a code of the catalogue: a path that does not
 * percent-decode (`/vod/%ff/...`) is CDN_ERR_BAD_PATH, a path parameter over fastify's
 * maxParamLength the same with 414.
 */
export function jsonFrameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const e =
    err.code === 'FST_ERR_BAD_URL'
      ? new CdnError('CDN_ERR_BAD_PATH', 'malformed path: it does not percent-decode')
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new CdnError('CDN_ERR_BAD_PATH', 'path segment too long', { status: 414 })
        : err
  jsonErrorHandler(e, req, reply)
}
