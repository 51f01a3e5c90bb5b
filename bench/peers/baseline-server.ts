/**
 * Baselines for the peer table, each a bare node:http server in its own process:
 * - `memory`: every object under --root held in a Buffer with its header block built once,
 *   answered with writeHead + end: roughly the best plain Node can do on a hit;
 * - `stream`: `fs.createReadStream` per request, the naive disk read path
 *   (measured at about 0.15x of nginx on 1 MB segments).
 * They show how far a Node server is from nginx before any cache logic is added.
 */
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'

const TYPES: Record<string, string> = {
  m3u8: 'application/vnd.apple.mpegurl',
  m4s: 'video/iso.segment',
  mp4: 'video/mp4',
}

interface Entry {
  readonly file: string
  readonly body: Buffer | undefined
  readonly headers: Record<string, string>
}

function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      root: { type: 'string' },
      mode: { type: 'string', default: 'memory' },
    },
  })
  if (!values.root) throw new Error('--root is required')
  const root = values.root
  const inMemory = values.mode === 'memory'
  const entries = new Map<string, Entry>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name)
      const st = statSync(p)
      if (st.isDirectory()) {
        walk(p)
        continue
      }
      const ext = name.slice(name.lastIndexOf('.') + 1)
      entries.set(`/${relative(root, p)}`, {
        file: p,
        body: inMemory ? readFileSync(p) : undefined,
        headers: {
          'content-type': TYPES[ext] ?? 'application/octet-stream',
          'content-length': String(st.size),
          'cache-control': 'public, max-age=31536000, immutable',
        },
      })
    }
  }
  walk(root)

  const server = createServer((req, res) => {
    const q = req.url?.indexOf('?') ?? -1
    const e = entries.get(q >= 0 ? req.url!.slice(0, q) : (req.url ?? '/'))
    if (!e) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, e.headers)
    if (e.body) res.end(e.body)
    else createReadStream(e.file).pipe(res)
  })
  server.keepAliveTimeout = 60_000
  server.listen(Number(values.port), '127.0.0.1')
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => server.close(() => process.exit(0)))
  // A runner killed with SIGKILL cannot stop its children: notice being orphaned and leave.
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref()
}

main()
