/** Helpers for prefill tests on a real edge in front of a real origin. */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { request } from 'undici'
import type { JobView } from '../../../edge/prefill/model.js'
import { type EdgeTestOptions, startEdge, type TestEdge } from '../../helpers/edge.js'
import { ingestedStore, type StartedOrigin, startOrigin } from '../../helpers/origin.js'

export const TOKEN = 'prefill-test-token'

export async function setup(t: Test, titles: string[]): Promise<StartedOrigin> {
  const store = await ingestedStore(t, { titles: titles.map((id) => ({ id, seconds: 10 })) })
  return startOrigin(t, { store })
}

export function edge(t: Test, origin: StartedOrigin, over: Partial<EdgeTestOptions> = {}): Promise<TestEdge> {
  return startEdge(t, { upstream: origin.url, adminToken: TOKEN, ...over })
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

/** Polls a job until `done(view)` (default: a final state), bounded at 60 s. */
export async function waitJob(
  base: string,
  id: string,
  done: (v: JobView) => boolean = (v) => ['completed', 'failed', 'cancelled'].includes(v.state),
  onPoll?: (v: JobView) => void,
): Promise<JobView> {
  const deadline = performance.now() + 60_000
  for (;;) {
    const { json } = await admin(base, 'GET', `/admin/prefill/${id}`)
    const v = json as unknown as JobView
    onPoll?.(v)
    if (done(v)) return v
    if (performance.now() > deadline) throw new Error(`job ${id} still ${v.state}`)
    await sleep(20)
  }
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
