/**
 * Retention of the shared job records (job-board.ts): which records a job-running origin deletes.
 * A record is pruned when it is settled (succeeded, failed, cancelled), not among the newest
 * `history` records, and finished at least `minAgeMs` ago (a client polling a job that just
 * finished still finds it). Queued and running records, and their claims, are never pruned.
 *
 * One listing per poll gives both what the board reads (the newest records) and the next batch of
 * prune candidates (the oldest records after a cursor), with each key's rank: the cursor moves on
 * past records that must stay (a stuck queued one, one that finished late), so a batch of them at
 * the head of the listing never stops the pruning behind them, and comes back to the start once
 * the candidates run out.
 */
import type { JobRecord } from './job-board.js'

export const DEFAULT_JOB_HISTORY = 1000
export const DEFAULT_JOB_HISTORY_MIN_AGE_MS = 24 * 3_600_000

/** States a record never leaves. */
export const SETTLED: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled'])

export interface RecordListing {
  /** Keys of the newest records (`.json`), at most `newest` of them, in key order. */
  newest: string[]
  /** Records listed in all. */
  count: number
  /** Up to `batch` record keys after the cursor, in key order, each with the records before it. */
  head: { key: string; rank: number }[]
}

/** Reads a listing (pages of keys in key order) once, keeping only what the board and the pruning need. */
export async function scanRecords(
  pages: AsyncIterable<string[]>,
  o: { newest: number; batch: number; after: string },
): Promise<RecordListing> {
  const out: RecordListing = { newest: [], count: 0, head: [] }
  for await (const page of pages) {
    for (const key of page) {
      if (!key.endsWith('.json')) continue
      if (key > o.after && out.head.length < o.batch) out.head.push({ key, rank: out.count })
      out.count++
      out.newest.push(key)
    }
    if (out.newest.length > o.newest) out.newest.splice(0, out.newest.length - o.newest)
  }
  return out
}

/** Wall-clock ms of the creation time an id starts with (job-YYYYMMDDTHHMMSS-...), or undefined. */
export function idTime(key: string): number | undefined {
  const m = /job-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})-[^/]*$/.exec(key)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  return Date.UTC(y, mo - 1, d, h, mi, s)
}

export interface PrunePlan {
  /** Records to read and judge (pruneable), oldest first. */
  candidates: string[]
  /** Where the next pass starts ('' : from the oldest record). */
  after: string
}

/**
 * The candidates of one pass: the head's records beyond the newest `history`, up to the first one
 * created less than `minAgeMs` ago (every later key is newer still). Pure.
 */
export function planPrune(
  listing: RecordListing,
  o: { history: number; minAgeMs: number; batch: number; now: number },
): PrunePlan {
  const candidates: string[] = []
  for (const { key, rank } of listing.head) {
    const created = idTime(key)
    if (rank >= listing.count - o.history || (created !== undefined && o.now - created < o.minAgeMs))
      return { candidates, after: '' }
    candidates.push(key)
  }
  // A full batch: the next pass goes on after it; a short one reached the end of the listing.
  const full = listing.head.length >= o.batch
  return { candidates, after: full ? (candidates[candidates.length - 1] ?? '') : '' }
}

/** Whether a record read may be deleted: settled, and finished at least `minAgeMs` ago. Pure. */
export function expired(r: JobRecord, now: number, minAgeMs: number): boolean {
  if (!SETTLED.has(r.view.state)) return false
  // A job failed at its claim has no finishedAt: its creation time, the older, is what it has.
  const finished = Date.parse(r.view.finishedAt ?? r.view.createdAt)
  return Number.isFinite(finished) && now - finished >= minAgeMs
}
