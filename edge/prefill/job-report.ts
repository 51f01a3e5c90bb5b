/**
 * A running job's record and every change to it (job-runner.ts runs the job): its state, with
 * the `paused` of a retry wait and the state it goes back to; each title's outcome (complete,
 * failed, purged, cancelled), its metric and the protection it releases; and the record's
 * writes, at once on a change of state and at most every `persistEveryMs` for progress. A
 * record that cannot be written leaves the job going on in memory.
 */
import type { Clock } from '../../src/clock.js'
import { isCdnError } from '../../src/errors.js'
import type { JobStore } from './job-store.js'
import type { PrefillMetrics } from './metrics.js'
import type { JobRecord, TitleResult } from './model.js'
import { describeError, type TitlePlan } from './planner.js'
import type { RetryHooks } from './retry.js'
import type { Sleep } from './sleep.js'
import type { PrefillTarget } from './target.js'

export interface JobReportDeps {
  readonly target: PrefillTarget
  readonly store: JobStore
  readonly clock: Clock
  readonly sleep: Sleep
  readonly metrics: PrefillMetrics
  /** Most often a running job's record is rewritten (progress), ms. */
  readonly persistEveryMs: number
  /** Called whenever a job changes state. */
  readonly onChange?: () => void
  /** A title just became complete (every object of `plan` held). */
  readonly onTitleComplete?: (jobId: string, plan: TitlePlan) => void
  /** A record could not be written (disk full, unwritable): the job goes on in memory. */
  readonly onPersistError?: (err: unknown) => void
}

export class JobReport {
  readonly record: JobRecord
  private readonly deps: JobReportDeps
  private pausedWorkers = 0
  /** When each title began filling (monotonic ms), for its time by result. */
  private readonly started = new Map<string, number>()
  private stateBeforePause: JobRecord['state'] = 'running'
  private lastPersist = Number.NEGATIVE_INFINITY

  constructor(record: JobRecord, deps: JobReportDeps) {
    this.record = record
    this.deps = deps
  }

  setState(state: JobRecord['state'], reason?: string): void {
    if (this.record.state === state && this.record.reason === reason) return
    this.record.state = state
    if (reason === undefined) delete this.record.reason
    else this.record.reason = reason
    this.deps.onChange?.()
    void this.persist(true)
  }

  async persist(force = false): Promise<void> {
    const now = this.deps.clock.monotonic()
    if (!force && now - this.lastPersist < this.deps.persistEveryMs) return
    this.lastPersist = now
    try {
      await this.deps.store.save(this.record)
    } catch (err) {
      this.deps.onPersistError?.(err)
    }
  }

  /** Retry hooks: the job is `paused` while any call waits to retry (attempt 1 = its first pause). */
  retryHooks(signal: AbortSignal): RetryHooks {
    return {
      sleep: this.deps.sleep,
      signal,
      onPause: (err, attempt, delayMs) => {
        if (attempt === 1 && this.pausedWorkers++ === 0 && this.record.state !== 'paused')
          this.stateBeforePause = this.record.state
        const why = isCdnError(err) ? err.message : ((err as Error)?.message ?? String(err))
        this.setState(
          'paused',
          `upstream unavailable (attempt ${attempt}), retrying in ${delayMs} ms: ${why}`,
        )
      },
      onResume: () => {
        this.pausedWorkers = Math.max(0, this.pausedWorkers - 1)
        if (this.pausedWorkers === 0 && this.record.state === 'paused') this.setState(this.stateBeforePause)
      },
    }
  }

  finish(state: 'completed' | 'failed' | 'cancelled', reason: string | undefined): void {
    this.record.finishedAt = this.deps.clock.now()
    this.setState(state, reason)
  }

  /** An operator cancelled the job: every title still to finish is cancelled, released. */
  cancel(): void {
    for (const t of this.record.titles) {
      if (t.state !== 'pending' && t.state !== 'filling') continue
      if (t.state === 'filling') this.deps.target.protectedShare.unprotectTitle(t.title)
      t.state = 'cancelled'
      t.reason = 'job cancelled'
      t.finishedAt = this.deps.clock.now()
    }
    this.finish('cancelled', 'cancelled by operator')
  }

  /** The first of a title's objects starts: the title is filling from now. */
  titleStarted(t: TitleResult): void {
    t.state = 'filling'
    t.startedAt = this.deps.clock.now()
    this.started.set(t.title, this.deps.clock.monotonic())
  }

  /** Every object of the title's plan `tp` is held. */
  async titleComplete(t: TitleResult, tp: TitlePlan): Promise<void> {
    t.state = 'complete'
    t.finishedAt = this.deps.clock.now()
    this.deps.onTitleComplete?.(this.record.id, tp)
    const t0 = this.started.get(t.title)
    this.deps.metrics.titleDone('complete', t0 === undefined ? 0 : (this.deps.clock.monotonic() - t0) / 1000)
    await this.persist(true)
  }

  /** A purge reached a title still to finish: it stops, released, and says how far it got. */
  markPurged(t: TitleResult): void {
    if (t.state !== 'pending' && t.state !== 'filling') return
    t.reason =
      t.state === 'pending'
        ? 'purged by operator before its fill began; not filled'
        : `purged by operator while filling: ${t.objectsDone} of ${t.objectsTotal} objects had been filled (the purge removed them); the rest were not fetched`
    t.state = 'purged'
    t.finishedAt = this.deps.clock.now()
    this.deps.target.protectedShare.unprotectTitle(t.title)
    const t0 = this.started.get(t.title)
    if (t0 !== undefined) this.deps.metrics.titleDone('purged', (this.deps.clock.monotonic() - t0) / 1000)
    void this.persist(true)
  }

  /** A title failed alone (unknown title, bad playlist, 404 segment): the others go on. */
  async titleFailed(t: TitleResult, err: unknown): Promise<void> {
    await this.failTitle(t, err, this.started.get(t.title))
  }

  /** Marks every title not finished as failed with the upstream's reason. */
  async failRemaining(err: unknown): Promise<void> {
    for (const t of this.record.titles)
      if (t.state === 'pending' || t.state === 'filling') await this.failTitle(t, err, undefined)
  }

  private async failTitle(t: TitleResult, err: unknown, t0: number | undefined): Promise<void> {
    if (t.state === 'failed') return
    t.state = 'failed'
    t.error = describeError(err)
    t.reason = t.error.message
    t.finishedAt = this.deps.clock.now()
    this.deps.metrics.titleDone('failed', t0 === undefined ? 0 : (this.deps.clock.monotonic() - t0) / 1000)
    this.deps.target.protectedShare.unprotectTitle(t.title)
    await this.persist(true)
  }
}
