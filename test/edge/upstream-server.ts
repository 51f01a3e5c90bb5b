/**
 * Small real upstream servers for edge tests (fastify on 127.0.0.1 port 0): each route is a
 * handler the test writes with exactly the headers its case needs; every request is counted.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Test } from 'tap'
import { listenLoopback } from '../helpers/loopback.js'

export interface TestUpstream {
  url: string
  app: FastifyInstance
  /** Requests per path (query included). */
  hits: Map<string, number>
  count(path: string): number
  /** Conditional headers seen, in order. */
  conditionals: { path: string; inm?: string; ims?: string }[]
}

export type Handler = (req: FastifyRequest, reply: FastifyReply) => unknown

export async function startUpstream(t: Test, routes: Record<string, Handler>): Promise<TestUpstream> {
  const app = Fastify()
  const hits = new Map<string, number>()
  const conditionals: TestUpstream['conditionals'] = []
  app.addHook('onRequest', async (req) => {
    hits.set(req.url, (hits.get(req.url) ?? 0) + 1)
    const inm = req.headers['if-none-match']
    const ims = req.headers['if-modified-since']
    if (inm || ims) conditionals.push({ path: req.url, ...(inm ? { inm } : {}), ...(ims ? { ims } : {}) })
  })
  for (const [path, handler] of Object.entries(routes)) app.get(path, handler as never)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    hits,
    conditionals,
    count: (p) => hits.get(p) ?? 0,
  }
}

export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 8)) & 0xff
  return b
}

export const IMMUTABLE = 'public, max-age=31536000, immutable'

/** Raw HTTP/1.1 exchange over TCP, for requests fetch() refuses to send. Returns the status. */
export async function rawStatus(url: string, request: string): Promise<number> {
  const { connect } = await import('node:net')
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write(request))
    let buf = ''
    s.setEncoding('latin1')
    s.on('data', (d) => {
      buf += d
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf)
      if (m) {
        s.destroy()
        resolve(Number(m[1]))
      }
    })
    s.on('error', reject)
    s.on('close', () => resolve(0))
  })
}

/** One request as an echo upstream received it. */
export interface Received {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
}

export interface Answer {
  status?: number
  headers?: Record<string, string | string[]>
  body?: string
  /** Resolves when the answer may be sent (a test holds a fetch in flight with it). */
  gate?: Promise<void>
  /** Resolves when the body may be sent: the head goes at once (a fetch held past its headers). */
  hold?: Promise<void>
}

export interface EchoUpstream {
  url: string
  /** Every request received, in order. */
  received: Received[]
  /** The requests received for one path. */
  at(path: string): Received[]
}

/**
 * A bare node:http upstream that records every request's method, target and header fields
 * exactly as they arrived (node's http, no framework in between) and answers with `answer`'s
 * result for it; the body of a request is read and dropped.
 */
export async function startEchoUpstream(t: Test, answer: (r: Received) => Answer): Promise<EchoUpstream> {
  const { createServer } = await import('node:http')
  const received: Received[] = []
  const server = createServer((req, res) => {
    const r: Received = { method: req.method!, url: req.url!, headers: { ...req.headers } }
    received.push(r)
    req.resume()
    const a = answer(r)
    void (a.gate ?? Promise.resolve()).then(() => {
      const body = a.body ?? `${r.url} body`
      res.writeHead(a.status ?? 200, { 'content-length': String(Buffer.byteLength(body)), ...a.headers })
      if (a.hold) res.flushHeaders()
      void (a.hold ?? Promise.resolve()).then(() => res.end(req.method === 'HEAD' ? undefined : body))
    })
  })
  return {
    url: await listenLoopback(t, server),
    received,
    at: (path) => received.filter((r) => r.url === path),
  }
}
