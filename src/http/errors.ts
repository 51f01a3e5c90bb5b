/**
 * The one JSON error writer: sendJsonError for raw node responses, jsonErrorHandler and
 * jsonNotFoundHandler for the fastify apps of every node, all rendering the body through
 * errorBody. The body is the error's code and message, never an internal address or path.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
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
  const { status, body } = errorBody(err)
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
  return reply.send(new CdnError('CDN_ERR_NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`))
}
