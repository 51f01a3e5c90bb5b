/**
 * The prefill job manager: accepts jobs, runs them one at a time in submission order (they
 * share the upstream and the rate budget), persists them, resumes unfinished ones after a
 * restart, and answers progress. Submitting a job equal to one still queued or running
 * returns that job instead of a second one; a different job naming the same titles finds
 * their objects held and fetches nothing twice.
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { decide, type Plan } from './fit.js'
import { JobRun, type RunnerDeps } from './job-runner.js'
import { JobStore } from './job-store.js'
import { createPrefillMetrics, type PrefillMetrics } from './metrics.js'
import { JOB_STATES, type JobRecord, type JobSpec, type JobState, type JobView, TERMINAL } from './model.js'
import { planTitle, type TitlePlan } from './planner.js'
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js'
import { realSleep, type Sleep } from './sleep.js'
import type { PrefillTarget } from './target.js'
import { parseWindow } from './window.js'

export interface PrefillJobsOptions {
  readonly target: PrefillTarget
  readonly cacheDir: string
  readonly clock: Clock
  readonly sleep?: Sleep
  readonly metrics?: PrefillMetrics
  readonly retry?: RetryPolicy
  readonly timeZone?: string
  /** Finished jobs kept (records and plans); older ones are deleted. */
  readonly maxFinishedJobs?: number
  /** Jobs queued or running at once; more are refused with 503. */
  readonly maxPendingJobs?: number
  readonly persistEveryMs?: number
  readonly log?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void }
  /** Called when a title of a job becomes complete, with its plan (object list). */
  readonly onTitleComplete?: (jobId: string, plan: TitlePlan) => void
  /** Called after a job stops running (finished, cancelled or stopped for shutdown). */
  readonly onJobDone?: (job: JobView) => void
}

export class PrefillJobs {
  readonly metrics: PrefillMetrics
  private readonly options: PrefillJobsOptions
  private readonly store: JobStore
  private readonly records = new Map<string, JobRecord>()
  private readonly queue: string[] = []
  private active: JobRun | undefined
  private activeDone: Promise<void> | undefined
  private closed = false
  /** Set when {cacheDir}/prefill/ cannot be used: the edge serves on, prefill refuses jobs. */
  private unavailable: CdnError | undefined

  constructor(options: PrefillJobsOptions) {
    this.options = options
    this.store = new JobStore(options.cacheDir)
    this.metrics = options.metrics ?? createPrefillMetrics()
  }

  /** Loads persisted jobs and resumes the unfinished ones. */
  async start(): Promise<void> {
    let loaded: Awaited<ReturnType<JobStore['loadAll']>>
    try {
      await this.store.init()
      loaded = await this.store.loadAll()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      this.unavailable = new CdnError(
        'CDN_ERR_DISK',
        `prefill unavailable: cannot use ${this.store.dir} (${code})`,
        {
          cause: err,
          status: 503,
        },
      )
      this.options.log?.warn({ err }, 'prefill: job directory unusable; prefill disabled')
      return
    }
    const { records, problems } = loaded
    for (const p of problems)
      this.options.log?.warn({ problem: p }, 'prefill: skipped an unreadable job file')
    for (const r of records) {
      this.records.set(r.id, r)
      if (!TERMINAL.has(r.state)) {
        r.state = 'queued'
        r.reason = 'resumed after restart'
        this.queue.push(r.id)
      }
    }
    this.changed()
    this.pump()
  }

  /** Queues a job; an equal job still queued or running is returned instead. */
  async submit(spec: JobSpec): Promise<{ id: string; existing: boolean }> {
    if (this.closed) throw new CdnError('CDN_ERR_OVERLOADED', 'prefill is shutting down')
    if (this.unavailable) throw this.unavailable
    if (spec.window) parseWindow(spec.window, this.options.timeZone)
    const key = specKey(spec)
    for (const r of this.records.values())
      if (!TERMINAL.has(r.state) && specKey(r.spec) === key) return { id: r.id, existing: true }
    const pending = [...this.records.values()].filter((r) => !TERMINAL.has(r.state)).length
    if (pending >= (this.options.maxPendingJobs ?? 16))
      throw new CdnError(
        'CDN_ERR_OVERLOADED',
        `too many prefill jobs pending (${pending}); wait or cancel one`,
      )
    const now = this.options.clock.now()
    const record: JobRecord = {
      id: `pf-${now.toString(36)}-${randomBytes(4).toString('hex')}`,
      spec,
      state: 'queued',
      createdAt: now,
      planned: false,
      titles: spec.titles.map((t) => ({
        title: t.title,
        rank: t.rank,
        ...(t.weight === undefined ? {} : { weight: t.weight }),
        state: 'pending',
        objectsDone: 0,
        objectsTotal: 0,
        bytesDone: 0,
        bytesTotal: 0,
        bytesFetched: 0,
      })),
      unprotected: [],
    }
    try {
      await this.store.save(record)
    } catch (err) {
      throw new CdnError('CDN_ERR_DISK', 'prefill job could not be written', {
        cause: err,
        internal: { dir: this.store.dir },
        status: 503,
      })
    }
    this.records.set(record.id, record)
    this.queue.push(record.id)
    await this.prune()
    this.changed()
    this.pump()
    return { id: record.id, existing: false }
  }

