/**
 * The steering simulation's engine: a day of sessions steered by the real steering modules,
 * in process, with simulated time.
 *
 * Every `checkIntervalSec` a health round runs through steering's own bookkeeping
 * (health.ts `applyRound`: health-state.ts hysteresis, fleet-state.ts, fail-static): each
 * edge alive answers with the /status egress its sessions make (sessions × bitrate), each
 * edge down refuses. A round checks only the edges whose answer can change what steering
 * holds: those whose sessions or liveness changed since their last check, and those still
 * on their way in or out (hysteresis counting). Any other edge would answer as it last did,
 * which leaves its load, usability and titles as they are (only its check counters and
 * times would move, which no decision reads); `everyEdge` checks them all, and the test
 * holds both ways to the same figures. Sessions starting until the next round are steered by steering's
 * `Decider` (zone lookup of the client's address, the spatial index, cached candidate lists,
 * select's ranking with bounded load) from the view that round published. A player takes the
 * first edge of the ranked list that answers (as a player holding /steer's list fails over);
 * when none does, it retries at the next round. A session stays on its edge to its end unless
 * the edge fails; then it is steered again (a move).
 *
 * When steering takes a failed edge out, the choices of the sessions in progress near it are
 * probed twice with the same loads: with the edge out (steering's view) and with it in. A
 * choice that differs and was not the failed edge is a move the failure caused beyond the
 * failed edge's own clients (minimal disruption says there are none).
 */
import { ManualClock } from '../../src/clock.js'
import type { EdgeStatus } from '../../src/http/status.js'
import { steeringConfig } from '../../steering/config.js'
import { Decider } from '../../steering/decider.js'
import { FleetState } from '../../steering/fleet-state.js'
import { parseZones } from '../../steering/geo.js'
import type { Member } from '../../steering/fleet-state.js'
import type { CheckResult, EdgeHealth } from '../../steering/health-state.js'
import { applyRound, type ViewSource, viewOf } from '../../steering/health.js'
import { distanceKm, type EdgeInput, type Ranked } from '../../steering/select.js'
import { type FailureParams, type Outage, planFailures } from './failures.js'
import { type FailureRow, Recorder, type Result } from './record.js'
import { generateSessions, HOUR, peakSessionsPerClient, type WorkloadParams } from './workload.js'
import { buildWorld, type World, type WorldParams } from './world.js'

export interface SteeringParams {
  readonly failAfter: number
  readonly recoverAfter: number
  readonly loadHigh: number
  readonly loadLow: number
  readonly bandKm: number
  readonly boundedLoadFactor: number
  readonly boundedLoadFloor: number
  readonly maxResults: number
}

export interface SimParams {
  readonly world: Omit<WorldParams, 'peakSessionsPerClient'>
  readonly workload: WorkloadParams
  readonly failures: FailureParams
  readonly steering: SteeringParams
  readonly checkIntervalSec: number
  /** Sessions in progress within this distance of a failed edge are probed when it is taken out. */
  readonly probeRadiusKm: number
  /** Load statistics are sampled every this many seconds. */
  readonly sampleSec: number
}

const QUIET = { info: () => undefined, warn: () => undefined }
const TIER = { bytes: 0, capacityBytes: 1, objects: 0 }
const ENDED = -2
const NONE = -1

function status(id: string, egress: number): EdgeStatus {
  return {
    id,
    version: 'sim',
    uptimeSec: 0,
    activeConnections: 0,
    requestsPerSec: 0,
    egressBytesPerSec: egress,
    tiers: { memory: TIER, disk: TIER },
    hitRatio: 0,
    hits: { memory: 0, disk: 0, miss: 0 },
    bytesServed: 0,
    titles: [],
    titlesComplete: [],
  }
}

export interface SimOptions {
  /** Check every edge every round, as steering's health loop does (slower; same figures). */
  readonly everyEdge?: boolean
}

/** True when another check with the same answer would change nothing decisions read. */
function settled(h: EdgeHealth, alive: boolean): boolean {
  return alive ? h.state === 'up' : h.state === 'down'
}

