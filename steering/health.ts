/**
 * The health loop: polls every edge's /status (the contract in src/http/status.ts) with
 * undici on an interval, each request bounded by a timeout, and publishes an immutable
 * view after each round. Decisions read the latest view and never wait for the loop; a
 * round never overlaps the next, and an edge that accepts and never answers costs one
 * timeout, not a stuck loop.
 *
 * Fail-static: if a round takes every edge out at once (two or more that were in rotation
 * all fail together, which looks like steering's own network trouble rather than the
 * fleet's), decisions keep using the last known-good view, flagged, until any edge answers
 * again. Edges leaving one by one do not trigger it: the last one going is a real outage.
 */
import { Agent, type Dispatcher, request } from 'undici'
import type { Clock } from '../src/clock.js'
import { readBounded } from '../src/http/bounded-body.js'
import type { EdgeStatus } from '../src/http/status.js'
import { applyCheck, type CheckResult, type EdgeHealth, type HealthRules, isUsable } from './health-state.js'
import type { FleetIndex } from './fleet-index.js'
import { FleetState, type Member, type Upsert } from './fleet-state.js'
import type { EdgeConfig } from './registry.js'
import type { EdgeInput } from './select.js'

export interface HealthOptions extends HealthRules {
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Checks in flight at once (a fleet of thousands is polled in waves). */
  readonly concurrency: number
  /** A /status document larger than this is refused. */
  readonly maxStatusBytes: number
  /** PEM CA certificates trusted for https edges instead of the system's. */
  readonly ca?: readonly string[] | undefined
}

export interface HealthLogger {
  info(obj: Record<string, unknown>, msg: string): void
  warn(obj: Record<string, unknown>, msg: string): void
}

export interface HealthView {
  /** One entry per fleet edge, in fleet order (as `HealthMonitor.edges`); built when first read. */
  readonly edges: readonly EdgeInput[]
  /**
   * The edges by their slot in `index` (undefined for a free slot), as select() reads them: one
   * array kept up to date in place as edges change (each flip of usability is `touch`ed in the
   * index, so cached candidate lists follow); fail-static writes the last known-good usability.
   */
  readonly bySlot: readonly (EdgeInput | undefined)[]
  /** The spatial index decisions walk (shared, updated in place as edges join and leave). */
  readonly index: FleetIndex
  /** The live health of every edge, fleet order; built when first read. */
  readonly health: readonly EdgeHealth[]
  /** One edge's live health, by id (no list built). */
  healthOf(id: string): EdgeHealth | undefined
  /** One edge as decisions see it (fail-static's usability included), by id (no list built). */
  edgeOf(id: string): EdgeInput | undefined
  /** True while decisions come from the last known-good view. */
  readonly failStatic: boolean
  /** Wall-clock ms since fail-static started, or null. */
  readonly failStaticSince: number | null
  readonly usableCount: number
  readonly rounds: number
}

/** Where decisions read the latest view: the health loop, or the steering simulation. */
export interface ViewSource {
  readonly view: HealthView
}

export interface HealthHooks {
  onCheck?(edgeId: string, result: CheckResult): void
  onView?(view: HealthView): void
}

/** A view over the fleet state: what decisions read at one moment (lists built when read). */
class View implements HealthView {
  readonly failStatic: boolean
  readonly failStaticSince: number | null
  readonly usableCount: number
  readonly rounds: number
  readonly bySlot: readonly (EdgeInput | undefined)[]
  readonly index: FleetIndex

  constructor(private readonly state: FleetState) {
    const f = state.fields
    this.failStatic = f.failStatic
    this.failStaticSince = f.failStaticSince
    this.usableCount = f.usableCount
    this.rounds = f.rounds
    this.bySlot = state.bySlot
    this.index = state.index
  }

  get edges(): readonly EdgeInput[] {
    return this.state.edges()
  }

  get health(): readonly EdgeHealth[] {
    return this.state.health()
  }

  healthOf(id: string): EdgeHealth | undefined {
    return this.state.healthOf(id)
  }

  edgeOf(id: string): EdgeInput | undefined {
    return this.state.inputOf(id)
  }
}

/** The view decisions read over a fleet state at this moment (what the health loop publishes). */
export function viewOf(state: FleetState): HealthView {
  return new View(state)
}

function validStatus(doc: unknown): doc is EdgeStatus {
  const d = doc as Partial<EdgeStatus> | null
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.egressBytesPerSec === 'number' &&
    Number.isFinite(d.egressBytesPerSec) &&
    d.egressBytesPerSec >= 0 &&
    (d.titlesComplete === undefined || Array.isArray(d.titlesComplete))
  )
}

