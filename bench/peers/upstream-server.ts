/**
 * The upstream both caches fetch from during the peer benchmark, run as its own process:
 *
 * - serves the objects found under --root (loaded into memory at start) with immutable
 *   caching headers, and proxies every other path to --origin (our `cdn origin`) when given;
 * - counts the requests that reach it, per path, so the runner can prove that every measured
 *   request was a cache hit (the count must not move) and count upstream fetches in a stampede;
 * - waits --delay-ms before answering (changeable at run time), which makes the 200 ms origin
 *   of the stampede without touching origin/.
 *
 * Control: GET /__bench/stats → {"requests": N, "byPath": {...}}; POST /__bench/delay?ms=200.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'

const MAX_PATHS = 10_000

const TYPES: Record<string, string> = {
  m3u8: 'application/vnd.apple.mpegurl',
  m4s: 'video/iso.segment',
  mp4: 'video/mp4',
  ts: 'video/mp2t',
}

interface Held {
  readonly body: Buffer
  readonly headers: Record<string, string>
}

function loadRoot(root: string): Map<string, Held> {
  const out = new Map<string, Held>()
  const lastModified = new Date(0).toUTCString()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name)
      if (statSync(p).isDirectory()) walk(p)
      else {
        const body = readFileSync(p)
        const ext = name.slice(name.lastIndexOf('.') + 1)
        out.set(`/${relative(root, p)}`, {
          body,
          headers: {
            'content-type': TYPES[ext] ?? 'application/octet-stream',
            'content-length': String(body.length),
            'cache-control': 'public, max-age=31536000, immutable',
            etag: `"${body.length.toString(16)}-${out.size}"`,
            'last-modified': lastModified,
          },
        })
      }
    }
  }
  walk(root)
  return out
}

function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      root: { type: 'string' },
      origin: { type: 'string' },
      'delay-ms': { type: 'string', default: '0' },
    },
  })
  const held = values.root ? loadRoot(values.root) : new Map<string, Held>()
  const origin = values.origin ? new URL(values.origin) : undefined
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  let delayMs = Number(values['delay-ms'])
  let requests = 0
  const byPath = new Map<string, number>()

  const serve = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const pathname = path.split('?')[0]!
    const h = held.get(pathname)
    if (h) {
      res.writeHead(200, h.headers)
      res.end(req.method === 'HEAD' ? undefined : h.body)
      return
    }
    if (!origin) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    const up = request(
      {
        host: origin.hostname,
        port: origin.port,
        path,
        method: req.method,
        agent,
        headers: { accept: '*/*' },
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
      },
    )
    up.once('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
      res.end(`upstream error: ${err.message}\n`)
    })
    up.end()
  }

  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    if (path.startsWith('/__bench/')) {
      const u = new URL(path, 'http://x')
      if (u.pathname === '/__bench/delay' && req.method === 'POST')
        delayMs = Number(u.searchParams.get('ms') ?? 0)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ requests, delayMs, byPath: Object.fromEntries(byPath) }))
      return
    }
    requests++
    if (byPath.has(path) || byPath.size < MAX_PATHS) byPath.set(path, (byPath.get(path) ?? 0) + 1)
    if (delayMs > 0) setTimeout(() => serve(req, res, path), delayMs)
    else serve(req, res, path)
  })
  server.keepAliveTimeout = 60_000
  server.listen(Number(values.port), '127.0.0.1', () => {
    const addr = server.address()
    process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : ''}\n`)
  })
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => server.close(() => process.exit(0)))
  // A runner killed with SIGKILL cannot stop its children: notice being orphaned and leave.
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref()
}

main()
