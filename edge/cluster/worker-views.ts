/**
 * What the primary last heard from each worker, for the host's /status and /metrics
 * (host-ops.ts). Two promises to whoever reads them:
 *
 * - A worker slow to answer (stopped, its event loop held) costs an answer at most
 *   OPS_DEADLINE_MS: past it, what that worker said last stands in for it. (Steering's health
 *   check gives an edge 1 s; waiting for every worker's answer, up to the 5 s a purge waits,
 *   had the whole host marked down for one stopped worker.) Its question stays asked until it
 *   answers or exits, one of each kind at a time, and its answer is kept when it comes.
 * - A host counter never goes back: a silent worker's last counts stand in for it, and those
 *   of a worker that exited are kept (added to its replacement's, which start from zero), so
 *   neither a stall nor a restart makes Prometheus see a counter reset. Its gauges go with it.
 */
import type { ChildProcess } from 'node:child_process'
import type { DemandStatus } from '../../src/http/status.js'
import { type ClientSnapshot, sumSnapshots } from '../stats.js'
import { addCounters, type Metric } from './metrics.js'
import type { WorkerStats } from './protocol.js'
import type { WorkerRpc } from './worker-rpc.js'

/** How long /status and /metrics wait for each worker's answer before using its last one. */
export const OPS_DEADLINE_MS = 250

type Kind = 'stats' | 'metrics'

interface Heard {
  stats?: WorkerStats
  metrics?: Metric[]
  /** The question of each kind still waiting for this worker's answer. */
  asking: Partial<Record<Kind, Promise<void>>>
}

export class WorkerViews {
  private readonly heard = new Map<ChildProcess, Heard>()
  /** The counters of workers that exited, added up. */
  private retiredMetrics: Metric[] = []
  private retiredClients: ClientSnapshot = sumSnapshots([])
  private retiredDemand: DemandStatus | undefined

  constructor(
    private readonly rpc: Pick<WorkerRpc, 'ask'>,
    /** The workers to ask (those listening). */
    private readonly workers: () => ChildProcess[],
    private readonly deadlineMs = OPS_DEADLINE_MS,
  ) {}

  /** Every worker's last stats (a silent one's as it last answered), and the exited ones' counts. */
  async stats(): Promise<{ workers: number; stats: WorkerStats[] }> {
    const asked = await this.refresh('stats')
    const stats = asked.flatMap((h) => (h.stats ? [h.stats] : []))
    const retired: WorkerStats = {
      clients: this.retiredClients,
      memory: undefined,
      ...(this.retiredDemand ? { demand: this.retiredDemand } : {}),
    }
    return { workers: asked.length, stats: [...stats, retired] }
  }

  /** Every worker's last registry (as JSON), and the exited ones' counters. */
  async metrics(): Promise<Metric[][]> {
    const asked = await this.refresh('metrics')
    return [...asked.flatMap((h) => (h.metrics ? [h.metrics] : [])), this.retiredMetrics]
  }

  /** A worker exited: its counters are kept, its gauges dropped. */
  exited(worker: ChildProcess): void {
    const h = this.heard.get(worker)
    this.heard.delete(worker)
    if (h?.metrics) this.retiredMetrics = addCounters(this.retiredMetrics, h.metrics)
    if (h?.stats) {
      const { requests, bytesServed } = h.stats.clients
      const counts = { ...sumSnapshots([]), requests, bytesServed }
      this.retiredClients = sumSnapshots([this.retiredClients, counts])
      if (h.stats.demand) this.retiredDemand = addCounts(this.retiredDemand, h.stats.demand)
    }
  }

  /** Asks every worker; resolves once all have answered or the deadline has passed. */
  private async refresh(kind: Kind): Promise<Heard[]> {
    const workers = this.workers()
    const heard = workers.map((w) => this.entry(w))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(workers.map((w, i) => this.ask(w, heard[i]!, kind))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.deadlineMs))),
    ])
    clearTimeout(timer)
    return heard
  }

  private ask(worker: ChildProcess, h: Heard, kind: Kind): Promise<void> {
    h.asking[kind] ??= this.rpc.ask(worker, { what: kind }, Number.POSITIVE_INFINITY).then((a) => {
      h.asking[kind] = undefined
      if (a?.stats) h.stats = a.stats
      if (a?.metrics) h.metrics = a.metrics as Metric[]
    })
    return h.asking[kind]
  }

  private entry(worker: ChildProcess): Heard {
    let h = this.heard.get(worker)
    if (!h) this.heard.set(worker, (h = { asking: {} }))
    return h
  }
}

/** `a + b`, count by count, for records of counts (nested), such as DemandStatus. */
export function addCounts<T extends object>(a: T | undefined, b: T): T {
  if (a === undefined) return structuredClone(b)
  const out: Record<string, unknown> = {}
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
    const v = x[k] ?? y[k]
    out[k] =
      typeof v === 'number'
        ? ((x[k] as number | undefined) ?? 0) + ((y[k] as number | undefined) ?? 0)
        : addCounts(x[k] as object | undefined, (y[k] ?? {}) as object)
  }
  return out as T
}
