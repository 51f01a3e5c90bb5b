/** Warming the caches before the measured runs, and the stampede on a cold segment. */
import { get as httpGet } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { type StampedeSummary, stampede } from '../lib/stampede.js'
import type { BenchObject } from './content.js'
import type { Role } from './matrix.js'
import type { Server } from './servers.js'

/** The cache verdict a server puts on a response: our X-Cache, or nginx's $upstream_cache_status. */
export function cacheHeader(res: Response): string {
  return res.headers.get('x-cache') ?? res.headers.get('x-cache-status') ?? ''
}

/**
 * Requests each object until the server calls it a hit (at most `tries` times per object) and
 * returns the verdict of the last response per path, e.g. "HIT-MEM", "HIT-DISK" or "HIT".
 * A multi-process edge fills each worker's memory tier on its own, so with `workers` > 1 every
 * object is first fetched `workers` × 3 times on fresh connections (the primary deals
 * connections out round-robin), so each worker has it.
 */
export async function warm(
  server: Server,
  objects: readonly BenchObject[],
  { tries = 5, workers = 1 }: { tries?: number; workers?: number } = {},
) {
  const seen: Record<string, string> = {}
  if (workers > 1)
    for (const o of objects) for (let i = 0; i < workers * 3; i++) await freshGet(`${server.base}${o.path}`)
  for (const o of objects) {
    let verdict = ''
    for (let i = 0; i < tries; i++) {
      const res = await (server.fetch ?? fetch)(`${server.base}${o.path}`, {
        signal: AbortSignal.timeout(10_000),
      })
      const body = Buffer.from(await res.arrayBuffer())
      if (res.status !== 200 || body.length !== o.bytes)
        throw new Error(
          `${server.name}: ${o.path} answered ${res.status} with ${body.length} bytes, want ${o.bytes}`,
        )
      verdict = cacheHeader(res)
      if (i > 0 && verdict.toUpperCase().startsWith('HIT')) break
      await sleep(50) // let a cache finish writing what it just fetched
    }
    seen[o.path] = verdict
  }
  return seen
}

export interface StampedeRow {
  readonly role: Role
  readonly server: string
  readonly round: number
  readonly path: string
  readonly upstreamDelayMs: number
  /** Requests for the object that reached the (delaying) upstream. */
  readonly upstreamFetches: number
  readonly summary: StampedeSummary
}

async function control(upstream: Server, path: string, init?: RequestInit) {
  const res = await fetch(`${upstream.base}${path}`, init)
  return (await res.json()) as { requests: number; byPath: Record<string, number> }
}

export async function runStampede(
  targets: readonly { role: Role; server: Server }[],
  upstream: Server,
  cold: readonly BenchObject[],
  clients: number,
  delayMs: number,
  log: (line: string) => void,
): Promise<StampedeRow[]> {
  const rows: StampedeRow[] = []
  await control(upstream, `/__bench/delay?ms=${delayMs}`, { method: 'POST' })
  try {
    // One unmeasured stampede per server first, on its own cold object: like the warm-up run
    // before each cell, it measures the servers' steady state, not V8 compiling the miss path.
    const [first, ...measured] = cold
    for (const t of targets) {
      const { summary } = await stampede(`${t.server.base}${first!.path}`, clients)
      log(`  stampede ${t.server.name} warm-up (not measured): TTFB p50 ${summary.ttfbP50Ms.toFixed(0)} ms`)
      await sleep(200)
    }
    for (const [round, obj] of measured.entries()) {
      const order = round % 2 === 0 ? targets : [...targets].reverse()
      for (const t of order) {
        const before = (await control(upstream, '/__bench/stats')).byPath[obj.path] ?? 0
        const { requests, summary } = await stampede(`${t.server.base}${obj.path}`, clients)
        await sleep(200) // a cache may still be finishing its one fetch
        const after = (await control(upstream, '/__bench/stats')).byPath[obj.path] ?? 0
        const row: StampedeRow = {
          role: t.role,
          server: t.server.name,
          round,
          path: obj.path,
          upstreamDelayMs: delayMs,
          upstreamFetches: after - before,
          summary,
        }
        rows.push(row)
        log(
          `  stampede ${t.server.name} round ${round}: ${row.upstreamFetches} upstream fetch(es), ` +
            `${summary.ok}/${summary.clients} ok, TTFB p50 ${summary.ttfbP50Ms.toFixed(0)} ms ` +
            `max ${summary.ttfbMaxMs.toFixed(0)} ms, done p50 ${summary.doneP50Ms.toFixed(0)} ms ` +
            `max ${summary.doneMaxMs.toFixed(0)} ms, ${summary.distinctBodies} distinct bodies`,
        )
        const short = requests.filter((r) => r.status === 200 && r.bytes !== obj.bytes).length
        if (short)
          throw new Error(`${t.server.name}: ${short} stampede clients got a body of the wrong length`)
        if (summary.ok && summary.distinctBodies !== 1)
          throw new Error(`${t.server.name}: stampede clients got ${summary.distinctBodies} different bodies`)
      }
    }
  } finally {
    await control(upstream, '/__bench/delay?ms=0', { method: 'POST' })
  }
  return rows
}

/** One GET on a new connection, body drained. */
function freshGet(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false, timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve())
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)))
    req.on('error', reject)
  })
}
