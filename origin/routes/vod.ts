/**
 * GET/HEAD /vod/...: the store as HTTP. The raw request path (never a decoded one) must be
 * one of the contract's shapes (parseVodPath) before anything touches the disk, so `..`,
 * `%2e%2e`, `%2f`, NULs and absolute paths cannot name a file outside the store.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CdnError } from '../../src/errors.js'
import {
  CACHE_IMMUTABLE,
  CACHE_MASTER,
  CORS_ALLOW_ORIGIN,
  CORS_EXPOSE_HEADERS,
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
  reply.header('Access-Control-Allow-Origin', CORS_ALLOW_ORIGIN)
  reply.header('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS)
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
  const body = await obj.read(start, end)
  if (Buffer.isBuffer(body)) {
    deps.metrics.bytesSent(body.length)
    return reply.send(body)
  }
  body.on('data', (chunk: Buffer) => deps.metrics.bytesSent(chunk.length))
  return reply.send(body)
}

export function vodRoutes(app: FastifyInstance, deps: VodRouteDeps): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/vod/*',
    exposeHeadRoute: false,
    handler: (req, reply) => serve(req, reply, deps),
  })
}
