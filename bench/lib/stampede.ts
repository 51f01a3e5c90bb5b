/**
 * A stampede client: N requests for one URL released at the same instant, each on its own
 * connection, recording time to first byte (response head) and to the last byte, plus a digest
 * of every body so a cache that hands out wrong bytes under a stampede is caught, not timed.
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { max, percentile } from './stats.js'

export interface StampedeRequest {
  readonly status: number
  readonly ttfbMs: number
  /** Time to the first body byte (a server may send the head before it has any body). */
  readonly firstBodyMs: number
  readonly doneMs: number
  readonly bytes: number
  readonly sha256: string
  readonly error?: string
}

export interface StampedeSummary {
  readonly clients: number
  readonly ok: number
  readonly ttfbP50Ms: number
  readonly ttfbMaxMs: number
  readonly firstBodyP50Ms: number
  readonly doneP50Ms: number
  readonly doneMaxMs: number
  /** How many distinct bodies the clients received (1 when all is well). */
  readonly distinctBodies: number
}

function one(url: URL, t0: number, timeoutMs: number): Promise<StampedeRequest> {
  return new Promise((resolve) => {
    const hash = createHash('sha256')
    let status = 0
    let ttfbMs = Number.NaN
    let firstBodyMs = Number.NaN
    let bytes = 0
    const finish = (error?: string) => {
      resolve({
        status,
        ttfbMs,
        firstBodyMs,
        doneMs: performance.now() - t0,
        bytes,
        sha256: hash.digest('hex'),
        ...(error ? { error } : {}),
      })
    }
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      status = res.statusCode ?? 0
      ttfbMs = performance.now() - t0
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) firstBodyMs = performance.now() - t0
        bytes += chunk.length
        hash.update(chunk)
      })
      res.once('end', () => finish())
      res.once('error', (err) => finish(err.message))
    })
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.once('error', (err) => finish(err.message))
    req.end()
  })
}

export async function stampede(url: string, clients: number, timeoutMs = 30_000) {
  const target = new URL(url)
  const t0 = performance.now()
  const requests = await Promise.all(Array.from({ length: clients }, () => one(target, t0, timeoutMs)))
  return { requests, summary: summariseStampede(requests) }
}

export function summariseStampede(requests: readonly StampedeRequest[]): StampedeSummary {
  const ok = requests.filter((r) => r.status === 200 && !r.error)
  return {
    clients: requests.length,
    ok: ok.length,
    ttfbP50Ms: percentile(
      ok.map((r) => r.ttfbMs),
      50,
    ),
    ttfbMaxMs: max(ok.map((r) => r.ttfbMs)),
    firstBodyP50Ms: percentile(
      ok.map((r) => r.firstBodyMs),
      50,
    ),
    doneP50Ms: percentile(
      ok.map((r) => r.doneMs),
      50,
    ),
    doneMaxMs: max(ok.map((r) => r.doneMs)),
    distinctBodies: new Set(ok.map((r) => r.sha256)).size,
  }
}