/**
 * The bookkeeping of one health round, without its I/O: `results[i]` is the check of
 * `round[i]` (the members when the round started; one that left meanwhile is skipped).
 * Applies each check (health-state.ts), logs each change, and settles the round: live
 * usability, or fail-static's last known-good one when every edge looks down at once.
 * It costs the members in `round` (the fleet's counts are kept as health changes), so a
 * round may check part of the fleet: an edge left out keeps its health as it was.
 * The health loop calls it after its checks; the steering simulation (bench/steering-sim)
 * calls it with the checks it makes up, so both run the same rules.
 */
export function applyRound(
  fleet: FleetState,
  round: readonly Member[],
  results: readonly CheckResult[],
  now: number,
  rules: HealthRules,
  log: HealthLogger,
  hooks: HealthHooks = {},
): void {
  const wasUsable = fleet.liveUsableCount
  let droppedTogether = 0
  round.forEach((m, i) => {
    if (!fleet.has(m)) return
    const edge = m.config
    const result = results[i]!
    hooks.onCheck?.(edge.id, result)
    const prev = m.health
    const { next: h, change } = applyCheck(prev, result, edge.capacityBytesPerSec, rules, now)
    if (change) {
      if (isUsable(prev) && h.state === 'down') droppedTogether++
      const fields = { event: 'edge-state', edge: edge.id, url: edge.url, ...change, load: h.load }
      if (isUsable(h)) log.info(fields, `edge ${edge.id} ${change.from} → ${change.to}`)
      else log.warn(fields, `edge ${edge.id} ${change.from} → ${change.to}: ${change.why}`)
    }
    fleet.setHealth(m, h)
  })
  const usable = fleet.liveUsableCount
  const allDown = fleet.allDown
  const { failStatic, failStaticSince, rounds: before } = fleet.fields
  const rounds = before + 1
  if (usable > 0) {
    if (failStatic)
      log.info({ event: 'fail-static', active: false, usable }, 'fail-static over: edges answer again')
    fleet.settle(false, null, rounds, true)
  } else if (failStatic && allDown && fleet.hasGood) {
    fleet.settle(true, failStaticSince, rounds, false)
  } else if (allDown && fleet.hasGood && droppedTogether >= 2 && wasUsable === droppedTogether) {
    log.warn(
      { event: 'fail-static', active: true, dropped: droppedTogether },
      'every edge looks down at once: serving from the last known-good view',
    )
    fleet.settle(true, now, rounds, false)
  } else fleet.settle(false, null, rounds, false)
}

/** A body read whole as JSON, at most `max` bytes (the rest is not read): the document, or what is wrong. */
async function boundedJson(
  body: Dispatcher.ResponseData['body'],
  max: number,
): Promise<{ doc: unknown } | { problem: 'too large' | 'not JSON' }> {
  const bytes = await readBounded(body, max)
  if (!bytes) return { problem: 'too large' }
  try {
    return { doc: JSON.parse(bytes.toString('utf8')) }
  } catch {
    return { problem: 'not JSON' }
  }
}

/**
 * Whether a 503 body is the edge's connection-cap refusal (edge/http/client-limits.ts: JSON
 * `{"error":{"code":"CDN_ERR_OVERLOADED",...}}`); read up to a few KiB, else dropped.
 */
async function refusedAsFull(body: Dispatcher.ResponseData['body']): Promise<boolean> {
  const read = await boundedJson(body, 4096)
  return (
    'doc' in read && (read.doc as { error?: { code?: unknown } } | null)?.error?.code === 'CDN_ERR_OVERLOADED'
  )
}

export class HealthMonitor implements ViewSource {
  private readonly fleet = new FleetState()
  private current: HealthView
  private timer: NodeJS.Timeout | null = null
  private round: Promise<void> | null = null
  private stopped = false
  private readonly agent: Agent
  private readonly inflight = new Set<AbortController>()