  /** The plan a job with this spec would follow, without fetching any object. */
  async dryRun(spec: JobSpec): Promise<Plan> {
    const window = spec.window ? parseWindow(spec.window, this.options.timeZone) : undefined
    const plans = []
    for (const req of spec.titles)
      plans.push(
        await planTitle(this.options.target, req, {
          renditions: spec.renditions,
          concurrency: spec.concurrency,
          retry: this.options.retry ?? DEFAULT_RETRY,
          hooks: { sleep: this.options.sleep ?? realSleep },
        }),
      )
    const share = this.options.target.protectedShare
    return decide({
      titles: plans,
      capacityBytes: share.capacityBytes,
      protectedTitles: share.titles(),
      maxBytesPerSecond: spec.maxBytesPerSecond,
      window,
      nowMs: this.options.clock.now(),
      ...(spec.viewing ? { viewing: spec.viewing } : {}),
    })
  }

  get(id: string): JobView | undefined {
    const r = this.records.get(id)
    return r && this.view(r)
  }

  list(): JobView[] {
    return [...this.records.values()].map((r) => this.view(r))
  }

  /** Cancels a job; resolves once it has stopped (its partial titles released). */
  async cancel(id: string): Promise<JobView> {
    const r = this.records.get(id)
    if (!r) throw new CdnError('CDN_ERR_NOT_FOUND', `no prefill job ${id}`)
    if (TERMINAL.has(r.state)) return this.view(r)
    if (this.active?.record.id === id) {
      this.active.stop('cancel')
      await this.activeDone
    } else {
      this.queue.splice(this.queue.indexOf(id), 1)
      for (const t of r.titles)
        if (t.state === 'pending') Object.assign(t, { state: 'cancelled', reason: 'job cancelled' })
      r.state = 'cancelled'
      r.reason = 'cancelled by operator'
      r.finishedAt = this.options.clock.now()
      await this.store.save(r).catch((err: unknown) => this.persistError(err))
      this.changed()
    }
    return this.view(r)
  }

  /**
   * An operator purged a title: the running job stops filling it and reports it `purged`
   * (job-runner.ts `titlePurged`). Jobs still queued fill it when they run, as they were asked.
   */
  titlePurged(title: string): void {
    this.active?.titlePurged(title)
  }

  /** Resolves when no job is queued or running (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.activeDone) await this.activeDone
  }

  /** Stops the running job where it is (it resumes on the next start) and waits for it. */
  async close(): Promise<void> {
    this.closed = true
    this.active?.stop('shutdown')
    await this.activeDone
  }

  /** Ids of jobs queued or running. */
  pendingJobIds(): string[] {
    return [...this.records.values()].filter((r) => !TERMINAL.has(r.state)).map((r) => r.id)
  }

  /** Titles whose latest job filled them completely, with the version filled. */
  completedTitles(): Map<string, { version: string | undefined; jobId: string }> {
    const out = new Map<string, { version: string | undefined; jobId: string }>()
    for (const r of this.records.values())
      for (const t of r.titles)
        if (t.state === 'complete') out.set(t.title, { version: t.version, jobId: r.id })
    return out
  }

  /** The plan of a job (object lists included), once planned. */
  plan(id: string): Promise<Plan | undefined> {
    return this.store.loadPlan(id)
  }

