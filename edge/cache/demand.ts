/**
 * The demand model behind `--disk-eviction demand` and `--disk-admission demand`: an estimate,
 * from request paths alone, of how soon each cached object will be asked for again. VoD has
 * structure an LRU ignores: a session reads one title's segments in order, at the media's
 * pace; most sessions stop early, so early segments are worth more than late ones; which
 * rendition a session plays at a position is the viewers' bandwidth and the player's ABR, not
 * the title. An object at position `j` of a stream (title, version, rendition;
 * src/http/paths.ts) is expected at the rate
 *
 *     sessions starting on the title × R(rendition | j) × S(j | the title's length)
 *   + Σ over live playheads p < j of the stream: S(j)/S(p) / time for p to reach j
 *
 * where R is the rendition's share of the requests at position j over every title, among the
 * renditions of this title, times its version's share of the title (sessions start on a low
 * rung and climb, so a low rendition's share of first segments is far above its share of a
 * whole title), S is the share of sessions that reach a position (the survival curve,
 * learned from the requests per position over every title of about the same length: a session
 * that watches half an episode stops where one of a feature goes on), a title's length is the
 * furthest position asked for in it, a session start is a request for a title's first segment,
 * and a playhead is where a recent run of requests of the stream is now (it moves one segment
 * per segment duration, itself learned from the runs). Both R and S are read over every title,
 * not one: a title's own counts per position are too few to say (on the hit-ratio replay, the
 * stream's share of its own title in place of R, and one curve for every length in place of S,
 * lost 0.02 of byte hit ratio at 5 and 10 % disks; docs/bench.md, "The demand model's estimates").
 * Playlists and init segments sit at position 0 (every session of the stream asks for them).
 * A rendition name past the `MAX_RENDITIONS` followed (demand-curves.ts) falls back to the stream's share of its
 * title. Counts decay with `halfLifeMs`, so
 * rates follow what is watched now; a title's counts are read over the time it has been
 * followed when that is shorter than a few half-lives (a release is not taken for a flop). The
 * model only counts: what to evict (demand-order.ts) and what to admit (DemandAdmission) ask it
 * for `rate`.
 *
 * Every request is recorded once (TieredStore.noteRequest, as TinyLFU's counts), which costs
 * a map lookup of the key (its stream and position, parsed from the path once and kept for the
 * last `maxKeys` keys seen) and a playhead update; a rate is a few multiplications. Titles,
 * streams and kept keys are bounded (`maxTitles`, eight streams a title, `maxKeys`): past the
 * bound the longest-known is dropped.
 */
import type { Clock } from '../../src/clock.js'
import { parseVodPath } from '../../src/http/paths.js'
import { PositionCounts } from './demand-curves.js'
import { pathOfKey } from './entry.js'

/** Playheads followed per stream (concurrent sessions of one rendition beyond this share slots). */
export const HEADS = 4
/** Keys whose stream and position are kept at least (about 150 bytes each with the key). */
export const MAX_KEYS = 65_536

/**
 * Keys worth keeping for a disk tier of `diskBytes`: two per megabyte it holds, so the key of
 * every object it can hold (at a megabyte or more) finds its place without a parse, and as many
 * recent misses; at least MAX_KEYS (10 MB), at most 2^19 (80 MB, from a 262 GB disk on).
 */
export function keysFor(diskBytes: number): number {
  return Math.min(2 ** 19, Math.max(MAX_KEYS, Math.ceil((2 * diskBytes) / 1e6)))
}

const LN2 = Math.LN2

/** A weight above this and every count is rescaled (once every few hundred half-lives). */
const RESCALE_AT = 2 ** 256

/**
 * Counts decay without a timestamp each: a request at time t adds the weight 2^((t - epoch) / h)
 * instead of 1, so every count read at `now` is its stored value ÷ weight(now), and ratios of
 * counts need no weight at all.
 */
export class DemandTitle {
  /** Sessions started (first-segment requests), and every request (weighted). */
  starts = 0
  requests = 0
  /** The furthest position asked for in any of its streams (its length, as far as known). */
  last = 0
  /** Requests (weighted) by version: a stream's R is scaled by its version's share. */
  readonly versions = new Map<string, { requests: number }>()
  /** The by-position tables of its renditions, and its streams (dropped with the title). */
  readonly renditions = new Set<Float64Array>()
  readonly streams: DemandStream[] = []
  /** One of its renditions is not followed by name: its streams' shares are the title's own. */
  unfollowed = false
  constructor(
    /** When the model first saw the title (its counts cover only the time since). */
    readonly since: number,
  ) {}
}

/** One rendition of one title (and version): its requests and its playheads. */
export class DemandStream {
  requests = 0
  /** Position and time of each playhead's last request (time -Infinity: free slot). */
  readonly headPos = new Float64Array(HEADS)
  readonly headAt = new Float64Array(HEADS).fill(Number.NEGATIVE_INFINITY)
  /** Dropped from the model (past its bound): a key kept for it is parsed again. */
  dropped = false
  constructor(
    readonly name: string,
    readonly title: DemandTitle,
    /** Its version's requests (shared by the version's streams). */
    readonly version: { requests: number },
    /** Requests per survival bin of this rendition name over every title (none: not followed). */
    readonly rendition: Float64Array | undefined,
  ) {}
}

