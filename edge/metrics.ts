/**
 * The edge's Prometheus metrics. The hot path only bumps plain numbers (stats.ts); they are
 * copied into prom-client at scrape time. Labels are low-cardinality by construction: cache
 * outcome, tier, result, error code. Never a URL, title or address.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { OUTCOMES, tierOf } from './cache/outcome.js'
import type { StoreStats } from './cache/store.js'
import type { InflightBudget } from './inflight-budget.js'
import type { EdgeStats } from './stats.js'
import type { SliceObserver } from './http/slicer.js'
import type { FlightObserver } from './upstream/single-flight.js'

export interface EdgeMetrics extends FlightObserver, SliceObserver {
  readonly registry: Registry
  render(): Promise<string>
  readonly contentType: string
  /** A cluster's /status or /metrics was computed afresh (every worker asked). */
  opsRefreshed(endpoint: 'status' | 'metrics'): void
  /** An upstream went down or came back (edge/upstream/client.ts health). */
  upstreamHealth(url: string, up: boolean): void
  /** Stops sampling the event loop (the app closes). */
  close(): void
}

/** Sampling interval of the event-loop delay histogram (ms): the finest delay it tells apart. */
const LOOP_RESOLUTION_MS = 10

export function createEdgeMetrics(
  stats: EdgeStats,
  storeStats: () => StoreStats,
  diskErrorsByCode: () => ReadonlyMap<string, number>,
  budget: Pick<InflightBudget, 'bytes' | 'limit' | 'stalls' | 'drops' | 'refused'>,
): EdgeMetrics {
  const registry = new Registry()
  // prom-client's names start process_ and nodejs_: cdn_edge_process_cpu_seconds_total, as the
  // origin's cdn_origin_process_* and steering's cdn_steering_process_*.
  collectDefaultMetrics({ register: registry, prefix: 'cdn_edge_' })
  const seen = new Map<string, number>()
  /** Adds the growth of a plain counter since the last scrape. */
  const sync = (c: Counter<string>, id: string, value: number, labels: Record<string, string>) => {
    const prev = seen.get(id) ?? 0
    if (value > prev) c.inc(labels, value - prev)
    seen.set(id, value)
  }
  new Counter({
    name: 'cdn_edge_requests_total',
    help: 'Requests answered, by cache result and the tier that answered',
    labelNames: ['result', 'tier'],
    registers: [registry],
    collect() {
      for (const o of OUTCOMES) sync(this, `req:${o}`, stats.requests[o], { result: o, tier: tierOf(o) })
    },
  })
  new Counter({
    name: 'cdn_edge_bytes_served_total',
    help: 'Body bytes sent to clients',
    registers: [registry],
    collect() {
      sync(this, 'bytes', stats.bytesServed, {})
    },
  })
  new Counter({
    name: 'cdn_edge_evictions_total',
    help: 'Objects evicted to stay under the byte bound, per tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      const s = storeStats()
      sync(this, 'ev:memory', s.memory?.evictions ?? 0, { tier: 'memory' })
      sync(this, 'ev:disk', s.disk?.evictions ?? 0, { tier: 'disk' })
    },
  })
  new Counter({
    name: 'cdn_edge_disk_errors_total',
    help: 'Disk tier errors (the edge keeps serving), by errno code',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      for (const [code, n] of diskErrorsByCode()) sync(this, `de:${code}`, n, { code })
    },
  })
  const tierBytes = new Gauge({
    name: 'cdn_edge_cache_bytes',
    help: 'Bytes held per tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      const s = storeStats()
      tierBytes.set({ tier: 'memory' }, s.memory?.bytes ?? 0)
      tierBytes.set({ tier: 'disk' }, s.disk?.bytes ?? 0)
    },
  })
  const tierObjects = new Gauge({
    name: 'cdn_edge_cache_objects',
    help: 'Objects held per tier',
    labelNames: ['tier'],
    registers: [registry],
    collect() {
      const s = storeStats()
      tierObjects.set({ tier: 'memory' }, s.memory?.objects ?? 0)
      tierObjects.set({ tier: 'disk' }, s.disk?.objects ?? 0)
    },
  })
  const diskEffective = new Gauge({
    name: 'cdn_edge_disk_effective_bytes',
    help: 'Bytes the disk tier may hold now: --disk-size, or less while its filesystem holds less (full disk)',
    registers: [registry],
    collect() {
      const effective = storeStats().disk?.effectiveBytes
      if (effective !== undefined) diskEffective.set(effective)
    },
  })
  const active = new Gauge({
    name: 'cdn_edge_active_connections',
    help: 'Open client connections',
    registers: [registry],
    collect() {
      active.set(stats.activeConnections)
    },
  })
  new Counter({
    name: 'cdn_edge_connections_refused_total',
    help: 'Client connections refused past --max-connections (503, Retry-After, closed)',
    registers: [registry],
    collect() {
      sync(this, 'refused', stats.connectionsRefused, {})
    },
  })
  new Counter({
    name: 'cdn_edge_requests_by_protocol_total',
    help: 'Client requests by protocol: h1 (HTTP/1.1 in the clear), https1 (HTTP/1.1 over TLS), h2',
    labelNames: ['protocol'],
    registers: [registry],
    collect() {
      for (const [p, n] of Object.entries(stats.protocols)) sync(this, `proto:${p}`, n, { protocol: p })
    },
  })
  new Counter({
    name: 'cdn_edge_tls_handshakes_total',
    help: 'TLS handshakes completed, full or resumed from a session ticket',
    labelNames: ['resumed'],
    registers: [registry],
    collect() {
      sync(this, 'tls:full', stats.tlsHandshakes.full, { resumed: 'false' })
      sync(this, 'tls:resumed', stats.tlsHandshakes.resumed, { resumed: 'true' })
    },
  })
  new Counter({
    name: 'cdn_edge_client_write_stalls_total',
    help: 'Client connections closed because their answer made no progress for --client-write-timeout',
    registers: [registry],
    collect() {
      sync(this, 'stalls', stats.clientWriteStalls, {})
    },
  })
  const inflightBytes = new Gauge({
    name: 'cdn_edge_inflight_bytes',
    help: 'Bytes held for transfers in flight (miss buffers, disk reads, relayed and streamed windows)',
    registers: [registry],
    collect() {
      inflightBytes.set(budget.bytes)
    },
  })
  const poolBytes = new Gauge({
    name: 'cdn_edge_body_pool_bytes',
    help: 'Bytes held by the pool of reusable body buffers (lent to transfers, and idle until given back to the system)',
    registers: [registry],
    collect() {
      poolBytes.set(storeStats().poolBytes ?? 0)
    },
  })
  const inflightLimit = new Gauge({
    name: 'cdn_edge_inflight_budget_bytes',
    help: 'Bound on cdn_edge_inflight_bytes (--inflight-budget)',
    registers: [registry],
    collect() {
      inflightLimit.set(budget.limit)
    },
  })
  new Counter({
    name: 'cdn_edge_slow_clients_total',
    help: 'Clients a window behind a stream not kept whole: paused its source, or dropped from a shared one',
    labelNames: ['action'],
    registers: [registry],
    collect() {
      sync(this, 'slow:paused', budget.stalls, { action: 'paused' })
      sync(this, 'slow:dropped', budget.drops, { action: 'dropped' })
    },
  })
  new Counter({
    name: 'cdn_edge_inflight_refused_total',
    help: 'Transfers refused (503) because bytes in flight stayed at their bound',
    registers: [registry],
    collect() {
      sync(this, 'refused', budget.refused, {})
    },
  })
  new Counter({
    name: 'cdn_edge_disk_reads_total',
    help: 'Disk body reads (whole bodies and streamed chunks) by where they ran: sync on the event loop (small and hot, --disk-sync-read-max) or async on the threadpool; sendfile: sends of a streamed body by sendfile(2) on the threadpool (--disk-sendfile), sendfile_loop: such sends on the event loop, made only when every page of the range is in the page cache and up to date (mincore(2))',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      const r = storeStats().diskReads
      sync(this, 'dr:sync', r?.sync ?? 0, { mode: 'sync' })
      sync(this, 'dr:async', r?.async ?? 0, { mode: 'async' })
      sync(this, 'dr:sendfile', r?.sendfile ?? 0, { mode: 'sendfile' })
      sync(this, 'dr:sendfile_loop', r?.sendfileLoop ?? 0, { mode: 'sendfile_loop' })
    },
  })
  // How late the event loop ran a timer, over the window since the last scrape (reset at each):
  // what every request waited on top of its own work, e.g. behind a synchronous disk read. The
  // histogram holds each interval between its timer's runs; the delay is what exceeds the
  // interval. After a reset its first run only starts the window (up to 10 ms after a scrape).
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loop.enable()
  const late = (ns: number) => Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1e3)
  const loopDelay = new Gauge({
    name: 'cdn_edge_event_loop_delay_seconds',
    help: 'Event-loop delay over the window since the previous scrape (reset at each), by stat: p50, p99, max; with --workers, the worst process',
    labelNames: ['stat'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      const empty = loop.count === 0
      loopDelay.set({ stat: 'p50' }, empty ? 0 : late(loop.percentile(50)))
      loopDelay.set({ stat: 'p99' }, empty ? 0 : late(loop.percentile(99)))
      loopDelay.set({ stat: 'max' }, empty ? 0 : late(loop.max))
      loop.reset()
    },
  })
  const opsRefreshes = new Counter({
    name: 'cdn_edge_ops_refreshes_total',
    help: "Times a cluster's /status or /metrics asked every worker (answers are reused for 1 s)",
    labelNames: ['endpoint'],
    registers: [registry],
  })
  const fetches = new Counter({
    name: 'cdn_edge_upstream_fetches_total',
    help: 'Upstream fetches, by result',
    labelNames: ['result'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'cdn_edge_upstream_fetch_seconds',
    help: 'Upstream fetch duration, request to last byte',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const coalesced = new Counter({
    name: 'cdn_edge_coalesced_waiters_total',
    help: 'Requests that joined an upstream fetch already in flight',
    registers: [registry],
  })
  const hitForMiss = new Counter({
    name: 'cdn_edge_hit_for_miss_total',
    help: 'Requests sent upstream alone, not collapsed, because their URL answered personally (private, no-store, Set-Cookie, Vary: *) within --hit-for-miss',
    registers: [registry],
  })
  const inflight = new Gauge({
    name: 'cdn_edge_upstream_inflight',
    help: 'Upstream fetches in flight',
    registers: [registry],
  })
  const upstreamUp = new Gauge({
    name: 'cdn_edge_upstream_up',
    help: 'Whether each upstream is up (1) or marked down after failures (0) and being probed',
    labelNames: ['upstream'],
    registers: [registry],
  })
  const slices = new Counter({
    name: 'cdn_edge_slices_total',
    help: 'Slices of sliced objects (--slice-size, --large-slice-size) by how they were had: hit, fetched, joined (a fetch in flight), revalidated (a stale slice refreshed by a 304, or served stale on an upstream error), version-changed (an ETag or length differed from the first slice, or a revalidation found a new version: the others dropped), range-ignored (the upstream answered 200 to Range)',
    labelNames: ['result'],
    registers: [registry],
  })
  const resumes = new Counter({
    name: 'cdn_edge_upstream_resumes_total',
    help: 'Upstream bodies cut after their headers and asked again from the byte reached (Range, If-Range): ok (a 206 took over), refused (the object changed or no 206), failed (no upstream answered)',
    labelNames: ['result'],
    registers: [registry],
  })
  const upstreamDowns = new Counter({
    name: 'cdn_edge_upstream_down_total',
    help: 'Times an upstream was marked down',
    labelNames: ['upstream'],
    registers: [registry],
  })
  return {
    registry,
    contentType: registry.contentType,
    upstreamHealth(url, up) {
      upstreamUp.set({ upstream: url }, up ? 1 : 0)
      if (!up) upstreamDowns.inc({ upstream: url })
    },
    render: () => registry.metrics(),
    close() {
      loop.disable()
    },
    fetchStarted() {
      inflight.inc()
    },
    fetchFinished(seconds, result) {
      inflight.dec()
      fetches.inc({ result })
      latency.observe({ result }, seconds)
    },
    coalesced() {
      coalesced.inc()
    },
    hitForMiss() {
      hitForMiss.inc()
    },
    resumed(result) {
      resumes.inc({ result })
    },
    slice(result) {
      slices.inc({ result })
    },
    opsRefreshed(endpoint) {
      opsRefreshes.inc({ endpoint })
    },
  }
}
