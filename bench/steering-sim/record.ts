/**
 * What the steering simulation measures, per hour of the day and per failure, and the
 * result document it writes (bench/results/steering-sim.json).
 *
 * Load spread: at each sample, every edge that answers has a load (sessions × bitrate over
 * capacity). "max/mean" and "p99/mean" are over the whole fleet (time zones included: at
 * 21:00 in Europe, Asia's edges are idle); "site max/mean" is each site's busiest edge over
 * the site's mean, averaged with the site's sessions as weights: the spread steering's
 * hashing and bounded load control.
 */
import type { Outage } from './failures.js'
import type { SimParams } from './sim.js'
import { HOUR } from './workload.js'
import type { World } from './world.js'

export interface HourRow {
  hour: number
  /** Sessions started (steered) in the hour, and those that found no edge answering at once. */
  starts: number
  failovers: number
  /** Share of starts sent to a site other than the nearest, and beyond the band. */
  beyondNearestSite: number
  beyondBand: number
  /** Mean extra distance of the starts sent beyond the nearest site, km. */
  extraKm: number
  activeSessions: number
  meanLoad: number
  maxOverMean: number
  maxOverMeanWorst: number
  p99OverMean: number
  siteMaxOverMean: number
  maxLoad: number
  /** Share of sessions on an edge over its capacity (load > 1), mean over samples. */
  overCapacityShare: number
  /** Edges entering "overloaded" (load above --load-high) in the hour. */
  overloadEvents: number
  /** Edges per (site, title) with sessions, at the hour's first sample (1: one edge per title per site). */
  edgesPerTitleSite: number
}

export interface FailureRow {
  kind: Outage['kind']
  site: string
  edges: number
  atHour: number
  downMin: number
  /** Sessions on the failed edges when they failed: each is steered again. */
  sessionsMoved: number
  /** ... to an edge of the same site, and how many found none answering (they retry). */
  sameSite: number
  waiting: number
  meanMoveKm: number
  /** Time until steering took every failed edge out. */
  detectedAfterSec: number | null
  /** Choices of sessions in progress nearby, probed when the edges were taken out. */
  probed: number
  probedOnFailed: number
  movedOthers: number
  /** Edges that took moved sessions, their highest load in the next hour. */
  receiverCount: number
  receiverPeakLoad: number
  /** Time from the failure until no receiver was over --load-high (and the edges were out). */
  restabilisedAfterSec: number | null
  receivers: Set<number>
  moveKm: number
  lastOverloadAt: number
  at: number
}

export interface Result {
  params: SimParams
  world: {
    metros: number
    sites: number
    edges: number
    clients: number
    zones: number
    sessions: number
    edgesPerSite: { min: number; median: number; max: number }
  }
  setupMs: number
  runMs: number
  decisions: number
  hours: HourRow[]
  failures: Omit<FailureRow, 'receivers' | 'moveKm' | 'lastOverloadAt' | 'at'>[]
  /** Sessions that never got an edge, and the longest and total waits of those that did. */
  unserved: number
  waits: { count: number; maxSec: number; meanSec: number }
  /** Ten-minute means for the chart. */
  timeline: {
    hour: number
    maxOverMean: number
    p99OverMean: number
    siteMaxOverMean: number
    meanLoad: number
  }[]
}

const ZERO = (hour: number): HourRow & { n: number; beyondKm: number } => ({
  hour,
  starts: 0,
  failovers: 0,
  beyondNearestSite: 0,
  beyondBand: 0,
  extraKm: 0,
  activeSessions: 0,
  meanLoad: 0,
  maxOverMean: 0,
  maxOverMeanWorst: 0,
  p99OverMean: 0,
  siteMaxOverMean: 0,
  maxLoad: 0,
  overCapacityShare: 0,
  overloadEvents: 0,
  edgesPerTitleSite: Number.NaN,
  n: 0,
  beyondKm: 0,
})

