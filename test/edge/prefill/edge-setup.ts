/** Helpers for prefill tests on a real edge in front of a real origin. */
import { readdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import type { JobView } from '../../../edge/prefill/model.js'
import { type EdgeTestOptions, startEdge, type TestEdge } from '../../helpers/edge.js'
import { ingestedStore, type StartedOrigin, startOrigin } from '../../helpers/origin.js'
import { listenLoopback } from '../../helpers/loopback.js'
import { until } from '../../helpers/wait.js'

export const TOKEN = 'prefill-test-token'

export async function setup(t: Test, titles: string[]): Promise<StartedOrigin> {
  const store = await ingestedStore(t, { titles: titles.map((id) => ({ id, seconds: 10 })) })
  return startOrigin(t, { store })
}

export function edge(t: Test, origin: StartedOrigin, over: Partial<EdgeTestOptions> = {}): Promise<TestEdge> {
  return startEdge(t, { upstream: origin.url, adminToken: TOKEN, ...over })
}

export interface Gate {
  url: string
  /** Segment GETs answered 503 while closed. */
  refused(): number
  /** Lets every later request through. */
  open(): void
}

/**
 * A gate in front of the origin, so a test can stop a job at a known point without timing:
 * after `closeAfter` segment (.m4s) GETs it answers 503 to every further one until `open()`,
 * so the job pauses to retry (with the edge's retry delay) right there. Everything else
 * (playlists, the plan's HEADs) passes.
 */
export async function gate(t: Test, origin: StartedOrigin, closeAfter: number): Promise<Gate> {
  let passed = 0
  let refused = 0
  let open = false
  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url?.endsWith('.m4s') && !open) {
      if (passed >= closeAfter) {
        refused++
        res.writeHead(503, { 'content-length': '0' }).end()
        return
      }
      passed++
    }
    try {
      const up = await request(origin.url + req.url, { method: req.method === 'HEAD' ? 'HEAD' : 'GET' })
      const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _t, ...headers } = up.headers
      res.writeHead(up.statusCode, headers)
      for await (const chunk of up.body) res.write(chunk)
      res.end()
    } catch {
      res.destroy()
    }
  })
  return {
    url: await listenLoopback(t, server),
    refused: () => refused,
    open: () => {
      open = true
    },
  }
}

/** GET requests for /vod objects the origin answered, from its own metrics. */
export async function originGets(origin: StartedOrigin): Promise<number> {
  const text = await origin.app.metrics.registry.metrics()
  let n = 0
  for (const line of text.split('\n'))
    if (
      line.startsWith('cdn_origin_requests_total{') &&
      line.includes('route="/vod') &&
      line.includes('method="GET"')
    )
      n += Number(line.split(' ').pop())
  return n
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are read loosely in assertions
export type Json = Record<string, any>

export async function admin(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  token: string | null = TOKEN,
): Promise<{ status: number; json: Json }> {
  const res = await request(base + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  const text = await res.body.text()
  return { status: res.statusCode, json: text ? (JSON.parse(text) as Json) : {} }
}

/** Polls a job's view until `done(view)` (default: a final state). */
export async function waitJob(
  base: string,
  id: string,
  done: (v: JobView) => boolean = (v) => ['completed', 'failed', 'cancelled'].includes(v.state),
): Promise<JobView> {
  let v: JobView | undefined
  await until(async () => {
    v = (await admin(base, 'GET', `/admin/prefill/${id}`)).json as unknown as JobView
    return done(v)
  }, 20)
  return v!
}

/** Every servable object of a title in the origin's store, as request paths (master excluded). */
export async function storeObjects(store: string, title: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${rel}/${e.name}`)
      else if (/\.(m3u8|mp4|m4s)$/.test(e.name) && rel.split('/').length === 3)
        out.push(`/vod/${title}${rel}/${e.name}`)
    }
  }
  await walk(join(store, 'titles', title), '')
  return out.sort()
}

export async function get(base: string, path: string) {
  const res = await request(base + path)
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, cache: String(res.headers['x-cache'] ?? ''), body }
}
