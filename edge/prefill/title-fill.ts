/**
 * The fill of a job's titles once planned (job-runner.ts): every object of each title to fill,
 * held ones first, with bounded concurrency, each through the pacing (job-pacing.ts) and retried
 * while the upstream is down. Objects already held are not fetched but are still passed to
 * `fill` with the protect tag, which pins them. A title is complete once all its objects are,
 * fails alone on its own error, and stops where it is when purged; an upstream that stays down
 * through every retry ends the work of the whole job.
 */
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import type { Plan } from './fit.js'
import type { JobPacing } from './job-pacing.js'
import type { JobReport } from './job-report.js'
import type { PrefillMetrics } from './metrics.js'
import type { TitleResult } from './model.js'
import { describeError, notFound, type TitlePlan } from './planner.js'
import { forEachLimit } from './pool.js'
import { isUpstreamDown, type RetryPolicy, withRetry } from './retry.js'
import type { PrefillTarget } from './target.js'
import type { TitleStops } from './title-stops.js'

export interface TitleFillDeps {
  readonly target: PrefillTarget
  readonly clock: Clock
  readonly metrics: PrefillMetrics
  readonly retry: RetryPolicy
}

/** What of the running job a fill works within. */
export interface FillJob {
  readonly report: JobReport
  readonly pacing: JobPacing
  /** Titles purged while the job runs, and each title's waits. */
  readonly stops: TitleStops
  /** Ends when the job is stopped or gives up. */
  readonly work: AbortSignal
  /** The upstream stayed down through every retry: ends the work; the job fails with `err`. */
  upstreamDown(err: unknown): void
}

export class TitleFill {
  private readonly deps: TitleFillDeps
  private readonly job: FillJob

  constructor(deps: TitleFillDeps, job: FillJob) {
    this.deps = deps
    this.job = job
  }

  /** Fills the titles `plan` decided to fill that are still pending or filling (a resumed job). */
  async run(plan: Plan): Promise<void> {
    const { report, stops } = this.job
    const results = new Map(report.record.titles.map((t) => [t.title, t]))
    const work: Array<{ t: TitleResult; plan: TitlePlan; index: number }> = []
    const remaining = new Map<string, number>()
    // A title purged while the job planned was planned again as pending: it is purged still.
    for (const t of results.values()) if (stops.has(t.title)) report.markPurged(t)
    for (const d of plan.titles) {
      const t = results.get(d.plan.title)
      if (!t || d.decision !== 'fill' || (t.state !== 'pending' && t.state !== 'filling')) continue
      // A resumed title recounts from zero; what is held is skipped, not refetched.
      t.objectsDone = 0
      t.bytesDone = 0
      remaining.set(t.title, d.plan.objects.length)
      for (let index = 0; index < d.plan.objects.length; index++) work.push({ t, plan: d.plan, index })
    }
    // Held objects first: pinning them costs no fetch, and a title released at planning time is
    // pinned again at once rather than after hours of a capped fill (stable: plan order within).
    work.sort(
      (a, b) =>
        Number(b.plan.objects[b.index]!.held === true) - Number(a.plan.objects[a.index]!.held === true),
    )
    await forEachLimit(
      work,
      report.record.spec.concurrency,
      async ({ t, plan: tp, index }) => {
        if (t.state !== 'pending' && t.state !== 'filling') return
        if (t.state === 'pending') report.titleStarted(t)
        const o = tp.objects[index]!
        try {
          await this.fillOne(t, o.path, o.bytes)
        } catch (err) {
          if (this.job.work.aborted || stops.has(t.title)) return
          if (isUpstreamDown(describeError(err))) {
            // The upstream stayed down through every retry: stop the whole job, not one title.
            this.job.upstreamDown(err)
            return
          }
          await report.titleFailed(t, err)
          return
        }
        const left = (remaining.get(t.title) ?? 1) - 1
        remaining.set(t.title, left)
        if (left === 0 && t.state === 'filling') await report.titleComplete(t, tp)
        else await report.persist()
      },
      this.job.work,
    )
  }

  private async fillOne(t: TitleResult, path: string, plannedBytes: number): Promise<void> {
    const target = this.deps.target
    const { report, stops, work } = this.job
    const protect = { title: t.title, rank: t.rank }
    const signal = stops.signal(t.title)
    const held = await target.has(path)
    const admitted = held ? this.job.pacing.held() : await this.job.pacing.admit(plannedBytes, signal)
    if (!admitted) throw abortError()
    const { pace } = admitted
    let res: Awaited<ReturnType<PrefillTarget['fill']>>
    try {
      res = await withRetry(
        () => {
          // Checked as the fetch starts (in the same tick): a purge begun before it never sees
          // the title stored again after it.
          if (signal.aborted) throw abortError()
          return target.fill(path, { protect, signal: work, ...(pace ? { pace } : {}) })
        },
        this.deps.retry,
        report.retryHooks(signal),
      )
    } catch (err) {
      if (signal.aborted) throw abortError()
      this.deps.metrics.object('failed')
      throw notFound(err, path, t.title)
    }
    if (work.aborted) throw abortError()
    if (res.how === 'held') this.deps.metrics.object('held')
    else {
      admitted.fetched(res.bytes)
      t.bytesFetched += res.bytes
      this.deps.metrics.bytes(res.bytes)
      this.deps.metrics.object('fetched')
    }
    // Fetched, but the purge that began meanwhile waited for it and then removed it: not done.
    if (stops.has(t.title)) throw abortError()
    t.objectsDone++
    t.bytesDone += plannedBytes
  }
}

function abortError(): CdnError {
  return new CdnError('CDN_ERR_CANCELLED', 'prefill stopped')
}
