/**
 * Runs one prefill job: plan (or reload the plan of a resumed job), release earlier titles
 * the plan evicts, then fetch every object with bounded concurrency under the byte-rate cap
 * and the fill window, recording per-title results as it goes.
 *
 * Objects already held are not fetched (so a resumed job or a repeated title costs nothing
 * upstream) but are still passed to `fill` with the protect tag, which pins them. A title
 * fails alone (unknown title, bad playlist, 404 segment) and the others go on; an upstream
 * that stays down through every retry fails the job with the reason.
 */
import type { Clock } from '../../src/clock.js'
import { CdnError, isCdnError } from '../../src/errors.js'
import { decide, type Plan } from './fit.js'
import type { JobStore } from './job-store.js'
import type { PrefillMetrics } from './metrics.js'
import { type JobRecord, resultFor, summary, type TitleResult } from './model.js'
import { describeError, notFound, planTitle, type TitleError, type TitlePlan } from './planner.js'
import { forEachLimit } from './pool.js'
import { ByteRateLimiter, RateMeter } from './rate-limiter.js'
import { type RetryHooks, type RetryPolicy, withRetry } from './retry.js'
import type { Sleep } from './sleep.js'
import type { PrefillTarget } from './target.js'
import { TitleStops } from './title-stops.js'
import { type FillWindow, parseWindow, rateNow, windowState } from './window.js'

export interface RunnerDeps {
  readonly target: PrefillTarget
  readonly store: JobStore
  readonly clock: Clock
  readonly sleep: Sleep
  readonly metrics: PrefillMetrics
  readonly retry: RetryPolicy
  /** IANA zone for windows; undefined = the process's local zone. */
  readonly timeZone?: string
  /** Most often a running job's record is rewritten (progress), ms. */
  readonly persistEveryMs: number
  /** Called whenever a job changes state. */
  readonly onChange?: () => void
  /** A title just became complete (every object of `plan` held). */
  readonly onTitleComplete?: (jobId: string, plan: TitlePlan) => void
  /** A record could not be written (disk full, unwritable): the job goes on in memory. */
  readonly onPersistError?: (err: unknown) => void
}

/** Why a run was aborted: a cancel is final, a shutdown leaves the job to resume. */
export type StopReason = 'cancel' | 'shutdown'

/**
 * A paced fill's bucket, in ms at the cap, and its shortest hold. A hold per chunk of a few ms
 * (64 KiB at 20 MB/s: 3 ms) cost the edge's event loop a timer, a pause and a resume for every
 * chunk of every fill, beside the chunk's own work, and that is what viewers queue behind
 * (issue 19); so a body in debt sleeps at least PACED_HOLD_MS and then reads what the bucket
 * refilled (about 1 MB at 20 MB/s) at once. The bucket holds twice the hold, so the rate is
 * kept.
 */
const PACED_BURST_MS = 100
const PACED_HOLD_MS = 50

export class JobRun {
  readonly record: JobRecord
  readonly meter: RateMeter
  private readonly deps: RunnerDeps
  private readonly controller = new AbortController()
  /** Aborted by stop() and also when the upstream stays down: ends the work, not the job. */
  private readonly work = new AbortController()
  private gaveUp: unknown
  private readonly window: FillWindow | undefined
  private readonly limiter: ByteRateLimiter
  private pausedWorkers = 0
  /** Titles purged while the job runs, and each title's waits (titlePurged). */
  private readonly stops: TitleStops
  /** When each title began filling (monotonic ms), for its time by result. */
  private readonly started = new Map<string, number>()
  private stateBeforePause: JobRecord['state'] = 'running'
  private lastPersist = Number.NEGATIVE_INFINITY

  constructor(record: JobRecord, deps: RunnerDeps) {
    this.record = record
    this.deps = deps
    this.meter = new RateMeter(deps.clock)
    this.window = record.spec.window ? parseWindow(record.spec.window, deps.timeZone) : undefined
    this.stops = new TitleStops(new Set(record.spec.titles.map((t) => t.title)), this.work.signal)
    // A target that paces bodies is charged chunk by chunk from a small bucket (PACED_BURST_MS).
    this.limiter = new ByteRateLimiter({
      rate: this.rate(),
      clock: deps.clock,
      ...(deps.target.paces ? { burstMs: PACED_BURST_MS, minHoldMs: PACED_HOLD_MS } : {}),
    })
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
    if (t) this.markPurged(t)
  }

  private get signal(): AbortSignal {
    return this.controller.signal
  }

  private get workSignal(): AbortSignal {
    return this.work.signal
  }

  private rate(): number | undefined {
    const s = this.record.spec
    return rateNow(this.window, this.deps.clock.now(), s.maxBytesPerSecond, s.trickleBytesPerSecond)
  }

