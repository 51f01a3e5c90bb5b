/**
 * Full TLS handshakes per second: every request on a new connection that offers no session to
 * resume (node's TLS client resumes only when given a session, and none is given), HTTP/1.1 with
 * `Connection: close`. wrk and h2load both resume TLS sessions when they reconnect, so they
 * cannot measure this. Each of `threads` child processes runs `connections / threads` loops of
 * connect, GET, read to the close; every answer is checked (status 200, the body as long as its
 * Content-Length says).
 *
 *   node dist/bench/lib/handshakes.js --url https://127.0.0.1:PORT/path --connections 8 --duration 3
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { finishResult, type LoadOptions, type LoadResult, type Negotiated } from './load.js'
import { percentile } from './stats.js'

const MARK = 'HANDSHAKES_JSON '

/** One child's totals. */
export interface HandshakeTotals {
  requests: number
  bytes: number
  durationS: number
  errors: number
  non2xx: number
  resumed: number
  latenciesUs: number[]
  negotiated?: Negotiated
}

interface One {
  ok: boolean
  status: number
  bytes: number
  resumed: boolean
  negotiated: Negotiated
}

/** Status and whether the body is complete, from a whole HTTP/1.1 answer read to the close. */
export function checkAnswer(raw: Buffer): { status: number; complete: boolean } {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return { status: 0, complete: false }
  const head = raw.subarray(0, end).toString('latin1')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]
  return { status, complete: length !== undefined && raw.length - end - 4 === Number(length) }
}

/** One new connection, one GET, read until the server closes. */
export function oneRequest(url: URL, timeoutMs = 5000): Promise<One> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    })
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timeout')))
    const negotiated: { -readonly [K in keyof Negotiated]: Negotiated[K] } = {
      protocol: '',
      cipher: '',
      keyExchange: '',
      alpn: '',
    }
    let resumed = false
    socket.once('secureConnect', () => {
      // Read now: after the close the socket no longer says.
      const cipher = socket.getCipher()
      const key = socket.getEphemeralKeyInfo() as { name?: string; size?: number } | null
      negotiated.protocol = socket.getProtocol() ?? ''
      negotiated.cipher = cipher.standardName ?? cipher.name
      negotiated.keyExchange = key?.name ? `${key.name} ${key.size ?? ''} bits` : ''
      negotiated.alpn = socket.alpnProtocol || ''
      resumed = socket.isSessionReused()
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`,
      )
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    let failed = false
    socket.once('error', () => (failed = true))
    socket.once('close', () => {
      const raw = Buffer.concat(chunks)
      const { status, complete } = checkAnswer(raw)
      resolve({ ok: !failed && complete, status, bytes: raw.length, resumed, negotiated })
    })
  })
}

/** `connections` loops of new-connection requests for `durationS` seconds, in this process. */
export async function handshakeLoops(
  url: URL,
  connections: number,
  durationS: number,
): Promise<HandshakeTotals> {
  const t: HandshakeTotals = {
    requests: 0,
    bytes: 0,
    durationS: 0,
    errors: 0,
    non2xx: 0,
    resumed: 0,
    latenciesUs: [],
  }
  const t0 = performance.now()
  const deadline = t0 + durationS * 1000
  const loop = async () => {
    while (performance.now() < deadline) {
      const start = performance.now()
      const r = await oneRequest(url)
      if (!r.ok) {
        t.errors++
        continue
      }
      if (r.status < 200 || r.status > 299) t.non2xx++
      t.requests++
      t.bytes += r.bytes
      if (r.resumed) t.resumed++
      t.negotiated ??= r.negotiated
      t.latenciesUs.push(Math.round((performance.now() - start) * 1000))
    }
  }
  await Promise.all(Array.from({ length: connections }, loop))
  t.durationS = (performance.now() - t0) / 1000
  return t
}

/** Runs the loops in `threads` child processes and adds their totals up. */
export async function runHandshakes(opts: LoadOptions): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(opts.threads ?? 2, opts.connections))
  const script = fileURLToPath(import.meta.url)
  const per = (i: number) => Math.floor(opts.connections / threads) + (i < opts.connections % threads ? 1 : 0)
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, i) =>
      child(script, [
        '--url',
        opts.url,
        '--connections',
        String(per(i)),
        '--duration',
        String(opts.durationS),
      ]),
    ),
  )
  const lat = parts.flatMap((p) => p.latenciesUs)
  return finishResult({
    generator: 'handshakes',
    url: opts.url,
    connections: opts.connections,
    durationS: Math.max(...parts.map((p) => p.durationS)),
    requests: parts.reduce((n, p) => n + p.requests, 0),
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    p50Ms: percentile(lat, 50) / 1000,
    p99Ms: percentile(lat, 99) / 1000,
    errors: parts.reduce((n, p) => n + p.errors, 0),
    non2xx: parts.reduce((n, p) => n + p.non2xx, 0),
    resumed: parts.reduce((n, p) => n + p.resumed, 0),
    ...(parts[0]?.negotiated ? { negotiated: parts[0].negotiated } : {}),
  })
}

function child(script: string, args: string[]): Promise<HandshakeTotals> {
  return new Promise((resolve, reject) => {
    // execArgv: a runner under a TypeScript loader (the tests) starts its children under it too.
    const proc = spawn(process.execPath, [...process.execArgv, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')))
    proc.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')))
    proc.once('error', reject)
    proc.once('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(MARK))
      if (code !== 0 || !line) reject(new Error(`handshake client exited with ${code}: ${err.slice(-2000)}`))
      else resolve(JSON.parse(line.slice(MARK.length)) as HandshakeTotals)
    })
  })
}

async function main() {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, connections: { type: 'string' }, duration: { type: 'string' } },
  })
  const t = await handshakeLoops(new URL(values.url!), Number(values.connections), Number(values.duration))
  process.stdout.write(`${MARK}${JSON.stringify(t)}\n`)
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) void main()
