/**
 * The viewing model a prefill weighs objects by (`viewing` in POST /admin/prefill): most
 * sessions stop early and play one rendition most of the time, so the bytes worth holding
 * ahead of demand are the first minutes of the popular titles in the renditions people play,
 * not whole titles. An object's expected requests are
 *
 *   title weight × rendition share × P(a session reaches the object's start)
 *
 * (playlists and init segments: every session of the rendition needs them, so P = 1), and the
 * fit (fit.ts) takes objects by expected requests (for the byte hit ratio, the bytes each byte
 * held is expected to serve).
 *
 * A title's weight counts requests by default (GET /admin/popularity counts every request of a
 * title), and a session of a long title makes more requests than one of a short title: the fit
 * turns the weight into sessions first, dividing by the requests one session of that title is
 * expected to make (the sum of its objects' P × share). `weights: "sessions"` says the weights
 * count sessions already. A title ranked without a weight counts 1/(rank+1) sessions.
 *
 * P is the prefix survival of a two-part model: a share `earlyStop` of sessions watches an
 * exponential time of mean `earlyMeanSec`; the others watch a uniform share of the title
 * between `minShare` and all of it. The VoD literature reports such a mix: about half of
 * sessions end in the first minutes, the rest run most of the title.
 */

export interface ViewingModel {
  readonly earlyStop: number
  readonly earlyMeanSec: number
  readonly minShare: number
  /** Share of sessions per rendition name; renditions not named share what is left evenly. */
  readonly renditionShares?: Readonly<Record<string, number>>
  /**
   * Shares of a session's first segments, one record per position (index 0: the first
   * segment), each read as `renditionShares` is; segments after them use `renditionShares`.
   * A player starts on one rendition before it has measured the bandwidth (hls.js: the master's
   * first variant), so the first segments are played at that rung whatever the rest.
   */
  readonly startupShares?: ReadonlyArray<Readonly<Record<string, number>>>
  /** What titles' weights count: requests (the default, as GET /admin/popularity does) or sessions. */
  readonly weights?: 'requests' | 'sessions'
}

export const DEFAULT_VIEWING: ViewingModel = { earlyStop: 0.5, earlyMeanSec: 300, minShare: 0.2 }

/** Probability that a session of a title of `durationSec` reaches `atSec`. */
export function survival(m: ViewingModel, atSec: number, durationSec: number): number {
  if (atSec <= 0) return 1
  const early = Math.exp(-atSec / Math.max(1e-9, m.earlyMeanSec))
  const f = durationSec > 0 ? atSec / durationSec : 1
  const late = f <= m.minShare ? 1 : f >= 1 ? 0 : (1 - f) / (1 - m.minShare)
  return m.earlyStop * early + (1 - m.earlyStop) * late
}

/** Each rendition's share of sessions, from the model's shares (the rest spread evenly). */
export function renditionShares(m: ViewingModel, names: readonly string[]): Map<string, number> {
  return sharesOf(m.renditionShares ?? {}, names)
}

/** Each rendition's share of the segment at each of the first positions (`startupShares`). */
export function startupShares(m: ViewingModel, names: readonly string[]): Array<Map<string, number>> {
  return (m.startupShares ?? []).map((given) => sharesOf(given, names))
}

function sharesOf(given: Readonly<Record<string, number>>, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>()
  let named = 0
  const rest: string[] = []
  for (const n of names) {
    const s = given[n]
    if (s === undefined) rest.push(n)
    else {
      out.set(n, s)
      named += s
    }
  }
  const left = Math.max(0, 1 - named)
  for (const n of rest) out.set(n, rest.length ? left / rest.length : 0)
  return out
}