/** Where an object sits: its stream and its position (0: playlist or init, n: segment n). */
export interface DemandKey {
  readonly stream: DemandStream
  readonly pos: number
}

export interface DemandOptions {
  readonly clock: Clock
  /** Half-life of every count (default a day: the edge's is --disk-demand-half-life). */
  readonly halfLifeMs?: number
  /** Titles followed at most (streams: eight times as many). */
  readonly maxTitles?: number
  /** Keys whose stream and position are kept, so a request parses no path (default MAX_KEYS). */
  readonly maxKeys?: number
  /** Segment duration before one is learned (default 4 s). */
  readonly segmentMs?: number
  /**
   * The least time a title's counts are taken to cover (default 30 minutes): a rate is the
   * decayed count over the time the title has been followed, never less than this.
   */
  readonly minAgeMs?: number
}

/** Position of a media path's file in its stream: 0 for playlists and init, n for seg-n. */
function positionOf(file: string): number {
  if (!file.startsWith('seg-')) return 0
  return Number.parseInt(file.slice(4), 10)
}

export class DemandModel {
  readonly halfLifeMs: number
  readonly maxTitles: number
  readonly maxKeys: number
  readonly minAgeMs: number
  /** The learned segment duration, ms. */
  segmentMs: number
  private readonly titles = new Map<string, DemandTitle>()
  private readonly streams = new Map<string, DemandStream>()
  /**
   * Each key's place (null: none, outside /vod/ or a master playlist), in two generations of
   * at most `maxKeys / 2`: when the young one is full it becomes the old one and the old one is
   * dropped; a key found old moves to the young. (A bounded Map emptied from its oldest key
   * instead slows down as its deleted slots pile up ahead of the first live one.)
   */
  private young = new Map<string, DemandKey | null>()
  private old = new Map<string, DemandKey | null>()
  /** The counts by position, for S and R (demand-curves.ts). */
  private readonly counts = new PositionCounts()
  /** Time of weight 1, and the weight at the last time asked (memo). */
  private epoch: number
  private weightAt = Number.NaN
  private weightNow = 1
  /** Requests recorded (for figures and tests). */
  recorded = 0

  constructor(private readonly opts: DemandOptions) {
    this.halfLifeMs = opts.halfLifeMs ?? 86_400_000
    this.maxTitles = opts.maxTitles ?? 10_000
    this.maxKeys = Math.max(1, opts.maxKeys ?? MAX_KEYS)
    this.segmentMs = opts.segmentMs ?? 4000
    this.minAgeMs = opts.minAgeMs ?? 1_800_000
    this.epoch = opts.clock.monotonic()
  }

  /** 2^((now - epoch) / half-life): what a request weighs now. */
  weight(now: number): number {
    if (now !== this.weightAt) {
      this.weightAt = now
      this.weightNow = Math.exp(((now - this.epoch) * LN2) / this.halfLifeMs)
    }
    return this.weightNow
  }

  /** Moves the epoch to `now`: every count divided by the weight it had reached. */
  private rescale(now: number): void {
    const w = this.weight(now)
    for (const t of this.titles.values()) {
      t.starts /= w
      t.requests /= w
      for (const v of t.versions.values()) v.requests /= w
    }
    for (const s of this.streams.values()) s.requests /= w
    this.counts.rescale(w)
    this.epoch = now
    this.weightAt = Number.NaN
  }

  now(): number {
    return this.opts.clock.monotonic()
  }

  get titleCount(): number {
    return this.titles.size
  }

  get streamCount(): number {
    return this.streams.size
  }

  /** Keys whose place is kept (a key in both generations counts twice). */
  get keyCount(): number {
    return this.young.size + this.old.size
  }

  /** The stream and position of a cache key (undefined outside /vod/ or for a master playlist). */
  keyOf(key: string): DemandKey | undefined {
    return this.place(key)
  }

  /**
   * keyOf without the path parse for a key seen lately: the place kept for it, unless its
   * stream has since been dropped (a recent key costs one lookup).
   */
  private place(key: string): DemandKey | undefined {
    let kept = this.young.get(key)
    if (kept === undefined || kept?.stream.dropped) {
      const old = kept === undefined ? this.old.get(key) : undefined
      kept = old === undefined || old?.stream.dropped ? (this.parse(key) ?? null) : old
      this.keep(key, kept)
    }
    return kept ?? undefined
  }

  private keep(key: string, place: DemandKey | null): void {
    if (this.young.size >= this.maxKeys / 2) {
      this.old = this.young
      this.young = new Map()
    }
    this.young.set(key, place)
  }

