/**
 * A cluster's /metrics: one exposition for the host, added up over the processes. The workers
 * serve the clients, so the client-facing series come from them; the primary serves only its
 * workers, so its own request, byte and connection series (internal hops) are left out, and
 * the upstream series come from the primary alone (a worker's "upstream" is the primary).
 * Everything else (tiers, disk errors, prefill, process CPU and memory) is summed.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'

type Metric = MetricObjectWithValues<MetricValue<string>>

const FROM_WORKERS = new Set([
  'cdn_edge_requests_total',
  'cdn_edge_bytes_served_total',
  'cdn_edge_active_connections',
  'cdn_edge_coalesced_waiters_total',
  'cdn_edge_hit_for_miss_total',
])
const FROM_PRIMARY = new Set([
  'cdn_edge_upstream_fetches_total',
  'cdn_edge_upstream_fetch_seconds',
  'cdn_edge_upstream_inflight',
])

/** A worker's registry as JSON (sent over IPC to the primary). */
export function metricsJson(registry: Registry): Promise<unknown[]> {
  return registry.getMetricsAsJSON()
}

export async function hostMetrics(primary: Registry, workers: readonly unknown[][]): Promise<string> {
  const own = ((await primary.getMetricsAsJSON()) as Metric[]).filter((m) => !FROM_WORKERS.has(m.name))
  const theirs = workers.map((list) => (list as Metric[]).filter((m) => !FROM_PRIMARY.has(m.name)))
  return AggregatorRegistry.aggregate([own, ...theirs]).metrics()
}
