/**
 * The demand model's counts by position (demand.ts): the survival curve S over every title and
 * by length class of title, and each rendition name's requests by position, for R. Positions
 * fall in bins (binOf) of one position up to 7, then four a doubling; every count is weighted
 * as the model's are (a request adds the weight of its time, `rescale` divides them all).
 */
import type { DemandStream, DemandTitle } from './demand.js'

/**
 * Survival bins: positions 0 to 7 one each, then four a doubling (8-9, 10-11, 12-13, 14-15,
 * 16-19, ...): early in a title the curve falls by half or more within one doubling, and a rate
 * is read off its bin's mean.
 */
const BINS = 96
/** Length classes of titles for the survival curve: two a doubling of the furthest position. */
const LENGTHS = 64
/** Sessions of the curve over every title that a length class's own curve is read beside. */
const PRIOR_SESSIONS = 10
/** Rendition names whose share by position is followed (eight ladders of eight). */
export const MAX_RENDITIONS = 64

function binOf(pos: number): number {
  if (pos < 8) return Math.max(0, pos)
  const o = 31 - Math.clz32(pos)
  return Math.min(BINS - 1, 4 * (o - 1) + ((pos >>> (o - 2)) & 3))
}

/** Positions in bin `b`. */
function binWidth(b: number): number {
  return b < 8 ? 1 : 2 ** ((b >>> 2) - 1)
}

/** The length class of a title whose furthest position asked for is `last`. */
function lengthOf(last: number): number {
  if (last < 4) return last
  const o = 31 - Math.clz32(last)
  return Math.min(LENGTHS - 1, 2 * o + ((last >>> (o - 1)) & 1))
}

export class PositionCounts {
  /** Requests per survival bin (weighted), for S. */
  private readonly bins = new Float64Array(BINS)
  /** The same for the titles of each length class. */
  private readonly byLength = Array.from({ length: LENGTHS }, () => new Float64Array(BINS))
  /** The same for each rendition name, over every title. */
  private readonly renditions = new Map<string, Float64Array>()

  /** The counts of a rendition name (made on first use; none past MAX_RENDITIONS names). */
  rendition(name: string): Float64Array | undefined {
    let r = this.renditions.get(name)
    if (!r && this.renditions.size < MAX_RENDITIONS) {
      r = new Float64Array(BINS)
      this.renditions.set(name, r)
    }
    return r
  }

  /** One request of `stream` at `pos`, of weight `w` (the title's `last` already moved). */
  record(stream: DemandStream, pos: number, w: number): void {
    const b = binOf(pos)
    this.bins[b] = this.bins[b]! + w
    const byLength = this.byLength[lengthOf(stream.title.last)]!
    byLength[b] = byLength[b]! + w
    if (stream.rendition) stream.rendition[b] = stream.rendition[b]! + w
  }

  /** Every count divided by `w` (the model's rescale). */
  rescale(w: number): void {
    for (const bins of [this.bins, ...this.byLength, ...this.renditions.values()])
      for (let i = 0; i < BINS; i++) bins[i] = bins[i]! / w
  }

  /**
   * The share of sessions that reach position `pos` (1 for position 0 and 1): over every title,
   * or when `title` is given over the titles of its length, read as if PRIOR_SESSIONS more of
   * their sessions had followed the curve of every title (a length class with few sessions
   * yet says little). `weight` is the weight of a request now.
   */
  survival(pos: number, title: DemandTitle | undefined, weight: number): number {
    if (pos <= 1) return 1
    const first = this.bins[1]!
    if (first <= 0) return 1
    const b = binOf(pos)
    const all = this.bins[b]! / binWidth(b) / first
    if (!title) return Math.min(1, all)
    const mine = this.byLength[lengthOf(title.last)]!
    const prior = PRIOR_SESSIONS * weight
    return Math.min(1, (mine[b]! / binWidth(b) + prior * all) / (mine[1]! + prior))
  }

  /**
   * The stream's share of its title's requests at position `pos`: its version's share of the
   * title × R, the share of the requests at that position, over every title, that went to its
   * rendition among the renditions this title has (so a title on a rare ladder is not taken
   * for a small share of a common one). A title with a rendition name not followed by name
   * falls back, for all its streams, to each stream's share of the whole title.
   */
  renditionShare(stream: DemandStream, pos: number): number {
    const title = stream.title
    if (title.requests <= 0) return 0
    const r = stream.rendition
    if (r && !title.unfollowed) {
      const b = binOf(pos)
      let all = 0
      for (const t of title.renditions) all += t[b]!
      if (all > 0) return (stream.version.requests / title.requests) * (r[b]! / all)
    }
    return stream.requests / title.requests
  }
}
