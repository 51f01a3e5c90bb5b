/**
 * The persisted shape of a prefill job and its per-title results. Jobs move through
 *
 *   queued → planning → running ⇄ waiting (outside the fill window, no trickle)
 *                          ⇅ paused (upstream down, retrying with backoff)
 *          → completed | failed | cancelled
 *
 * A job that runs to its end is `failed` when a title failed and none is complete (nothingFilled),
 * else `completed` with its failures counted in the reason.
 *
 * A title is `complete` only when every object of its plan is held; a failure or cancel in
 * the middle leaves it `failed`/`cancelled` with its objects released from protection, and an
 * operator's purge of it while the job runs leaves it `purged` (job-runner.ts `titlePurged`).
 */
import type { RenditionFilter, TitleError, TitlePlan, TitleRequest } from './planner.js'
import type { ViewingModel } from './viewing.js'

export const JOB_STATES = [
  'queued',
  'planning',
  'running',
  'waiting',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const
export type JobState = (typeof JOB_STATES)[number]

export const TERMINAL: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled'])

export type TitleState = 'pending' | 'filling' | 'complete' | 'failed' | 'left-out' | 'cancelled' | 'purged'

export interface JobSpec {
  readonly titles: readonly TitleRequest[]
  readonly source: 'titles' | 'popularity'
  readonly renditions?: RenditionFilter
  readonly maxBytesPerSecond?: number
  readonly concurrency: number
  /** "HH:MM-HH:MM" in the edge's time zone. */
  readonly window?: string
  /** Rate outside the window; absent or 0 = wait for the window. */
  readonly trickleBytesPerSecond?: number
  /** Fit objects by expected requests under this viewing model (viewing.ts), not whole titles. */
  readonly viewing?: ViewingModel
}

export interface TitleResult {
  readonly title: string
  readonly rank: number
  readonly weight?: number
  version?: string
  state: TitleState
  objectsDone: number
  objectsTotal: number
  /** Planned bytes of the objects done (so done/total reaches 100%). */
  bytesDone: number
  bytesTotal: number
  /** Bytes this job actually fetched from upstream for the title. */
  bytesFetched: number
  /** One line: why a title was left out, failed, cancelled or purged. */
  reason?: string
  error?: TitleError
  startedAt?: number
  finishedAt?: number
}

export interface JobRecord {
  readonly id: string
  readonly spec: JobSpec
  state: JobState
  /** Why the job is waiting, paused, failed or cancelled. */
  reason?: string
  readonly createdAt: number
  startedAt?: number
  finishedAt?: number
  /** True once the plan is written next to the record; a resumed job reuses it. */
  planned: boolean
  titles: TitleResult[]
  /** Titles of earlier prefills released from protection to make room. */
  unprotected: string[]
}

/** What GET /admin/prefill/{id} answers. */
export interface JobView {
  readonly id: string
  readonly state: JobState
  readonly reason?: string
  readonly createdAt: string
  readonly startedAt?: string
  readonly finishedAt?: string
  readonly objects: { done: number; total: number }
  readonly bytes: { done: number; total: number; fetched: number }
  /** Bytes per second fetched over the last 10 s. */
  readonly rateBytesPerSec: number
  readonly maxBytesPerSecond?: number
  readonly window?: string
  readonly etaSec?: number
  readonly titles: readonly TitleResult[]
  readonly unprotected: readonly string[]
}

/** The result row of a title as planned, before any fetch. */
export function resultFor(plan: TitlePlan, decision: string, reason: string | undefined): TitleResult {
  const base: TitleResult = {
    title: plan.title,
    rank: plan.rank,
    ...(plan.weight === undefined ? {} : { weight: plan.weight }),
    ...(plan.version ? { version: plan.version } : {}),
    state: 'pending',
    objectsDone: 0,
    objectsTotal: plan.objects.length,
    bytesDone: 0,
    bytesTotal: plan.bytesTotal,
    bytesFetched: 0,
  }
  if (decision === 'fill') return base
  return {
    ...base,
    state: decision === 'error' ? 'failed' : 'left-out',
    ...(reason ? { reason } : {}),
    ...(plan.error ? { error: plan.error } : {}),
  }
}

/**
 * Whether a job that ran to its end failed as a whole: some title failed and none is complete
 * (the CLI exits 1 either way; a job that filled something is `completed` with its failures
 * counted). One whose titles were all left out or purged is not a failure.
 */
export function nothingFilled(titles: readonly TitleResult[]): boolean {
  return titles.some((t) => t.state === 'failed') && !titles.some((t) => t.state === 'complete')
}

/** One line for a finished job. */
export function summary(titles: readonly TitleResult[]): string {
  const count = (s: string) => titles.filter((t) => t.state === s).length
  const purged = count('purged')
  return `${count('complete')} complete, ${count('failed')} failed, ${count('left-out')} left out${purged ? `, ${purged} purged` : ''}`
}