export function simulate(p: SimParams, options: SimOptions = {}): Result {
  const t0 = performance.now()
  const world = buildWorld({ ...p.world, peakSessionsPerClient: peakSessionsPerClient(p.workload) })
  const tzOf = (c: number) => Math.round(world.zones[world.clientZone[c]!]!.lon / 15)
  const sessions = generateSessions(p.workload, world.params.clients, tzOf)
  const outages = planFailures(p.failures, world, p.workload.hours)
  return new Simulation(p, world, sessions, outages, performance.now() - t0, options).run()
}

class Simulation {
  private readonly config
  private readonly clock = new ManualClock(Date.UTC(2026, 0, 5))
  private readonly fleet = new FleetState()
  private readonly members: Member[]
  private readonly source: { view: ViewSource['view'] }
  private readonly decider: Decider
  private readonly edgeOf = new Map<string, number>()
  private readonly titleName: string[]
  /** Ground truth: does the edge answer? */
  readonly alive: Uint8Array
  /** Sessions on each edge now. */
  readonly active: Int32Array
  /** Edges whose sessions or liveness changed since their last check. */
  private readonly touched: Uint8Array
  readonly capacity: Float64Array
  /** Each session's edge, NONE before it starts (or while it waits), ENDED after. */
  readonly sessEdge: Int32Array
  private readonly endHead: Int32Array
  private readonly endNext: Int32Array
  private pending: number[] = []
  /** Outages steering has not yet taken out. */
  private open: { o: Outage; row: FailureRow }[] = []
  private readonly waitingSince = new Map<number, number>()
  private readonly rec: Recorder
  private now = 0
  /** Sessions that ended before any edge answered them. */
  private gaveUp = 0

  constructor(
    readonly p: SimParams,
    readonly world: World,
    readonly sessions: ReturnType<typeof generateSessions>,
    private readonly outages: Outage[],
    setupMs: number,
    private readonly options: SimOptions,
  ) {
    const s = p.steering
    this.config = steeringConfig({ ...s, checkInterval: p.checkIntervalSec * 1000 })
    this.fleet.setAll(world.edges)
    this.members = this.fleet.list()
    this.source = { view: viewOf(this.fleet) }
    this.decider = new Decider(this.config, parseZones(world.zonesDoc), this.source, this.clock)
    world.edges.forEach((e, i) => this.edgeOf.set(e.id, i))
    this.titleName = Array.from({ length: p.workload.titles }, (_, i) => `title-${i}`)
    const n = world.edges.length
    this.alive = new Uint8Array(n).fill(1)
    this.active = new Int32Array(n)
    this.touched = new Uint8Array(n).fill(1)
    this.capacity = Float64Array.from(world.edges, (e) => e.capacityBytesPerSec)
    this.sessEdge = new Int32Array(sessions.count).fill(NONE)
    const rounds = this.roundOf(p.workload.hours * HOUR) + 2
    this.endHead = new Int32Array(rounds).fill(-1)
    this.endNext = new Int32Array(sessions.count).fill(-1)
    this.rec = new Recorder(p, world, setupMs, sessions.count)
  }

  private roundOf(t: number): number {
    return Math.floor((t + this.p.workload.warmupHours * HOUR) / this.p.checkIntervalSec)
  }