  private parse(key: string): DemandKey | undefined {
    const vp = parseVodPath(pathOfKey(key))
    if (!vp || vp.kind !== 'media') return undefined
    const name = `${vp.title}/${vp.version}/${vp.rendition}`
    let stream = this.streams.get(name)
    if (!stream) {
      let title = this.titles.get(vp.title)
      if (!title) {
        title = new DemandTitle(this.now())
        this.titles.set(vp.title, title)
        if (this.titles.size > this.maxTitles) {
          // Its streams go with it: one left recording into a title no rescale reaches would
          // grow without bound against every other.
          const first = this.titles.keys().next().value!
          for (const s of this.titles.get(first)!.streams) this.dropStream(s)
          this.titles.delete(first)
        }
      }
      const rendition = this.counts.rendition(vp.rendition)
      let version = title.versions.get(vp.version)
      if (!version) title.versions.set(vp.version, (version = { requests: 0 }))
      stream = new DemandStream(name, title, version, rendition)
      title.streams.push(stream)
      if (rendition) title.renditions.add(rendition)
      else title.unfollowed = true
      this.streams.set(name, stream)
      if (this.streams.size > 8 * this.maxTitles) this.dropStream(this.streams.values().next().value!)
    }
    return { stream, pos: positionOf(vp.file) }
  }

  /** Drops a stream, from its title too (paths are the clients', so names are unbounded). */
  private dropStream(s: DemandStream): void {
    s.dropped = true
    if (this.streams.get(s.name) === s) this.streams.delete(s.name)
    const all = s.title.streams
    all.splice(all.indexOf(s), 1)
    if (!all.some((o) => o.version === s.version))
      for (const [name, v] of s.title.versions) if (v === s.version) s.title.versions.delete(name)
  }

  /** One request for `key` (hit or miss). */
  record(key: string): void {
    const k = this.place(key)
    if (!k) return
    this.recorded++
    const now = this.now()
    if (this.weight(now) > RESCALE_AT) this.rescale(now)
    const w = this.weight(now)
    const { stream, pos } = k
    const title = stream.title
    stream.requests += w
    stream.version.requests += w
    title.requests += w
    if (pos > title.last) title.last = pos
    this.counts.record(stream, pos, w)
    if (pos === 1) title.starts += w
    if (pos >= 1) this.moveHead(stream, pos, now)
  }

  /**
   * A request at `pos`: the playhead it continues (its last position a few segments behind)
   * moves there, else it takes the slot of the playhead idle longest. A continued run teaches
   * the segment duration.
   */
  private moveHead(s: DemandStream, pos: number, now: number): void {
    let slot = -1
    let oldest = 0
    for (let i = 0; i < HEADS; i++) {
      const p = s.headPos[i]!
      if (pos > p && pos - p <= 3 && now - s.headAt[i]! <= 4 * this.segmentMs * (pos - p)) {
        if (slot < 0 || s.headAt[i]! > s.headAt[slot]!) slot = i
      }
      if (s.headAt[i]! < s.headAt[oldest]!) oldest = i
    }
    if (slot >= 0) {
      const per = (now - s.headAt[slot]!) / (pos - s.headPos[slot]!)
      if (per > 0) this.segmentMs = Math.min(60_000, Math.max(250, 0.95 * this.segmentMs + 0.05 * per))
    } else slot = oldest
    s.headPos[slot] = pos
    s.headAt[slot] = now
  }

  /** S: the share of sessions that reach `pos`, of titles of `title`'s length (demand-curves.ts). */
  survival(pos: number, title?: DemandTitle, now = this.now()): number {
    return this.counts.survival(pos, title, this.weight(now))
  }

  /** The stream's share of its title's requests at `pos`: version share × R (demand-curves.ts). */
  renditionShare(stream: DemandStream, pos: number): number {
    return this.counts.renditionShare(stream, pos)
  }

  /** Expected requests per millisecond for the object at `k`, from now (see the file's head). */
  rate(k: DemandKey, now = this.now()): number {
    // Long idle (a thousand half-lives without a request): the weight would overflow.
    if (this.weight(now) > RESCALE_AT) this.rescale(now)
    const { stream, pos } = k
    const title = stream.title
    const share = this.renditionShare(stream, pos)
    const sj = this.survival(pos, title, now)
    // Sessions per ms: a decaying count over a half-life h is about rate × h / ln 2.
    let rate = ((title.starts / this.weight(now)) * LN2 * share * sj) / this.halfLifeMs
    // A decaying count over a title followed for `age` holds h / ln 2 × (1 - 2^(-age/h)) of
    // time, not h / ln 2: a release (or every title after a restart) would look slower than it is.
    const age = Math.max(this.minAgeMs, now - title.since)
    rate /= 1 - Math.exp((-age * LN2) / this.halfLifeMs)
    if (pos <= 1) return rate
    const seg = this.segmentMs
    for (let i = 0; i < HEADS; i++) {
      const p = stream.headPos[i]!
      const idle = now - stream.headAt[i]!
      // A playhead that has not asked for three segment durations has stopped (or switched).
      if (!(pos > p) || idle > 3 * seg) continue
      const eta = (pos - p) * seg - idle
      rate += Math.min(1, sj / this.survival(p, title, now)) / Math.max(seg, eta)
    }
    return rate
  }
}
