/**
 * Browser libraries the pages use, served from our own node_modules (never an outside CDN,
 * so the pages work offline and on a closed network): hls.js for the player; d3-geo (with
 * d3-array, which it needs), topojson-client and Natural Earth's world-atlas for the fleet
 * map. Plus the favicon, so a page load makes no 404.
 */
import { createReadStream, existsSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { CdnError } from '../src/errors.js'

const JS = 'application/javascript; charset=utf-8'

/** URL under /assets/ → [package, file in the package, content type]. */
const VENDOR: Record<string, [string, string, string]> = {
  'hls.js': ['hls.js', 'dist/hls.min.js', JS],
  'd3-array.js': ['d3-array', 'dist/d3-array.min.js', JS],
  'd3-geo.js': ['d3-geo', 'dist/d3-geo.min.js', JS],
  'topojson-client.js': ['topojson-client', 'dist/topojson-client.min.js', JS],
  'countries-110m.json': ['world-atlas', 'countries-110m.json', 'application/json'],
}

/** A package's directory: hoisted, or nested under the package that needs it. */
function packageDir(root: string, name: string): string | undefined {
  for (const dir of [
    join(root, 'node_modules', name),
    join(root, 'node_modules', 'd3-geo', 'node_modules', name),
  ])
    if (existsSync(dir)) return dir
  return undefined
}

export function vendorRoutes(app: FastifyInstance, root: string, publicDir: string): void {
  for (const [name, [pkg, file, type]] of Object.entries(VENDOR)) {
    const dir = packageDir(root, pkg)
    const path = dir && join(dir, file)
    app.get(`/assets/${name}`, (_req, reply) => {
      if (!path || !existsSync(path)) throw new CdnError('CDN_ERR_NOT_FOUND', `${pkg} is not installed`)
      return reply
        .header('content-type', type)
        .header('cache-control', 'public, max-age=3600')
        .send(createReadStream(path))
    })
  }
  app.get('/favicon.ico', (_req, reply) =>
    reply
      .header('content-type', 'image/svg+xml')
      .header('cache-control', 'public, max-age=86400')
      .send(createReadStream(join(publicDir, 'favicon.svg'))),
  )
}
