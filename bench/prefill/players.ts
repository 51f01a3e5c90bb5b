/**
 * Paced players: each fetches a segment, reads the whole body, then waits for its next slot
 * (one segment every `intervalMs`), the way a player keeps its buffer full. Latency is request
 * to last body byte. Bounded in time (durationS) and in count (one request per player per slot).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { percentile } from '../lib/stats.js'

export interface PlayersOptions {
  readonly origin: string
  readonly paths: readonly string[]
  readonly players: number
  readonly intervalMs: number
  readonly durationS: number
}

export interface PlayersResult {
  readonly requests: number
  readonly errors: number
  readonly bytes: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Response headers' X-Cache values seen, with counts (proof the hit path was measured). */
  readonly xcache: Record<string, number>
  /** Every request's latency, ms (pooled over rounds by ab.ts; not written to the results). */
  readonly latencies: number[]
}

export async function runPlayers(o: PlayersOptions): Promise<PlayersResult> {
  const pool = new Pool(o.origin, { connections: o.players })
  const latencies: number[] = []
  const xcache: Record<string, number> = {}
  let errors = 0
  let bytes = 0
  const end = performance.now() + o.durationS * 1000
  const player = async (i: number) => {
    // Spread the players' first requests over one interval.
    await sleep((o.intervalMs * i) / o.players)
    let n = i
    while (performance.now() < end) {
      const slot = performance.now() + o.intervalMs
      const t0 = performance.now()
      try {
        const res = await pool.request({ method: 'GET', path: o.paths[n++ % o.paths.length]! })
        for await (const chunk of res.body) bytes += (chunk as Buffer).length
        if (res.statusCode !== 200) errors++
        const x = String(res.headers['x-cache'] ?? 'none')
        xcache[x] = (xcache[x] ?? 0) + 1
        latencies.push(performance.now() - t0)
      } catch {
        errors++
      }
      const wait = slot - performance.now()
      if (wait > 0) await sleep(Math.min(wait, Math.max(0, end - performance.now())))
    }
  }
  await Promise.all(Array.from({ length: o.players }, (_, i) => player(i)))
  await pool.close()
  return {
    requests: latencies.length,
    errors,
    bytes,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? Math.max(...latencies) : Number.NaN,
    xcache,
    latencies,
  }
}