export class Recorder {
  private readonly hours: ReturnType<typeof ZERO>[]
  readonly failures: FailureRow[] = []
  private readonly timeline: Result['timeline'] = []
  private bucket = { hour: -1, n: 0, maxOverMean: 0, p99OverMean: 0, siteMaxOverMean: 0, meanLoad: 0 }
  private decisions = 0
  private readonly waitsSec: number[] = []
  private readonly started = performance.now()
  private readonly loads: Float64Array

  constructor(
    private readonly p: SimParams,
    private readonly world: World,
    private readonly setupMs: number,
    private readonly sessions: number,
  ) {
    this.hours = Array.from({ length: p.workload.hours }, (_, h) => ZERO(h))
    this.loads = new Float64Array(world.edges.length)
  }

  private hour(now: number): ReturnType<typeof ZERO> | undefined {
    return now >= 0 ? this.hours[Math.floor(now / HOUR)] : undefined
  }

  start(now: number, beyondSite: boolean, extraKm: number, bandKm: number, failover: boolean): void {
    const h = this.hour(now)
    if (!h) return
    h.starts++
    if (failover) h.failovers++
    if (beyondSite) {
      h.beyondNearestSite++
      h.beyondKm += extraKm
      if (extraKm > bandKm) h.beyondBand++
    }
  }

  decision(): void {
    this.decisions++
  }

  overloadEvent(now: number): void {
    const h = this.hour(now)
    if (h) h.overloadEvents++
  }

  waited(sec: number): void {
    this.waitsSec.push(sec)
  }

  failure(o: Outage, now: number): FailureRow {
    const row: FailureRow = {
      kind: o.kind,
      site: this.world.sites[o.site]!.name,
      edges: o.edges.length,
      atHour: Math.round((now / HOUR) * 100) / 100,
      downMin: Math.round((o.until - o.at) / 60),
      sessionsMoved: 0,
      sameSite: 0,
      waiting: 0,
      meanMoveKm: 0,
      detectedAfterSec: null,
      probed: 0,
      probedOnFailed: 0,
      movedOthers: 0,
      receiverCount: 0,
      receiverPeakLoad: 0,
      restabilisedAfterSec: null,
      receivers: new Set(),
      moveKm: 0,
      lastOverloadAt: Number.NEGATIVE_INFINITY,
      at: now,
    }
    this.failures.push(row)
    return row
  }

  /** Loads at one moment; `copies` counts edges per (site, title), run at each hour's first sample. */
  sample(
    now: number,
    alive: Uint8Array,
    active: Int32Array,
    capacity: Float64Array,
    copies: () => number,
  ): void {
    const h = this.hour(now)
    if (!h) return
    const bytes = this.p.world.sessionBytesPerSec
    const loads = this.loads
    let n = 0
    let sum = 0
    let max = 0
    let sessions = 0
    let overCap = 0
    const sites = this.world.sites
    let siteWeighted = 0
    let siteSessions = 0
    for (const site of sites) {
      let sAct = 0
      let sCap = 0
      let sMax = 0
      for (const e of site.edges) {
        if (!alive[e]) continue
        const load = (active[e]! * bytes) / capacity[e]!
        loads[n++] = load
        sum += load
        if (load > max) max = load
        if (load > 1) overCap += active[e]!
        sAct += active[e]!
        sCap += capacity[e]!
        if (load > sMax) sMax = load
      }
      sessions += sAct
      if (sAct > 0) {
        siteWeighted += sAct * (sMax / ((sAct * bytes) / sCap))
        siteSessions += sAct
      }
    }
    const mean = sum / n
    const sorted = loads.subarray(0, n).sort()
    const p99 = sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!
    if (h.n === 0) h.edgesPerTitleSite = copies()
    h.n++
    h.activeSessions += sessions
    h.meanLoad += mean
    h.maxOverMean += max / mean
    h.maxOverMeanWorst = Math.max(h.maxOverMeanWorst, max / mean)
    h.p99OverMean += p99 / mean
    h.siteMaxOverMean += siteSessions ? siteWeighted / siteSessions : 0
    h.maxLoad = Math.max(h.maxLoad, max)
    h.overCapacityShare += sessions ? overCap / sessions : 0
    this.timelinePoint(now, max / mean, p99 / mean, siteSessions ? siteWeighted / siteSessions : 0, mean)
    for (const f of this.failures) {
      if (now < f.at || now > f.at + HOUR) continue
      for (const e of f.receivers) {
        const load = alive[e] ? (active[e]! * bytes) / capacity[e]! : 0
        if (load > f.receiverPeakLoad) f.receiverPeakLoad = load
        if (load > this.p.steering.loadHigh) f.lastOverloadAt = now
      }
    }
  }

