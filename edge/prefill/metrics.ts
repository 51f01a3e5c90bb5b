/**
 * Prefill's Prometheus metrics. The only prefill file that imports prom-client; it registers
 * on the edge's registry when given one, else on its own. No title or URL is ever a label.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { JOB_STATES, type JobState } from './model.js'

export type ObjectResult = 'fetched' | 'held' | 'failed'

export interface PrefillMetrics {
  readonly registry: Registry
  bytes(n: number): void
  object(result: ObjectResult): void
  titleDone(result: 'complete' | 'failed' | 'cancelled' | 'purged', seconds: number): void
  jobStates(counts: Readonly<Record<JobState, number>>): void
}

export function createPrefillMetrics(registry: Registry = new Registry()): PrefillMetrics {
  const registers = [registry]
  const bytes = new Counter({
    name: 'cdn_prefill_bytes_total',
    help: 'Bytes fetched from upstream by prefill jobs',
    registers,
  })
  const objects = new Counter({
    name: 'cdn_prefill_objects_total',
    help: 'Objects handled by prefill jobs, by result (fetched, held = already cached, failed)',
    labelNames: ['result'],
    registers,
  })
  const jobs = new Gauge({
    name: 'cdn_prefill_jobs',
    help: 'Prefill jobs known to this edge, by state',
    labelNames: ['state'],
    registers,
  })
  const titleSeconds = new Histogram({
    name: 'cdn_prefill_title_seconds',
    help: 'Time to fill one title, by result',
    labelNames: ['result'],
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
    registers,
  })
  for (const state of JOB_STATES) jobs.set({ state }, 0)
  return {
    registry,
    bytes: (n) => bytes.inc(n),
    object: (result) => objects.inc({ result }),
    titleDone: (result, seconds) => titleSeconds.observe({ result }, seconds),
    jobStates: (counts) => {
      for (const state of JOB_STATES) jobs.set({ state }, counts[state] ?? 0)
    },
  }
}
