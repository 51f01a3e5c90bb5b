/**
 * Runs one prefill job: plan (or reload the plan of a resumed job), release earlier titles
 * the plan evicts, then fill the titles (title-fill.ts) under the byte-rate cap and the fill
 * window (job-pacing.ts), recording per-title results as it goes (job-report.ts).
 *
 * A title fails alone (unknown title, bad playlist, 404 segment) and the others go on; an
 * upstream that stays down through every retry fails the job with the reason. A cancel is
 * final; a shutdown stops the job where it is, to resume at the next start.
 */
import { decide, type Plan } from './fit.js'
import { JobPacing, type JobPacingDeps } from './job-pacing.js'
import { JobReport, type JobReportDeps } from './job-report.js'
import { type JobRecord, nothingFilled, resultFor, summary } from './model.js'
import { describeError, planTitle, type TitlePlan } from './planner.js'
import type { RateMeter } from './rate-limiter.js'
import { isUpstreamDown } from './retry.js'
import { TitleFill, type TitleFillDeps } from './title-fill.js'
import { TitleStops } from './title-stops.js'

/** What a run is given: its report's, its pacing's and its fill's collaborators. */
export interface RunnerDeps extends JobReportDeps, JobPacingDeps, TitleFillDeps {}

/** Why a run was aborted: a cancel is final, a shutdown leaves the job to resume. */
export type StopReason = 'cancel' | 'shutdown'

export class JobRun {
  readonly record: JobRecord
  /** The rate the job achieves. */
  readonly meter: RateMeter
  private readonly deps: RunnerDeps
  private readonly controller = new AbortController()
  /** Aborted by stop() and also when the job gives up: ends the work, not the job. */
  private readonly work = new AbortController()
  private gaveUp: unknown
  private readonly report: JobReport
  private readonly pacing: JobPacing
  /** Titles purged while the job runs, and each title's waits (titlePurged). */
  private readonly stops: TitleStops

  constructor(record: JobRecord, deps: RunnerDeps) {
    this.record = record
    this.deps = deps
    this.report = new JobReport(record, deps)
    this.pacing = new JobPacing(deps, this.report, (err) => this.giveUp(err, 'never-fills'))
    this.meter = this.pacing.meter
    this.stops = new TitleStops(new Set(record.spec.titles.map((t) => t.title)), this.work.signal)
    // A resumed job's purges stand: one that came while it planned is in no saved plan, and
    // planning again would make the title pending.
    for (const t of record.titles) if (t.state === 'purged') this.stops.purge(t.title)
  }

  stop(reason: StopReason): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason)
    if (!this.work.signal.aborted) this.work.abort(reason)
  }

  /**
   * An operator purged `title` (DELETE /admin/cache/vod/{title}): the purge wins. The title's
   * fill stops where it is (its waits end, no fetch of it starts, one running is not counted
   * done), what it pinned is released, and it is reported `purged`, never complete; the job goes
   * on with its other titles. A title already finished keeps its result.
   */
  titlePurged(title: string): void {
    if (!this.stops.purge(title)) return
    const t = this.record.titles.find((x) => x.title === title)
    if (t) this.report.markPurged(t)
  }

  private get signal(): AbortSignal {
    return this.controller.signal
  }

  /**
   * Ends the work (not the job), which then fails with `err`: the upstream stayed down through
   * every retry, or a cap of 0 would never fill anything.
   */
  private giveUp(err: unknown, why: 'upstream-down' | 'never-fills'): void {
    this.gaveUp ??= err
    this.work.abort(why)
  }

  async run(): Promise<void> {
    const r = this.record
    r.startedAt ??= this.deps.clock.now()
    try {
      const plan = await this.loadOrMakePlan()
      if (this.signal.aborted) return await this.finishAborted()
      this.report.setState('running')
      await this.fill(plan)
      if (this.signal.aborted) return await this.finishAborted()
      if (this.gaveUp !== undefined) await this.report.failRemaining(this.gaveUp)
      const upstreamDown = r.titles.find((t) => t.state === 'failed' && isUpstreamDown(t.error))
      if (upstreamDown) this.report.finish('failed', upstreamDown.reason)
      else if (this.gaveUp !== undefined) this.report.finish('failed', describeError(this.gaveUp).message)
      else this.report.finish(nothingFilled(r.titles) ? 'failed' : 'completed', summary(r.titles))
    } catch (err) {
      if (this.signal.aborted) return await this.finishAborted()
      this.report.finish('failed', describeError(err).message)
    }
    await this.report.persist(true)
  }

  private async finishAborted(): Promise<void> {
    if (this.signal.reason !== 'cancel') return await this.report.persist(true)
    this.report.cancel()
    await this.report.persist(true)
  }

  private async loadOrMakePlan(): Promise<Plan> {
    const r = this.record
    if (r.planned) {
      const plan = await this.deps.store.loadPlan(r.id)
      if (plan) return plan
      r.planned = false
    }
    this.report.setState('planning')
    const plans: TitlePlan[] = []
    for (const req of r.spec.titles) {
      if (this.signal.aborted) break
      plans.push(
        await planTitle(this.deps.target, req, {
          renditions: r.spec.renditions,
          concurrency: r.spec.concurrency,
          retry: this.deps.retry,
          hooks: this.report.retryHooks(this.work.signal),
        }),
      )
    }
    const share = this.deps.target.protectedShare
    const plan = decide({
      titles: plans,
      capacityBytes: share.capacityBytes,
      protectedTitles: share.titles(),
      maxBytesPerSecond: r.spec.maxBytesPerSecond,
      window: this.pacing.window,
      nowMs: this.deps.clock.now(),
      ...(r.spec.viewing ? { viewing: r.spec.viewing } : {}),
    })
    if (this.signal.aborted) return plan
    r.titles = plan.titles.map((d) => resultFor(d.plan, d.decision, d.reason))
    for (const u of plan.unprotect) {
      this.deps.target.protectedShare.unprotectTitle(u.title)
      r.unprotected.push(u.title)
    }
    // A title filled again is protected as this plan says, no more: what an earlier plan pinned
    // and this one leaves out (the tail a viewing model no longer ranks) goes back to ordinary
    // LRU. The plan's held objects are pinned again first of all (title-fill.ts).
    for (const d of plan.titles)
      if (d.decision === 'fill') this.deps.target.protectedShare.unprotectTitle(d.plan.title)
    try {
      await this.deps.store.savePlan(r.id, plan)
      r.planned = true
    } catch (err) {
      // Without its plan on disk a resumed job plans again; the job itself goes on.
      this.deps.onPersistError?.(err)
    }
    await this.report.persist(true)
    return plan
  }

  /** Fills the plan's titles (title-fill.ts) until done, or until the work ends. */
  private async fill(plan: Plan): Promise<void> {
    await new TitleFill(this.deps, {
      report: this.report,
      pacing: this.pacing,
      stops: this.stops,
      work: this.work.signal,
      upstreamDown: (err) => this.giveUp(err, 'upstream-down'),
    }).run(plan)
  }
}
