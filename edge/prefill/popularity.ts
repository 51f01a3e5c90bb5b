/**
 * Per-title request counts with exponential time decay, so yesterday's traffic can become
 * tonight's fill list (GET /admin/popularity returns the same shape POST /admin/prefill takes).
 *
 * The request path calls `hit(title)`: one map lookup and a little arithmetic, no allocation
 * for a known title. Scores decay lazily (only when touched or read). The map is bounded:
 * when it grows past `maxTitles`, the weakest tenth is dropped in one pass, so the cost of
 * pruning is amortised over many hits.
 */
import type { Clock } from '../../src/clock.js'

export interface PopularityOptions {
  readonly clock: Clock
  /** Time for a score to halve, in ms (default 6 h). */
  readonly halfLifeMs?: number
  /** Most titles tracked at once (default 10 000). */
  readonly maxTitles?: number
}

interface Entry {
  score: number
  /** Wall-clock ms at which `score` was last brought up to date. */
  at: number
  requests: number
}

export interface PopularityRank {
  readonly title: string
  /** Share of the decayed total, 0..1; the weights of a ranking sum to 1. */
  readonly weight: number
  /** Decayed request count. */
  readonly score: number
  /** Raw requests counted since the title entered the map. */
  readonly requests: number
}

export class Popularity {
  private readonly entries = new Map<string, Entry>()
  private readonly clock: Clock
  private readonly lambda: number
  readonly maxTitles: number

  constructor(options: PopularityOptions) {
    this.clock = options.clock
    this.lambda = Math.LN2 / (options.halfLifeMs ?? 6 * 3_600_000)
    this.maxTitles = Math.max(1, options.maxTitles ?? 10_000)
  }

  get size(): number {
    return this.entries.size
  }

  /** Counts one request for `title`. */
  hit(title: string, weight = 1, requests = 1): void {
    const now = this.clock.now()
    const e = this.entries.get(title)
    if (e) {
      e.score = this.decayed(e, now) + weight
      e.at = now
      e.requests += requests
      return
    }
    this.entries.set(title, { score: weight, at: now, requests })
    if (this.entries.size > this.maxTitles) this.prune(now)
  }

  /** Decayed score of one title now (0 if unknown). */
  score(title: string): number {
    const e = this.entries.get(title)
    return e ? this.decayed(e, this.clock.now()) : 0
  }

  /** Titles by decayed score, highest first. */
  ranking(limit = 100): PopularityRank[] {
    const now = this.clock.now()
    const all = [...this.entries].map(([title, e]) => ({
      title,
      score: this.decayed(e, now),
      requests: e.requests,
    }))
    const total = all.reduce((s, r) => s + r.score, 0)
    all.sort((a, b) => b.score - a.score || (a.title < b.title ? -1 : 1))
    return all.slice(0, Math.max(0, limit)).map((r) => ({
      title: r.title,
      weight: total > 0 ? r.score / total : 0,
      score: r.score,
      requests: r.requests,
    }))
  }

  private decayed(e: Entry, now: number): number {
    const dt = now - e.at
    return dt <= 0 ? e.score : e.score * Math.exp(-this.lambda * dt)
  }

  /** Drops the weakest tenth (at least one), keeping the map within its bound. */
  private prune(now: number): void {
    const drop = Math.max(1, this.entries.size - Math.floor(this.maxTitles * 0.9))
    const weakest = [...this.entries]
      .map(([title, e]) => [title, this.decayed(e, now)] as const)
      .sort((a, b) => a[1] - b[1])
      .slice(0, drop)
    for (const [title] of weakest) this.entries.delete(title)
  }
}
