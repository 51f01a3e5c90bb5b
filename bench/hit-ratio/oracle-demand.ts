/**
 * The demand policy told the truth about rates: `edge(demand-oracle)`, the ceiling of any policy
 * that ranks objects by how often they will be asked for (issue 19's demand goal).
 *
 * The edge's demand model (edge/cache/demand.ts) estimates each object's request rate from the
 * requests it has seen: the title's session starts, the rendition's share, the survival curve,
 * plus the live playheads. `OracleDemand` keeps the model's playheads (what an online policy can
 * know of sessions already playing) and replaces every estimate with the generator's own
 * expectation (generate.ts): the title's Zipf share of that day's sessions at that hour of the
 * diurnal curve, the share of sessions on the rendition at that position (from the generator's
 * bandwidth model, by simulation) and the exact share of the title's sessions that reach it.
 * Eviction and admission are the edge's (demand-order.ts) unchanged.
 *
 * What it still lacks against Belady is the realised future: which sessions will actually come,
 * and when. On the 1M-request trace it is the gap no estimate of rates can close.
 */
import { DemandModel, type DemandKey, HEADS } from '../../edge/cache/demand.js'
import { pathOfKey } from '../../edge/cache/entry.js'
import { DEFAULT_STARTUP_BITRATE } from '../../src/hls/playlist.js'
import type { Clock } from '../../src/clock.js'
import { parseVodPath } from '../../src/http/paths.js'
import type { Catalogue, Title } from './catalogue.js'
import { dayPopularity, type WorkloadParams } from './generate.js'
import { exponential, lognormal, seeded } from './rng.js'
import { DAY_MS } from './trace.js'

/** Positions whose rendition shares are simulated one by one; later ones share the last. */
const POSITIONS = 80
/** Sessions simulated for the rendition shares. */
const SESSIONS = 40_000

export interface OracleKey extends DemandKey {
  readonly title: Title
  readonly rung: number
}

export class OracleDemand extends DemandModel {
  /** [rung][segment index]: the share of sessions playing it there, if they got that far. */
  private readonly shares: Float64Array[]
  /** [rung]: the share of sessions that play the rung at some point (its playlist and init). */
  private readonly ever: Float64Array
  private readonly rungOf: Map<string, number>
  private readonly popularity = new Map<number, Map<string, number>>()

  constructor(
    clock: Clock,
    private readonly cat: Catalogue,
    private readonly p: WorkloadParams,
    private readonly sessionsPerDay: number,
    /** The trace's start (its day 0, at the workload's day-start hour). */
    private readonly startMs: number,
  ) {
    super({ clock, segmentMs: p.segmentSec * 1000 })
    this.rungOf = new Map(cat.ladder.map((r, i) => [r.name, i]))
    const { shares, ever } = renditionShares(cat, p)
    this.shares = shares
    this.ever = ever
  }

  override keyOf(key: string): OracleKey | undefined {
    const k = super.keyOf(key)
    if (!k) return undefined
    const vp = parseVodPath(pathOfKey(key))
    const title = vp?.kind === 'media' ? this.cat.title(vp.title) : undefined
    const rung = vp?.kind === 'media' ? this.rungOf.get(vp.rendition) : undefined
    if (!title || rung === undefined) return undefined
    return { ...k, title, rung }
  }

  /** Expected requests per ms: the generator's expectation, plus the model's live playheads. */
  override rate(key: DemandKey, now = this.now()): number {
    const { title, rung, pos, stream } = key as OracleKey
    const since = now - this.startMs
    const hour = (this.p.dayStartHour + (since % DAY_MS) / 3_600_000) % 24
    const diurnal = 1 + this.p.diurnalAmplitude * Math.cos((2 * Math.PI * (hour - this.p.peakHour)) / 24)
    const sessions =
      ((this.sessionsPerDay * diurnal) / DAY_MS) * (this.share(Math.floor(since / DAY_MS), title) ?? 0)
    const seg = pos - 1
    let rate =
      pos === 0
        ? sessions * this.ever[rung]!
        : sessions * this.shares[rung]![Math.min(seg, POSITIONS)]! * this.reach(title, seg)
    if (pos <= 1) return rate
    const segMs = this.p.segmentSec * 1000
    for (let i = 0; i < HEADS; i++) {
      const head = stream.headPos[i]!
      const idle = now - stream.headAt[i]!
      if (!(pos > head) || idle > 3 * segMs) continue
      const eta = (pos - head) * segMs - idle
      const from = this.reach(title, head - 1)
      rate += (from > 0 ? Math.min(1, this.reach(title, seg) / from) : 0) / Math.max(segMs, eta)
    }
    return rate
  }

