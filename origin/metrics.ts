/**
 * The origin's Prometheus metrics, on a registry of its own (several origins can live in one
 * test process). Labels are closed sets: route patterns, status codes, job states. Never a
 * title, a URL or an address.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { JobState } from './transcode/jobs.js'

export interface OriginMetrics {
  readonly registry: Registry
  request(route: string, method: string, status: number, seconds: number): void
  bytesSent(n: number): void
  job(state: JobState, durationSec?: number): void
  setJobGauge(counts: Record<JobState, number>): void
}

export function createOriginMetrics(opts: { defaultMetrics?: boolean } = {}): OriginMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'cdn_origin_' })
  const requests = new Counter({
    name: 'cdn_origin_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'cdn_origin_request_duration_seconds',
    help: 'Time to answer a request (headers and body handed to the socket), by route pattern',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const bytes = new Counter({
    name: 'cdn_origin_bytes_sent_total',
    help: 'Body bytes of /vod responses written to clients',
    registers: [registry],
  })
  const jobs = new Counter({
    name: 'cdn_origin_ingest_jobs_total',
    help: 'Ingest jobs entering each state (queued, running, succeeded, failed, cancelled)',
    labelNames: ['state'] as const,
    registers: [registry],
  })
  const jobGauge = new Gauge({
    name: 'cdn_origin_ingest_jobs',
    help: 'Ingest jobs currently known, by state',
    labelNames: ['state'] as const,
    registers: [registry],
  })
  const durations = new Histogram({
    name: 'cdn_origin_ingest_duration_seconds',
    help: 'Wall time of finished ingest jobs, by final state',
    labelNames: ['state'] as const,
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  })
  return {
    registry,
    request(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) })
      latency.observe({ route }, seconds)
    },
    bytesSent(n) {
      bytes.inc(n)
    },
    job(state, durationSec) {
      jobs.inc({ state })
      if (durationSec !== undefined) durations.observe({ state }, durationSec)
    },
    setJobGauge(counts) {
      for (const [state, n] of Object.entries(counts)) jobGauge.set({ state }, n)
    },
  }
}
