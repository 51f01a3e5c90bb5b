/**
 * Steering's Prometheus metrics, on a registry of its own (never the global one, so several
 * apps in one test process do not collide). Labels are closed sets: decision outcome, edge
 * id (from the fleet file, bounded by config), check result kind, registry refusal reason.
 * Never a title or an IP.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { HealthView } from './health.js'
import type { CheckResult } from './health-state.js'
import type { LeftOutReason } from './registry-records.js'

export type DecisionKind = 'redirect' | 'list' | 'cs-master' | 'cs-steer'
export type DecisionOutcome =
  'ok' | 'fail-static' | 'no-edge' | 'overloaded' | 'bad-request' | 'upstream-error'

const LEFT_OUT_REASONS: readonly LeftOutReason[] = ['bad-record', 'full', 'duplicate-url']

/** What /metrics reads of the registry watch when scraped. */
export interface RegistryView {
  readonly leftOut: Readonly<Record<LeftOutReason, number>>
  /** Watches found deaf and replaced, since start. */
  readonly staleWatches: number
}

export class SteeringMetrics {
  readonly registry = new Registry()
  private readonly decisions: Counter<'kind' | 'outcome'>
  private readonly byEdge: Counter<'edge'>
  private readonly checks: Counter<'edge' | 'result'>
  private readonly checkLatency: Histogram<'result'>
  private readonly edgesGauge: Gauge<'state'>
  private readonly failStatic: Gauge
  private readonly load: Gauge<'edge'>
  private readonly decisionSeconds: Histogram<'kind'>
  private readonly protocols: Counter<'protocol'>
  private readonly handshakes: Counter<'resumed'>
  private readonly leftOut: Gauge<'reason'>
  private readonly staleWatches: Counter
  private staleCounted = 0

  /**
   * `defaultMetrics`: the Node process's own (cdn_steering_process_*, cdn_steering_nodejs_*), as
   * the origin's; off where several apps share a process (tests), each sampling the event loop.
   */
  constructor(edgeIds: readonly string[], opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry]
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'cdn_steering_' })
    this.decisions = new Counter({
      name: 'cdn_steering_decisions_total',
      help: 'Steering decisions by kind (redirect, list, cs-master, cs-steer) and outcome',
      labelNames: ['kind', 'outcome'],
      registers,
    })
    this.byEdge = new Counter({
      name: 'cdn_steering_decisions_by_edge_total',
      help: 'Decisions whose first choice was this edge',
      labelNames: ['edge'],
      registers,
    })
    this.checks = new Counter({
      name: 'cdn_steering_health_checks_total',
      help: 'Health checks of edge /status by result (ok, timeout, refused, error, http, bad-status, full)',
      labelNames: ['edge', 'result'],
      registers,
    })
    this.checkLatency = new Histogram({
      name: 'cdn_steering_health_check_seconds',
      help: 'Time to fetch an edge /status',
      labelNames: ['result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    })
    this.edgesGauge = new Gauge({
      name: 'cdn_steering_edges',
      help: 'Edges by state: in (taking clients), out-down, out-overloaded, unknown',
      labelNames: ['state'],
      registers,
    })
    this.failStatic = new Gauge({
      name: 'cdn_steering_fail_static',
      help: '1 while decisions use the last known-good view because every edge looks down',
      registers,
    })
    this.load = new Gauge({
      name: 'cdn_steering_edge_load',
      help: 'Last reported egress over capacity, per edge',
      labelNames: ['edge'],
      registers,
    })
    this.decisionSeconds = new Histogram({
      name: 'cdn_steering_decision_seconds',
      help: 'Time to choose (locate + select), excluding network I/O',
      labelNames: ['kind'],
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01],
      registers,
    })
    this.protocols = new Counter({
      name: 'cdn_steering_requests_by_protocol_total',
      help: 'Requests by protocol: h1 (HTTP/1.1 in the clear), https1 (HTTP/1.1 over TLS), h2',
      labelNames: ['protocol'],
      registers,
    })
    this.handshakes = new Counter({
      name: 'cdn_steering_tls_handshakes_total',
      help: 'TLS handshakes completed, full or resumed from a session ticket',
      labelNames: ['resumed'],
      registers,
    })
    this.leftOut = new Gauge({
      name: 'cdn_steering_registry_left_out',
      help: 'Fleet registry keys left out now, by reason: bad-record, full (until a record leaves room), duplicate-url',
      labelNames: ['reason'],
      registers,
    })
    this.staleWatches = new Counter({
      name: 'cdn_steering_registry_watch_stale_total',
      help: 'Fleet registry watches found missing a change by the periodic check, each replaced by a full read',
      registers,
    })
    for (const protocol of ['h1', 'https1', 'h2']) this.protocols.inc({ protocol }, 0)
    for (const resumed of ['false', 'true']) this.handshakes.inc({ resumed }, 0)
    for (const id of edgeIds) this.load.set({ edge: id }, 0)
    for (const state of ['in', 'out-down', 'out-overloaded', 'unknown']) this.edgesGauge.set({ state }, 0)
    this.failStatic.set(0)
    for (const reason of LEFT_OUT_REASONS) this.leftOut.set({ reason }, 0)
  }

  decision(kind: DecisionKind, outcome: DecisionOutcome, edgeId?: string, seconds?: number): void {
    this.decisions.inc({ kind, outcome })
    if (edgeId) this.byEdge.inc({ edge: edgeId })
    if (seconds !== undefined) this.decisionSeconds.observe({ kind }, seconds)
  }

  request(protocol: 'h1' | 'https1' | 'h2'): void {
    this.protocols.inc({ protocol })
  }

  handshake(resumed: boolean): void {
    this.handshakes.inc({ resumed: String(resumed) })
  }

  check(edgeId: string, result: CheckResult): void {
    const kind = result.ok ? 'ok' : result.kind
    this.checks.inc({ edge: edgeId, result: kind })
    this.checkLatency.observe({ result: kind }, result.latencyMs / 1000)
  }

  /**
   * The fleet gauges (edges by state, fail-static, load per edge) are read from the health
   * view when scraped, not on every change: an edge joining costs nothing here.
   */
  watch(view: () => HealthView): void {
    this.source = view
  }

  private source: (() => HealthView) | null = null

  /**
   * The registry's refused keys and its stale watches, read when scraped (without a registry:
   * every reason at 0, no stale watch).
   */
  watchRegistry(source: () => RegistryView): void {
    this.registrySource = source
  }

  private registrySource: (() => RegistryView) | null = null

  private collectFleet(): void {
    const v = this.source?.()
    if (!v) return
    const counts: Record<string, number> = { in: 0, 'out-down': 0, 'out-overloaded': 0, unknown: 0 }
    this.load.reset()
    for (const h of v.health) {
      const state =
        h.state === 'unknown'
          ? 'unknown'
          : h.state === 'down'
            ? 'out-down'
            : h.overloaded
              ? 'out-overloaded'
              : 'in'
      counts[state]!++
      this.load.set({ edge: h.id }, h.load)
    }
    for (const [state, n] of Object.entries(counts)) this.edgesGauge.set({ state }, n)
    this.failStatic.set(v.failStatic ? 1 : 0)
  }

  async render(): Promise<{ contentType: string; body: string }> {
    this.collectFleet()
    const registry = this.registrySource?.()
    if (registry) {
      for (const reason of LEFT_OUT_REASONS) this.leftOut.set({ reason }, registry.leftOut[reason])
      this.staleWatches.inc(registry.staleWatches - this.staleCounted)
      this.staleCounted = registry.staleWatches
    }
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
