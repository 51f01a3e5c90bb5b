/**
 * CORS for every steering route, as the edges have it: a player on any page (not only the one
 * steering serves) asks /steer, follows /play's redirect, loads a /cs master and polls the
 * steering manifest with fetch/XHR from its own origin. Everything steering answers is public
 * (no credentials, no cookies), so any origin may read it. A preflight (OPTIONS) is answered
 * for every path with what a player sends: GET/HEAD and the headers hls.js may add.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { CORS_ALLOW_ORIGIN } from '../src/http/paths.js'

/** Headers a player may read: which edge steering chose, and when to retry a 503. */
export const STEERING_EXPOSE_HEADERS = 'X-Steering-Edge, Retry-After'
const ALLOW_HEADERS = 'Range, If-None-Match, If-Modified-Since, If-Range, Content-Type'

/** The CORS fields of every steering answer (also those of a path fastify refuses: app.ts). */
export function corsHeaders(reply: FastifyReply): void {
  reply.header('access-control-allow-origin', CORS_ALLOW_ORIGIN)
  reply.header('access-control-expose-headers', STEERING_EXPOSE_HEADERS)
}

export function steeringCors(app: FastifyInstance): void {
  // onSend: runs for every answer, error and 404 bodies included, so a player sees why.
  app.addHook('onSend', async (_req, reply, payload) => {
    corsHeaders(reply)
    return payload
  })
  app.options('*', async (_req, reply) =>
    reply
      .code(204)
      .header('access-control-allow-methods', 'GET, HEAD')
      .header('access-control-allow-headers', ALLOW_HEADERS)
      .header('access-control-max-age', '86400')
      .header('allow', 'GET, HEAD, OPTIONS')
      .send(),
  )
}