  run(): Result {
    const { p, sessions } = this
    const period = p.checkIntervalSec
    const warm = p.workload.warmupHours * HOUR
    const rounds = this.roundOf(p.workload.hours * HOUR)
    let next = 0
    let outage = 0
    const recovering: Outage[] = []
    for (let r = 0; r < rounds; r++) {
      this.now = r * period - warm
      if (r > 0) this.clock.advance(period * 1000)
      for (; outage < this.outages.length && this.outages[outage]!.at <= this.now; outage++) {
        const o = this.outages[outage]!
        this.fail(o)
        recovering.push(o)
      }
      for (let i = recovering.length - 1; i >= 0; i--)
        if (recovering[i]!.until <= this.now) {
          for (const e of recovering[i]!.edges) this.alive[e] = this.touched[e] = 1
          recovering.splice(i, 1)
        }
      for (let s = this.endHead[r]!; s >= 0; s = this.endNext[s]!) this.end(s)
      this.healthRound()
      const retry = this.pending
      this.pending = []
      for (const s of retry) if (this.sessEdge[s] === NONE) this.steer(s, 'retry')
      const until = this.now + period
      for (; next < sessions.count && sessions.start[sessions.order[next]!]! < until; next++) {
        const s = sessions.order[next]!
        this.endAt(s)
        this.steer(s, 'start')
      }
      if (this.now >= 0 && r % Math.max(1, Math.round(p.sampleSec / period)) === 0)
        this.rec.sample(this.now, this.alive, this.active, this.capacity, this.sessionsByTitle())
    }
    return this.rec.result(this.gaveUp + this.waitingSince.size)
  }

  /** Files a session under the first round at or after its end (and after its start's). */
  private endAt(s: number): void {
    const period = this.p.checkIntervalSec
    const warm = this.p.workload.warmupHours * HOUR
    const endRound = Math.ceil((this.sessions.end[s]! + warm) / period)
    const r = Math.max(this.roundOf(this.sessions.start[s]!) + 1, endRound)
    if (r >= this.endHead.length) return
    this.endNext[s] = this.endHead[r]!
    this.endHead[r] = s
  }

  private end(s: number): void {
    const e = this.sessEdge[s]!
    if (e >= 0) {
      this.active[e]!--
      this.touched[e] = 1
    }
    this.sessEdge[s] = ENDED
    if (this.waitingSince.delete(s)) this.gaveUp++
  }