  /** The title's share of the day's sessions (Zipf over that day's ranking). */
  share(day: number, title: Title): number | undefined {
    let m = this.popularity.get(day)
    if (!m) {
      const { titles } = dayPopularity(this.cat, this.p, day)
      let sum = 0
      for (let r = 0; r < titles.length; r++) sum += (r + 1) ** -this.p.alpha
      m = new Map(titles.map((t, r) => [t.id, (r + 1) ** -this.p.alpha / sum]))
      this.popularity.set(day, m)
    }
    return m.get(title.id)
  }

  /** The share of the title's sessions that play segment index `seg` (playSession's prefix). */
  reach(title: Title, seg: number): number {
    if (seg <= 0) return 1
    if (seg >= title.segments) return 0
    const sec = seg * this.p.segmentSec
    const early = Math.exp(-sec / this.p.earlyMeanSec)
    const part = sec / title.durationSec
    const late = part <= this.p.minShare ? 1 : part >= 1 ? 0 : (1 - part) / (1 - this.p.minShare)
    return this.p.earlyStop * early + (1 - this.p.earlyStop) * late
  }
}

/** The rung a bandwidth sustains, as generate.ts picks it. */
function rungFor(cat: Catalogue, bandwidth: number): number {
  const i = cat.ladder.findIndex((r) => (r.videoBitrate + r.audioBitrate) * 1.2 <= bandwidth)
  return i < 0 ? cat.ladder.length - 1 : i
}

/**
 * Sessions' renditions by position, simulated with the generator's bandwidth model (startup
 * rung, log-normal bandwidth, switches), and the share that plays each rung at all.
 */
function renditionShares(cat: Catalogue, p: WorkloadParams): { shares: Float64Array[]; ever: Float64Array } {
  const shares = cat.ladder.map(() => new Float64Array(POSITIONS + 1))
  const ever = new Float64Array(cat.ladder.length)
  const rng = seeded(p.seed ^ 0x0ac1e)
  const startup = rungFor(cat, DEFAULT_STARTUP_BITRATE / 1.2 + 1)
  // A session's length as playSession draws it, for a title of the median feature length.
  const typical = ((p.featureMinutes[0] + p.featureMinutes[1]) / 2) * 60
  const seen = new Set<number>()
  for (let i = 0; i < SESSIONS; i++) {
    const watch =
      rng() < p.earlyStop
        ? exponential(rng, p.earlyMeanSec)
        : (p.minShare + (1 - p.minShare) * rng()) * typical
    const played = Math.max(1, Math.ceil(watch / p.segmentSec))
    let bandwidth = lognormal(rng, p.bandwidthMedian, p.bandwidthSigma)
    seen.clear()
    for (let s = 0; s < Math.max(POSITIONS + 1, played); s++) {
      if (rng() < p.switchProb) bandwidth *= lognormal(rng, 1, p.switchSigma)
      const rung =
        s < p.startupSegments ? Math.max(startup, rungFor(cat, bandwidth)) : rungFor(cat, bandwidth)
      const row = shares[rung]!
      if (s <= POSITIONS) row[s] = row[s]! + 1 / SESSIONS
      if (s < played) seen.add(rung)
    }
    for (const r of seen) ever[r] = ever[r]! + 1 / SESSIONS
  }
  return { shares, ever }
}
