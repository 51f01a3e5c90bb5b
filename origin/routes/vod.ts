/**
 * GET/HEAD /vod/...: the store as HTTP. The raw request path (never a decoded one) must be
 * one of the contract's shapes (parseVodPath) before anything touches the disk, so `..`,
 * `%2e%2e`, `%2f`, NULs and absolute paths cannot name a file outside the store.
 * OPTIONS is the CORS preflight and any other method a 405 (one fastify routes nothing for too:
 * unroutedMethod); every answer, errors included, carries the CORS headers, as the edge's do, so
 * a player on another origin can read why.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import { CdnError } from '../../src/errors.js'
import { jsonErrorHandler, noRoute } from '../../src/http/errors.js'
import {
  CACHE_IMMUTABLE,
  CACHE_MASTER,
  CORS_ALLOW_ORIGIN,
  CORS_EXPOSE_HEADERS,
  CORS_PREFLIGHT,
  contentTypeFor,
  parseVodPath,
} from '../../src/http/paths.js'
import { contentRangeOf, decide } from '../../src/http/respond.js'
import type { OriginMetrics } from '../metrics.js'
import type { OriginStore } from '../store/store.js'

export interface VodRouteDeps {
  store: OriginStore
  metrics: OriginMetrics
}

/** Why a path was refused: 400 for what is malformed on its face, 404 for a well-formed miss. */
function refuse(rawPath: string): never {
  const decoded = (() => {
    try {
      return decodeURIComponent(rawPath)
    } catch {
      return undefined
    }
  })()
  if (
    decoded === undefined ||
    /%|\.\.|\0|\\|\/\//.test(rawPath) ||
    decoded.includes('\0') ||
    decoded.includes('..')
  )
    throw new CdnError('CDN_ERR_BAD_PATH', 'malformed path')
  throw new CdnError('CDN_ERR_NOT_FOUND', 'no such object')
}

async function serve(req: FastifyRequest, reply: FastifyReply, deps: VodRouteDeps): Promise<unknown> {
  const raw = req.raw.url ?? ''
  const q = raw.indexOf('?')
  const rawPath = q === -1 ? raw : raw.slice(0, q)
  const path = parseVodPath(rawPath)
  if (!path) refuse(rawPath)
  const obj = await deps.store.open(path)
  if (!obj) throw new CdnError('CDN_ERR_NOT_FOUND', 'no such object')
  const isMaster = path.kind === 'master'
  const lastModified = obj.lastModified.toUTCString()
  const etag = obj.etag
  const size = obj.size
  reply.header('Cache-Control', isMaster ? CACHE_MASTER : CACHE_IMMUTABLE)
  reply.header('ETag', etag)
  reply.header('Last-Modified', lastModified)
  reply.header('Accept-Ranges', 'bytes')
  reply.header('Content-Type', contentTypeFor(obj.name))

  const d = decide(req.headers, 200, size, { etag, lastModified })
  const range = contentRangeOf(d, size)
  if (range !== undefined) reply.header('Content-Range', range)
  switch (d.kind) {
    case 'not-modified':
      return reply.code(304).send()
    case 'precondition-failed':
      throw new CdnError('CDN_ERR_PRECONDITION_FAILED', 'precondition failed')
    case 'unsatisfiable':
      throw new CdnError('CDN_ERR_RANGE_NOT_SATISFIABLE', `range not satisfiable for ${size} bytes`)
    case 'partial':
      reply.code(206)
  }
  const start = d.kind === 'partial' ? d.start : 0
  const end = d.kind === 'partial' ? d.end : size - 1
  const length = end - start + 1
  reply.header('Content-Length', String(length))
  if (req.method === 'HEAD' || length === 0) return reply.send()
  const body = await obj.read(start, end).catch((err: unknown) => {
    // The error's answer describes no representation of the object.
    for (const h of ['etag', 'last-modified', 'content-range', 'accept-ranges']) reply.removeHeader(h)
    throw err
  })
  if (Buffer.isBuffer(body)) {
    deps.metrics.bytesSent(body.length)
    return reply.send(body)
  }
  body.on('data', (chunk: Buffer) => deps.metrics.bytesSent(chunk.length))
  return reply.send(body)
}

/**
 * The CORS fields of every /vod answer, set before anything can fail, so the error answers
 * (400, 404, 405, 412, 416, and a path fastify refuses: app.ts) carry them too.
 */
export function vodCors(reply: FastifyReply): void {
  reply.header('access-control-allow-origin', CORS_ALLOW_ORIGIN)
  reply.header('access-control-expose-headers', CORS_EXPOSE_HEADERS)
}

async function cors(_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  vodCors(reply)
}

const ALLOW = 'GET, HEAD'
const notAllowedError = () => new CdnError('CDN_ERR_METHOD_NOT_ALLOWED', 'only GET and HEAD are served')

/** Refused before a body is read: the answer does not wait for one, nor depend on it. */
async function notAllowed(_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('allow', ALLOW)
  throw notAllowedError()
}

/**
 * The answer to a request no route takes (app.ts: the not-found handler, and the error handler
 * for fastify's own FST_ERR_NOT_FOUND): a 404, but on /vod the 405 of the methods routed below,
 * with Allow and the CORS fields. A method fastify routes nothing for (PROPFIND, MKCOL, PURGE;
 * any name, `FOO`, over HTTP/2) ends here, and got a 404 without CORS.
 */
export function unroutedMethod(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (!req.url.startsWith('/vod/')) return jsonErrorHandler(noRoute(req), req, reply)
  vodCors(reply)
  reply.header('allow', ALLOW)
  return jsonErrorHandler(notAllowedError(), req, reply)
}

export function vodRoutes(app: FastifyInstance, deps: VodRouteDeps): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/vod/*',
    exposeHeadRoute: false,
    onRequest: cors,
    handler: (req, reply) => serve(req, reply, deps),
  })
  app.route({
    method: 'OPTIONS',
    url: '/vod/*',
    onRequest: cors,
    handler: async (_req, reply) => reply.code(204).headers(CORS_PREFLIGHT).send(),
  })
  const answered = new Set(['GET', 'HEAD', 'OPTIONS'])
  app.route({
    method: app.supportedMethods.filter((m) => !answered.has(m)) as HTTPMethods[],
    url: '/vod/*',
    onRequest: [cors, notAllowed],
    handler: async () => undefined,
  })
}