  private setState(state: JobRecord['state'], reason?: string): void {
    if (this.record.state === state && this.record.reason === reason) return
    this.record.state = state
    if (reason === undefined) delete this.record.reason
    else this.record.reason = reason
    this.deps.onChange?.()
    void this.persist(true)
  }

  private async persist(force = false): Promise<void> {
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
  private hooks(signal = this.workSignal): RetryHooks {
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

  async run(): Promise<void> {
    const r = this.record
    r.startedAt ??= this.deps.clock.now()
    try {
      const plan = await this.loadOrMakePlan()
      if (this.signal.aborted) return await this.finishAborted()
      this.setState('running')
      await this.fill(plan)
      if (this.signal.aborted) return await this.finishAborted()
      if (this.gaveUp !== undefined) await this.failRemaining(this.gaveUp)
      const upstreamDown = r.titles.find((t) => t.state === 'failed' && isUpstreamDown(t.error))
      if (upstreamDown) this.finish('failed', upstreamDown.reason)
      else if (this.gaveUp !== undefined) this.finish('failed', describeError(this.gaveUp).message)
      else this.finish('completed', summary(r.titles))
    } catch (err) {
      if (this.signal.aborted) return await this.finishAborted()
      this.finish('failed', describeError(err).message)
    }
    await this.persist(true)
  }

  private finish(state: 'completed' | 'failed' | 'cancelled', reason: string | undefined): void {
    this.record.finishedAt = this.deps.clock.now()
    this.setState(state, reason)
  }

  private async finishAborted(): Promise<void> {
    if (this.signal.reason !== 'cancel') return await this.persist(true)
    for (const t of this.record.titles) {
      if (t.state !== 'pending' && t.state !== 'filling') continue
      if (t.state === 'filling') this.deps.target.protectedShare.unprotectTitle(t.title)
      t.state = 'cancelled'
      t.reason = 'job cancelled'
      t.finishedAt = this.deps.clock.now()
    }
    this.finish('cancelled', 'cancelled by operator')
    await this.persist(true)
  }

  private async loadOrMakePlan(): Promise<Plan> {
    const r = this.record
    if (r.planned) {
      const plan = await this.deps.store.loadPlan(r.id)
      if (plan) return plan
      r.planned = false
    }
    this.setState('planning')
    const plans: TitlePlan[] = []
    for (const req of r.spec.titles) {
      if (this.signal.aborted) break
      plans.push(
        await planTitle(this.deps.target, req, {
          renditions: r.spec.renditions,
          concurrency: r.spec.concurrency,
          retry: this.deps.retry,
          hooks: this.hooks(),
        }),
      )
    }
    const share = this.deps.target.protectedShare
    const plan = decide({
      titles: plans,
      capacityBytes: share.capacityBytes,
      protectedTitles: share.titles(),
      maxBytesPerSecond: r.spec.maxBytesPerSecond,
      window: this.window,
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
    // LRU. The plan's held objects are pinned again first of all (fill()).
    for (const d of plan.titles)
      if (d.decision === 'fill') this.deps.target.protectedShare.unprotectTitle(d.plan.title)
    try {
      await this.deps.store.savePlan(r.id, plan)
      r.planned = true
    } catch (err) {
      // Without its plan on disk a resumed job plans again; the job itself goes on.
      this.deps.onPersistError?.(err)
    }
    await this.persist(true)
    return plan
  }

  /** Waits while outside the window with no trickle; keeps the limiter's rate current. */
  private async awaitWindow(signal: AbortSignal): Promise<void> {
    for (;;) {
      const rate = this.rate()
      this.limiter.setRate(rate)
      if (rate !== 0 || signal.aborted) {
        if (this.record.state === 'waiting') this.setState('running')
        return
      }
      if (!this.window) return this.neverFills()
      const st = windowState(this.window, this.deps.clock.now())
      this.setState(
        'waiting',
        `outside the fill window ${this.window.spec}; opens in ${Math.ceil(st.msUntilOpen / 1000)} s`,
      )
      await this.deps.sleep(Math.min(Math.max(st.msUntilOpen, 1), 60_000), signal)
    }
  }

  /**
   * A rate of 0 with no window to open is a cap of 0, which would wait for ever. No request
   * passes one (request.ts), but a job an older edge accepted may resume with it: the job stops
   * and fails saying why, rather than hang or crash.
   */
  private neverFills(): never {
    this.gaveUp ??= new CdnError(
      'CDN_ERR_BAD_BODY',
      'maxBytesPerSecond: a cap of 0 bytes per second never fills anything; submit the job again with 1 or more',
      { details: { field: 'maxBytesPerSecond' } },
    )
    this.work.abort('never-fills')
    throw abortError()
  }

  private async fill(plan: Plan): Promise<void> {
    const results = new Map(this.record.titles.map((t) => [t.title, t]))
    const work: Array<{ t: TitleResult; plan: TitlePlan; index: number }> = []
    const remaining = new Map<string, number>()
    // A title purged while the job planned was planned again as pending: it is purged still.
    for (const t of results.values()) if (this.stops.has(t.title)) this.markPurged(t)
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
      this.record.spec.concurrency,
      async ({ t, plan: tp, index }) => {
        if (t.state !== 'pending' && t.state !== 'filling') return
        if (t.state === 'pending') {
          t.state = 'filling'
          t.startedAt = this.deps.clock.now()
          this.started.set(t.title, this.deps.clock.monotonic())
        }
        const o = tp.objects[index]!
        try {
          await this.fillOne(t, o.path, o.bytes)
        } catch (err) {
          if (this.workSignal.aborted || this.stops.has(t.title)) return
          if (isUpstreamDown(describeError(err))) {
            // The upstream stayed down through every retry: stop the whole job, not one title.
            this.gaveUp = err
            this.work.abort('upstream-down')
            return
          }
          await this.failTitle(t, err, this.started.get(t.title))
          return
        }
        const left = (remaining.get(t.title) ?? 1) - 1
        remaining.set(t.title, left)
        if (left === 0 && t.state === 'filling') {
          t.state = 'complete'
          t.finishedAt = this.deps.clock.now()
          this.deps.onTitleComplete?.(this.record.id, tp)
          const t0 = this.started.get(t.title)
          this.deps.metrics.titleDone(
            'complete',
            t0 === undefined ? 0 : (this.deps.clock.monotonic() - t0) / 1000,
          )
          await this.persist(true)
        } else await this.persist()
      },
      this.workSignal,
    )
  }

  /** Marks every title not finished as failed with the upstream's reason. */
  private async failRemaining(err: unknown): Promise<void> {
    for (const t of this.record.titles)
      if (t.state === 'pending' || t.state === 'filling') await this.failTitle(t, err, undefined)
  }

  private async fillOne(t: TitleResult, path: string, plannedBytes: number): Promise<void> {
    const target = this.deps.target
    const protect = { title: t.title, rank: t.rank }
    const signal = this.stops.signal(t.title)
    const held = await target.has(path)
    // Under a cap, a target that paces reads each body at the cap (charged as chunks arrive, so
    // an object starts once the bucket is out of debt); another is charged whole objects upfront.
    let paced = false
    if (!held) {
      await this.awaitWindow(signal)
      paced = target.paces === true && this.limiter.currentRate !== undefined
      const upfront = paced ? 0 : plannedBytes
      if (!(await this.limiter.take(upfront, this.deps.sleep, signal))) throw abortError()
    }
    const pace = paced ? (n: number) => this.limiter.pace(n) : undefined
    let res: Awaited<ReturnType<PrefillTarget['fill']>>
    try {
      res = await withRetry(
        () => {
          // Checked as the fetch starts (in the same tick): a purge begun before it never sees
          // the title stored again after it.
          if (signal.aborted) throw abortError()
          return target.fill(path, { protect, signal: this.workSignal, ...(pace ? { pace } : {}) })
        },
        this.deps.retry,
        this.hooks(signal),
      )
    } catch (err) {
      if (signal.aborted) throw abortError()
      this.deps.metrics.object('failed')
      throw notFound(err, path, t.title)
    }
    if (this.workSignal.aborted) throw abortError()
    if (res.how === 'held') this.deps.metrics.object('held')
    else {
      // A paced fill was charged as its bytes came (one that joined a viewer's fetch: not at all).
      if (!paced) this.limiter.charge(res.bytes - (held ? 0 : plannedBytes))
      this.meter.add(res.bytes)
      t.bytesFetched += res.bytes
      this.deps.metrics.bytes(res.bytes)
      this.deps.metrics.object('fetched')
    }
    // Fetched, but the purge that began meanwhile waited for it and then removed it: not done.
    if (this.stops.has(t.title)) throw abortError()
    t.objectsDone++
    t.bytesDone += plannedBytes
  }

  /** A purge reached a title still to finish: it stops, released, and says how far it got. */
  private markPurged(t: TitleResult): void {
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

function isUpstreamDown(e: TitleError | undefined): boolean {
  return e?.code === 'CDN_ERR_UPSTREAM_DOWN'
}

function abortError(): CdnError {
  return new CdnError('CDN_ERR_CANCELLED', 'prefill stopped')
}