  /** One health round through steering's own rules; records what changed. */
  private healthRound(): void {
    const round: Member[] = []
    const results: CheckResult[] = []
    const before: boolean[] = []
    const every = this.options.everyEdge === true
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i]!
      const alive = this.alive[i] === 1
      if (!every && !this.touched[i] && settled(m.health, alive)) continue
      this.touched[i] = 0
      round.push(m)
      before.push(m.health.overloaded)
      results.push(
        alive
          ? {
              ok: true,
              status: status(m.config.id, this.active[i]! * this.p.world.sessionBytesPerSec),
              latencyMs: 1,
            }
          : { ok: false, kind: 'refused', message: 'connection refused', latencyMs: 1 },
      )
    }
    applyRound(this.fleet, round, results, this.clock.now(), this.config, QUIET)
    this.source.view = viewOf(this.fleet)
    round.forEach((m, i) => {
      if (this.now >= 0 && m.health.overloaded && !before[i]) this.rec.overloadEvent(this.now)
    })
    for (const f of this.open) {
      if (f.row.detectedAfterSec !== null) continue
      if (!f.o.edges.every((e) => this.members[e]!.health.state === 'down')) continue
      f.row.detectedAfterSec = this.now - f.o.at
      const probe = this.probe(f.o.edges)
      f.row.probed = probe.probed
      f.row.probedOnFailed = probe.onFailed
      f.row.movedOthers = probe.movedOthers
    }
    this.open = this.open.filter((f) => f.row.detectedAfterSec === null)
  }

  /** Steers a session (a start, a retry, or a move off a failed edge); the player fails over down the list. */
  private steer(s: number, why: 'start' | 'retry' | 'move'): number {
    const { sessions, world } = this
    const c = sessions.client[s]!
    const zone = world.zones[world.clientZone[c]!]!
    let ranked: readonly Ranked[] = []
    this.rec.decision()
    try {
      ranked = this.decider.decide(
        { socketAddress: `${zone.prefix}.${1 + (c % 254)}`, forwardedFor: undefined, query: {} },
        this.titleName[sessions.title[s]!]!,
      ).ranked
    } catch {
      // 503: nothing in rotation; the player retries next round.
    }
    let pick = NONE
    for (const r of ranked) {
      const e = this.edgeOf.get(r.edge.id)!
      if (this.alive[e]) {
        pick = e
        break
      }
    }
    const firstFailed = ranked.length > 0 && pick !== this.edgeOf.get(ranked[0]!.edge.id)
    if (pick === NONE) {
      if (!this.waitingSince.has(s)) this.waitingSince.set(s, this.now)
      this.pending.push(s)
      return NONE
    }
    this.sessEdge[s] = pick
    this.active[pick]!++
    this.touched[pick] = 1
    const waited = this.waitingSince.get(s)
    if (waited !== undefined) {
      this.waitingSince.delete(s)
      this.rec.waited(this.now - waited)
    }
    if (this.now >= 0 && why !== 'move') {
      const site = world.edgeSite[pick]!
      const extra = distanceKm(zone, world.edges[pick]!) - zone.nearestKm
      this.rec.start(this.now, site !== zone.nearestSite, extra, this.p.steering.bandKm, firstFailed)
    }
    return pick
  }

  /** Edges stop answering: their sessions are steered again (players fail over at once). */
  private fail(o: Outage): void {
    const failed = new Set(o.edges)
    for (const e of o.edges) this.alive[e] = 0
    for (const e of o.edges) this.touched[e] = 1
    const row = this.rec.failure(o, this.now)
    this.open.push({ o, row })
    for (let s = 0; s < this.sessEdge.length; s++) {
      const e = this.sessEdge[s]!
      if (e < 0 || !failed.has(e)) continue
      this.active[e]!--
      this.touched[e] = 1
      this.sessEdge[s] = NONE
      row.sessionsMoved++
      const to = this.steer(s, 'move')
      if (to === NONE) row.waiting++
      else {
        if (this.world.edgeSite[to] === o.site) row.sameSite++
        row.moveKm += distanceKm(this.world.edges[e]!, this.world.edges[to]!)
        row.receivers.add(to)
      }
    }
  }

  /**
   * The choice of each session in progress near the edges just taken out, with them out (the
   * live view) and with them in (same loads): how many choices the failure changed, and how
   * many of those were not the failed edges' own.
   */
  private probe(out: readonly number[]): { probed: number; onFailed: number; movedOthers: number } {
    const view = this.source.view
    const slots = out.map((e) => this.members[e]!.slot)
    const inView: (EdgeInput | undefined)[] = view.bySlot.slice()
    for (const slot of slots) inView[slot] = { ...inView[slot]!, usable: true }
    const failedIds = new Set(out.map((e) => this.world.edges[e]!.id))
    const at = this.world.edges[out[0]!]!
    const opts = this.config.select
    let probed = 0
    let onFailed = 0
    let movedOthers = 0
    for (let s = 0; s < this.sessEdge.length; s++) {
      if (this.sessEdge[s]! < 0) continue
      const zone = this.world.zones[this.world.clientZone[this.sessions.client[s]!]!]!
      if (distanceKm(zone, at) > this.p.probeRadiusKm) continue
      const title = this.titleName[this.sessions.title[s]!]!
      const was = view.index.select(zone, inView, title, opts)[0]?.edge.id
      const now = view.index.select(zone, view.bySlot, title, opts)[0]?.edge.id
      probed++
      if (was !== undefined && failedIds.has(was)) onFailed++
      else if (was !== now) movedOthers++
    }
    return { probed, onFailed, movedOthers }
  }

  /** Distinct edges serving each (site, title) now: 1 when titles keep to one edge per site. */
  private sessionsByTitle(): () => number {
    return () => {
      const pairs = new Set<number>()
      const sitePairs = new Set<number>()
      const titles = this.p.workload.titles
      for (let s = 0; s < this.sessEdge.length; s++) {
        const e = this.sessEdge[s]!
        if (e < 0) continue
        const t = this.sessions.title[s]!
        pairs.add(e * titles + t)
        sitePairs.add(this.world.edgeSite[e]! * titles + t)
      }
      return sitePairs.size ? pairs.size / sitePairs.size : Number.NaN
    }
  }
}
