/**
 * A cluster's /metrics: one exposition for the host, made of the processes' registries. Every
 * series the edge registers has one source here (SERIES), so that the host's numbers are what
 * one process serving the same clients would count:
 *
 * - `workers`: client-facing. The workers serve the clients; the primary serves only its workers,
 *   and sees each of their misses (and prefetches) again as a request of its own, so its copy of
 *   these series counts internal hops and is left out.
 * - `primary`: upstream-facing and the primary's own parts (prefill, the ops fan-out). A worker's
 *   "upstream" is the primary's private socket: its copy is left out.
 * - `host`: what every process holds or does for itself (tiers, disk reads and errors, bytes in
 *   flight and their budget, CPU and memory): added up with the metric's own aggregator (a sum,
 *   or the worst process for the event-loop delay).
 *
 * A series not listed is summed; test/edge/cluster-host.test.ts fails when the edge registers
 * one that is not listed, so each new series gets a decision.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'

export type Metric = MetricObjectWithValues<MetricValue<string>>

export type SeriesSource = 'workers' | 'primary' | 'host'

export const SERIES: Readonly<Record<string, SeriesSource>> = {
  // Client-facing (edge/metrics.ts, edge/miss/metrics.ts).
  cdn_edge_requests_total: 'workers',
  cdn_edge_bytes_served_total: 'workers',
  cdn_edge_active_connections: 'workers',
  cdn_edge_connections_refused_total: 'workers',
  cdn_edge_requests_by_protocol_total: 'workers',
  cdn_edge_tls_handshakes_total: 'workers',
  cdn_edge_client_write_stalls_total: 'workers',
  cdn_edge_slow_clients_total: 'workers',
  cdn_edge_coalesced_waiters_total: 'workers',
  cdn_edge_hit_for_miss_total: 'workers',
  cdn_edge_slices_total: 'workers',
  cdn_edge_misses_total: 'workers',
  cdn_edge_steered_requests_total: 'workers',
  cdn_edge_prefetches_total: 'workers',
  cdn_edge_prefetch_upstream_bytes_total: 'workers',
  cdn_edge_cmcd_requests_total: 'workers',
  // Upstream-facing, and the primary's own parts (edge/metrics.ts, edge/prefill/metrics.ts).
  cdn_edge_upstream_fetches_total: 'primary',
  cdn_edge_upstream_fetch_seconds: 'primary',
  cdn_edge_upstream_inflight: 'primary',
  cdn_edge_upstream_up: 'primary',
  cdn_edge_upstream_down_total: 'primary',
  cdn_edge_upstream_resumes_total: 'primary',
  cdn_edge_ops_refreshes_total: 'primary',
  cdn_edge_disk_effective_bytes: 'primary',
  cdn_prefill_bytes_total: 'primary',
  cdn_prefill_objects_total: 'primary',
  cdn_prefill_jobs: 'primary',
  cdn_prefill_title_seconds: 'primary',
  // Each process's own: the memory tier is the workers', the disk tier the primary's; a refusal
  // for the in-flight budget is counted by the process that refused, once.
  cdn_edge_evictions_total: 'host',
  cdn_edge_disk_errors_total: 'host',
  cdn_edge_cache_bytes: 'host',
  cdn_edge_cache_objects: 'host',
  cdn_edge_inflight_bytes: 'host',
  cdn_edge_body_pool_bytes: 'host',
  cdn_edge_inflight_budget_bytes: 'host',
  cdn_edge_inflight_refused_total: 'host',
  cdn_edge_disk_reads_total: 'host',
  cdn_edge_event_loop_delay_seconds: 'host',
}

/** Where the host exposition takes `name` from (the default metrics, cdn_edge_process_* and cdn_edge_nodejs_*, are host-wide). */
export function seriesSource(name: string): SeriesSource {
  return SERIES[name] ?? 'host'
}

/** A worker's registry as JSON (sent over IPC to the primary). */
export function metricsJson(registry: Registry): Promise<Metric[]> {
  return registry.getMetricsAsJSON() as Promise<Metric[]>
}

/** The host exposition: the primary's registry and each worker's (as JSON; worker-views.ts). */
export async function hostMetrics(primary: Registry, workers: readonly Metric[][]): Promise<string> {
  const own = (await metricsJson(primary)).filter((m) => seriesSource(m.name) !== 'workers')
  const theirs = workers.map((list) => list.filter((m) => seriesSource(m.name) !== 'primary'))
  return AggregatorRegistry.aggregate([own, ...theirs]).metrics()
}

/**
 * `into` plus the counters (and histograms) of `from`, series by series: what workers that
 * exited had counted, kept so that the host's counters never go back (worker-views.ts). Gauges
 * are left out: a worker gone holds nothing.
 */
export function addCounters(into: readonly Metric[], from: readonly Metric[]): Metric[] {
  const out = new Map<string, { metric: Metric; series: Map<string, MetricValue<string>> }>()
  for (const m of [...into, ...from]) {
    // A string at run time ('counter'), whatever prom-client's typings say (a numeric enum).
    const type = m.type as unknown as string
    if (type !== 'counter' && type !== 'histogram') continue
    let have = out.get(m.name)
    if (!have) out.set(m.name, (have = { metric: { ...m, values: [] }, series: new Map() }))
    for (const v of m.values) {
      const id = seriesId(v)
      const same = have.series.get(id)
      if (same) same.value += v.value
      else have.series.set(id, { ...v, labels: { ...v.labels } })
    }
  }
  return [...out.values()].map(({ metric, series }) => ({ ...metric, values: [...series.values()] }))
}

/** One series of a metric: its sample name (a histogram's _bucket, _sum, _count) and labels. */
function seriesId(v: MetricValue<string> & { metricName?: string }): string {
  const labels = Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `${v.metricName ?? ''} ${JSON.stringify(labels)}`
}
