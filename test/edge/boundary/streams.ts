/**
 * Helpers for the in-flight budget tests: an upstream that streams large bodies at the pace
 * its reader takes them (counting what it wrote and how each response ended), a raw client
 * that sends one request and never reads, and waits on the edge's budget events.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Test } from 'tap'
import type { InflightBudget } from '../../../edge/inflight-budget.js'
import { IMMUTABLE } from '../upstream-server.js'

const CHUNK = Buffer.alloc(64 * 1024, 0x5a)

export interface StreamUpstream {
  url: string
  /** Requests seen, by path. */
  requests: Map<string, number>
  /** Body bytes written so far over every response. */
  written: number
  /** Resolves when the (first) response for `path` ends: finished (every byte written) or cut. */
  ended(path: string): Promise<'finished' | 'cut'>
  /** Holds the answers for `path` until `release()` (to let clients coalesce first). */
  hold(path: string): { release: () => void }
}

/** `sizes`: body length per path; answered with Content-Length, streamed with backpressure. */
export async function streamUpstream(t: Test, sizes: Record<string, number>): Promise<StreamUpstream> {
  const endings = new Map<
    string,
    { promise: Promise<'finished' | 'cut'>; settle: (v: 'finished' | 'cut') => void }
  >()
  const ending = (path: string) => {
    let e = endings.get(path)
    if (!e) {
      let settle!: (v: 'finished' | 'cut') => void
      const promise = new Promise<'finished' | 'cut'>((r) => (settle = r))
      e = { promise, settle }
      endings.set(path, e)
    }
    return e
  }
  const gates = new Map<string, Promise<void>>()
  const up: StreamUpstream = {
    url: '',
    requests: new Map(),
    written: 0,
    ended: (path) => ending(path).promise,
    hold: (path) => {
      let release!: () => void
      gates.set(path, new Promise<void>((r) => (release = r)))
      return { release }
    },
  }
  const stream = async (res: ServerResponse, size: number): Promise<void> => {
    const closed = once(res, 'close')
    let left = size
    while (left > 0 && !res.destroyed) {
      const n = Math.min(left, CHUNK.length)
      left -= n
      up.written += n
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n)))
        await Promise.race([once(res, 'drain'), closed])
    }
    if (!res.destroyed) res.end()
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? ''
    up.requests.set(path, (up.requests.get(path) ?? 0) + 1)
    const size = sizes[path]
    if (size === undefined) {
      res.writeHead(404).end()
      return
    }
    const e = ending(path)
    res.once('close', () => e.settle(res.writableFinished ? 'finished' : 'cut'))
    void (gates.get(path) ?? Promise.resolve()).then(() => {
      res.writeHead(200, { 'content-length': String(size), 'cache-control': IMMUTABLE })
      void stream(res, size)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  up.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return up
}

/** A client that sends `request` and never reads the answer (closed on teardown). */
export async function nonReader(t: Test, base: string, request: string): Promise<Socket> {
  const { port } = new URL(base)
  const s = connect({ port: Number(port), host: '127.0.0.1' })
  await once(s, 'connect')
  s.pause()
  s.on('error', () => undefined)
  s.write(request)
  t.teardown(() => s.destroy())
  return s
}

export function get(path: string, method = 'GET'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: edge\r\n\r\n`
}

/** Resolves once nothing is held in the budget. */
export async function budgetIdle(budget: InflightBudget): Promise<void> {
  while (budget.bytes !== 0) await once(budget, 'release')
}
