/**
 * Miss causes and prefetch in /metrics, copied from their plain counters at scrape time
 * (ledger.ts, edge/prefetch/prefetcher.ts). Every label is present from the start, at 0.
 */
import { Counter, type Registry } from 'prom-client'
import { STEER_REASONS } from '../../src/http/steered.js'
import type { Prefetcher } from '../prefetch/prefetcher.js'
import { MISS_CAUSES, type MissLedger } from './ledger.js'

const PREFETCH_RESULTS = ['started', 'used', 'late', 'wasted', 'failed', 'skipped', 'held'] as const

export function registerDemandMetrics(registry: Registry, ledger: MissLedger, prefetch: Prefetcher): void {
  const seen = new Map<string, number>()
  /** Adds the growth of a plain counter since the last scrape. */
  const sync = (c: Counter<string>, id: string, value: number, labels: Record<string, string>) => {
    const prev = seen.get(id) ?? 0
    if (value > prev) c.inc(labels, value - prev)
    seen.set(id, value)
  }
  const misses = new Counter({
    name: 'cdn_edge_misses_total',
    help: 'Requests that went upstream, by cause: content (never held here), capacity (held, evicted), freshness (stale: revalidated or refetched), health (steered here from a preferred edge that was down or overloaded), variant (the path held under another key), prefetch-late (a prefetch of it was in flight)',
    labelNames: ['cause'],
    registers: [registry],
    collect() {
      for (const c of MISS_CAUSES) sync(this, `miss:${c}`, ledger.misses[c], { cause: c })
    },
  })
  for (const c of MISS_CAUSES) misses.inc({ cause: c }, 0)
  const steered = new Counter({
    name: 'cdn_edge_steered_requests_total',
    help: "Requests served here because steering's preferred edge for the client was down or overloaded (hits and misses)",
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const r of STEER_REASONS) sync(this, `steer:${r}`, ledger.steered[r], { reason: r })
    },
  })
  for (const r of STEER_REASONS) steered.inc({ reason: r }, 0)
  const prefetches = new Counter({
    name: 'cdn_edge_prefetches_total',
    help: 'Next-segment prefetches (CMCD): started; used (asked for while held); late (asked for while in flight); wasted (evicted before asked for); failed; skipped (over the budget); held (the next object was already cached: nothing to do)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      prefetch.sweep()
      for (const r of PREFETCH_RESULTS) sync(this, `pf:${r}`, prefetch.counts[r], { result: r })
    },
  })
  for (const r of PREFETCH_RESULTS) prefetches.inc({ result: r }, 0)
  new Counter({
    name: 'cdn_edge_prefetch_upstream_bytes_total',
    help: 'Body bytes prefetches fetched from the upstream',
    registers: [registry],
    collect() {
      sync(this, 'pf:bytes', prefetch.upstreamBytes, {})
    },
  })
  const cmcd = new Counter({
    name: 'cdn_edge_cmcd_requests_total',
    help: 'Requests carrying CMCD data (query or headers), by whether it could be read (malformed data is ignored, never refused)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      sync(this, 'cmcd:valid', prefetch.cmcd.valid, { result: 'valid' })
      sync(this, 'cmcd:malformed', prefetch.cmcd.malformed, { result: 'malformed' })
    },
  })
  cmcd.inc({ result: 'valid' }, 0)
  cmcd.inc({ result: 'malformed' }, 0)
}