  private timelinePoint(now: number, maxOverMean: number, p99: number, site: number, mean: number): void {
    const slot = Math.floor(now / 600)
    const b = this.bucket
    if (slot !== b.hour) {
      this.flush()
      this.bucket = { hour: slot, n: 0, maxOverMean: 0, p99OverMean: 0, siteMaxOverMean: 0, meanLoad: 0 }
    }
    const c = this.bucket
    c.n++
    c.maxOverMean += maxOverMean
    c.p99OverMean += p99
    c.siteMaxOverMean += site
    c.meanLoad += mean
  }

  private flush(): void {
    const b = this.bucket
    if (b.n === 0) return
    const r = (v: number) => Math.round((v / b.n) * 1000) / 1000
    this.timeline.push({
      hour: (b.hour * 600 + 300) / HOUR,
      maxOverMean: r(b.maxOverMean),
      p99OverMean: r(b.p99OverMean),
      siteMaxOverMean: r(b.siteMaxOverMean),
      meanLoad: r(b.meanLoad),
    })
  }

  result(unserved: number): Result {
    this.flush()
    const edgesPerSite = this.world.sites.map((s) => s.edges.length).sort((a, b) => a - b)
    const hours: HourRow[] = this.hours.map(({ n, beyondKm, ...h }) => {
      const per = (v: number) => (n ? v / n : Number.NaN)
      return {
        ...h,
        beyondNearestSite: h.starts ? h.beyondNearestSite / h.starts : Number.NaN,
        beyondBand: h.starts ? h.beyondBand / h.starts : Number.NaN,
        extraKm: h.beyondNearestSite ? beyondKm / h.beyondNearestSite : 0,
        activeSessions: per(h.activeSessions),
        meanLoad: per(h.meanLoad),
        maxOverMean: per(h.maxOverMean),
        p99OverMean: per(h.p99OverMean),
        siteMaxOverMean: per(h.siteMaxOverMean),
        overCapacityShare: per(h.overCapacityShare),
      }
    })
    const failures = this.failures.map(({ receivers, moveKm, lastOverloadAt, at, ...f }) => {
      const moved = f.sessionsMoved - f.waiting
      const settled =
        f.detectedAfterSec === null
          ? null
          : Math.max(
              f.detectedAfterSec,
              lastOverloadAt === Number.NEGATIVE_INFINITY ? 0 : lastOverloadAt + this.p.sampleSec - at,
            )
      return {
        ...f,
        receiverCount: receivers.size,
        meanMoveKm: moved ? Math.round(moveKm / moved) : 0,
        restabilisedAfterSec: settled,
        receiverPeakLoad: Math.round(f.receiverPeakLoad * 1000) / 1000,
      }
    })
    const waits = this.waitsSec
    return {
      params: this.p,
      world: {
        metros: new Set(this.world.sites.map((s) => s.metro)).size,
        sites: this.world.sites.length,
        edges: this.world.edges.length,
        clients: this.world.params.clients,
        zones: this.world.zones.length,
        sessions: this.sessions,
        edgesPerSite: {
          min: edgesPerSite[0]!,
          median: edgesPerSite[edgesPerSite.length >> 1]!,
          max: edgesPerSite[edgesPerSite.length - 1]!,
        },
      },
      setupMs: Math.round(this.setupMs),
      runMs: Math.round(performance.now() - this.started),
      decisions: this.decisions,
      hours,
      failures,
      unserved,
      waits: {
        count: waits.length,
        maxSec: waits.length ? Math.max(...waits) : 0,
        meanSec: waits.length ? waits.reduce((a, b) => a + b, 0) / waits.length : 0,
      },
      timeline: this.timeline,
    }
  }
}