  private pump(): void {
    if (this.active || this.closed) return
    const id = this.queue.shift()
    if (!id) return
    const record = this.records.get(id)!
    const deps: RunnerDeps = {
      target: this.options.target,
      store: this.store,
      clock: this.options.clock,
      sleep: this.options.sleep ?? realSleep,
      metrics: this.metrics,
      retry: this.options.retry ?? DEFAULT_RETRY,
      ...(this.options.timeZone ? { timeZone: this.options.timeZone } : {}),
      persistEveryMs: this.options.persistEveryMs ?? 1000,
      onChange: () => this.changed(),
      onPersistError: (err) => this.persistError(err),
      ...(this.options.onTitleComplete ? { onTitleComplete: this.options.onTitleComplete } : {}),
    }
    const run = new JobRun(record, deps)
    this.active = run
    this.activeDone = run
      .run()
      .catch((err: unknown) => this.options.log?.warn({ err, job: id }, 'prefill: job runner crashed'))
      .finally(() => {
        this.active = undefined
        this.activeDone = undefined
        this.changed()
        try {
          this.options.onJobDone?.(this.view(record))
        } catch (err) {
          this.options.log?.warn({ err, job: id }, 'prefill: onJobDone failed')
        }
        this.pump()
      })
  }

  private persistError(err: unknown): void {
    this.options.log?.warn({ err }, 'prefill: a job record could not be written')
  }

  private changed(): void {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>
    for (const r of this.records.values()) counts[r.state]++
    this.metrics.jobStates(counts)
  }

  /**
   * Deletes the oldest finished jobs past `maxFinishedJobs`, but never the latest job of a title
   * it completed: that record is what the title's protection and `titlesComplete` stand on (after
   * a restart, protection no job stands behind is released), so at most one more per complete
   * title is kept.
   */
  private async prune(): Promise<void> {
    const standing = new Set([...this.completedTitles().values()].map((c) => c.jobId))
    const finished = [...this.records.values()].filter((r) => TERMINAL.has(r.state))
    const excess = finished.length - (this.options.maxFinishedJobs ?? 50)
    const prunable = finished.filter((r) => !standing.has(r.id))
    for (const r of prunable.slice(0, Math.max(0, excess))) {
      this.records.delete(r.id)
      await this.store.remove(r.id).catch((err: unknown) => this.persistError(err))
    }
  }

  private view(r: JobRecord): JobView {
    const counted = r.titles.filter((t) => t.state !== 'left-out')
    const sum = (f: (t: (typeof counted)[number]) => number) => counted.reduce((s, t) => s + f(t), 0)
    const running = this.active?.record.id === r.id ? this.active : undefined
    const rate = running ? running.meter.rate() : 0
    const remaining = counted
      .filter((t) => t.state === 'pending' || t.state === 'filling')
      .reduce((s, t) => s + t.bytesTotal - t.bytesDone, 0)
    const speed = rate > 0 ? rate : r.spec.maxBytesPerSecond
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())
    return {
      id: r.id,
      state: r.state,
      ...(r.reason ? { reason: r.reason } : {}),
      createdAt: iso(r.createdAt)!,
      ...(r.startedAt ? { startedAt: iso(r.startedAt)! } : {}),
      ...(r.finishedAt ? { finishedAt: iso(r.finishedAt)! } : {}),
      objects: { done: sum((t) => t.objectsDone), total: sum((t) => t.objectsTotal) },
      bytes: {
        done: sum((t) => t.bytesDone),
        total: sum((t) => t.bytesTotal),
        fetched: sum((t) => t.bytesFetched),
      },
      rateBytesPerSec: Math.round(rate),
      ...(r.spec.maxBytesPerSecond ? { maxBytesPerSecond: r.spec.maxBytesPerSecond } : {}),
      ...(r.spec.window ? { window: r.spec.window } : {}),
      ...(TERMINAL.has(r.state) || !r.planned || !speed ? {} : { etaSec: Math.ceil(remaining / speed) }),
      titles: r.titles,
      unprotected: r.unprotected,
    }
  }
}

/**
 * Two specs are the same job when they ask for the same thing: titles (and their weights),
 * renditions, rates, window, concurrency and viewing model. One that differs in any of them is
 * a job of its own, never answered with a pending job that would ignore what it asks.
 */
function specKey(spec: JobSpec): string {
  return JSON.stringify([
    spec.source,
    spec.titles.map((t) => [t.title, t.weight ?? null]),
    spec.renditions ?? null,
    spec.maxBytesPerSecond ?? null,
    spec.window ?? null,
    spec.trickleBytesPerSecond ?? null,
    spec.concurrency,
    spec.viewing ?? null,
  ])
}
