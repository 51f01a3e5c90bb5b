/**
 * A tiny static web server standing for "somebody else's site" in the browser test: it serves
 * the player page and its scripts (steering/public, hls.js from node_modules) on its own port,
 * so the page's origin is neither steering's nor any edge's and every request the player makes
 * to the CDN is cross-origin, as on any real site that embeds a player. Given a certificate it
 * serves HTTPS, so the page is held to the browser's mixed-content rules.
 */
import { createReadStream, existsSync, statSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { extname, join, normalize } from 'node:path'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
}

export async function startPageServer(
  root: string,
  tls?: { cert: string; key: string },
): Promise<{ url: string; close(): Promise<void> }> {
  const publicDir = join(root, 'steering', 'public')
  const files = (path: string): string | undefined => {
    if (path === '/') return join(publicDir, 'index.html')
    if (path === '/assets/hls.js') return join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js')
    if (!path.startsWith('/assets/')) return undefined
    const file = normalize(join(publicDir, path.slice('/assets/'.length)))
    return file.startsWith(`${publicDir}/`) ? file : undefined
  }
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const file = files(new URL(req.url ?? '/', 'http://x').pathname)
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    createReadStream(file).pipe(res)
  }
  const server = tls ? createHttpsServer(tls, handler) : createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