  constructor(
    registry: { readonly edges: readonly EdgeConfig[] },
    private readonly options: HealthOptions,
    private readonly clock: Clock,
    private readonly log: HealthLogger,
    private readonly hooks: HealthHooks = {},
  ) {
    this.fleet.setAll(registry.edges)
    this.current = new View(this.fleet)
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs, ...(options.ca ? { ca: [...options.ca] } : {}) },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: 2,
      keepAliveTimeout: Math.max(1000, options.intervalMs * 2),
    })
  }

  /** The view decisions use: live, or the last known-good one while fail-static. */
  get view(): HealthView {
    return this.current
  }

  /** The live health of every edge (for /edges), whatever fail-static says; fleet order. */
  get edges(): readonly EdgeHealth[] {
    return this.fleet.health()
  }

  /** Edges in the fleet. */
  get size(): number {
    return this.fleet.size
  }

  /** The fleet as it stands (file and registry merged), in the order of `edges`. */
  get configs(): readonly EdgeConfig[] {
    return this.fleet.configs()
  }

  /**
   * Makes the fleet this list: edges not in it leave (out of the index), new ones join
   * (unchecked, so not yet in rotation: the next round decides), changed ones keep their
   * health and move in the index only if their place changed, except that one at a new URL
   * starts over, unchecked, as a new edge does. Decisions see the change at
   * once; no index is rebuilt. Returns how many joined, left and changed.
   */
  setEdges(edges: readonly EdgeConfig[]): { joined: number; left: number; changed: number } {
    const change = this.fleet.setAll(edges)
    if (change.joined + change.left + change.changed) this.publish()
    return change
  }

  /** One edge joins or changes (a registry put): O(1) plus its move in the index. */
  upsert(edge: EdgeConfig): Upsert {
    const r = this.fleet.upsert(edge)
    if (r !== 'same') this.publish()
    return r
  }

  /** One edge leaves (a registry delete); false when it was not in the fleet. */
  remove(id: string): boolean {
    const r = this.fleet.remove(id)
    if (r) this.publish()
    return r
  }

  private publish(): void {
    this.current = new View(this.fleet)
    this.hooks.onView?.(this.current)
  }

  /** Runs a first round now, then one every interval after the previous one ends. */
  async start(): Promise<void> {
    await this.checkNow()
    this.schedule()
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.checkNow().then(
        () => this.schedule(),
        (err: unknown) => {
          this.log.warn({ event: 'health-round-error', err }, 'health round failed')
          this.schedule()
        },
      )
    }, this.options.intervalMs)
    this.timer.unref?.()
  }

  /** One round over every edge; joins the round in progress if there is one. */
  checkNow(): Promise<void> {
    if (this.stopped) return Promise.resolve()
    if (!this.round) this.round = this.runRound().finally(() => (this.round = null))
    return this.round
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const c of this.inflight) c.abort()
    await this.round?.catch(() => undefined)
    await this.agent.close()
  }

  private async runRound(): Promise<void> {
    // The members at the start of the round; one that leaves meanwhile has its result dropped.
    const round = this.fleet.list()
    const results: CheckResult[] = new Array(round.length)
    let next = 0
    const worker = async () => {
      while (next < round.length && !this.stopped) {
        const i = next++
        results[i] = await this.check(round[i]!.config)
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, round.length) }, worker))
    if (this.stopped) return
    applyRound(this.fleet, round, results, this.clock.now(), this.options, this.log, this.hooks)
    this.publish()
  }

  private async check(edge: EdgeConfig): Promise<CheckResult> {
    const started = this.clock.monotonic()
    const took = () => Math.round((this.clock.monotonic() - started) * 10) / 10
    const ac = new AbortController()
    this.inflight.add(ac)
    const timer = setTimeout(() => ac.abort(), this.options.timeoutMs)
    try {
      const res = await request(`${edge.url}/status`, {
        dispatcher: this.agent,
        signal: ac.signal,
        headers: { accept: 'application/json', 'user-agent': 'cdn-steering' },
      })
      if (res.statusCode !== 200) {
        if (res.statusCode === 503 && (await refusedAsFull(res.body)))
          return {
            ok: false,
            kind: 'full',
            message: '/status answered 503 CDN_ERR_OVERLOADED (too many connections)',
            latencyMs: took(),
          }
        await res.body.dump()
        return { ok: false, kind: 'http', message: `/status answered ${res.statusCode}`, latencyMs: took() }
      }
      const read = await boundedJson(res.body, this.options.maxStatusBytes)
      if ('problem' in read) {
        const message = read.problem === 'too large' ? 'status document too large' : 'status is not JSON'
        return { ok: false, kind: 'bad-status', message, latencyMs: took() }
      }
      const doc = read.doc
      if (!validStatus(doc))
        return { ok: false, kind: 'bad-status', message: 'status lacks egressBytesPerSec', latencyMs: took() }
      return { ok: true, status: doc, latencyMs: took() }
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string }
      if (ac.signal.aborted || /TIMEOUT/.test(e.code ?? '') || e.name === 'AbortError')
        return {
          ok: false,
          kind: 'timeout',
          message: `no answer within ${this.options.timeoutMs} ms`,
          latencyMs: took(),
        }
      if (e.code === 'ECONNREFUSED')
        return { ok: false, kind: 'refused', message: 'connection refused', latencyMs: took() }
      return { ok: false, kind: 'error', message: e.code ?? e.name ?? 'error', latencyMs: took() }
    } finally {
      clearTimeout(timer)
      this.inflight.delete(ac)
    }
  }
}
