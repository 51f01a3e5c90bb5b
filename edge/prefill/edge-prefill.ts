/**
 * Prefill on a real edge: the job manager over the edge's fill port, the popularity counter
 * the request path feeds, the routes, and the bookkeeping that makes protection and
 * `titlesComplete` survive a restart. wiring.ts builds one for the edge app, which registers
 * `routes` and `close()`s it in onClose; whoever runs the edge (edge/main.ts `createEdge`)
 * calls `start()` before listening. A cluster worker never starts its own: the primary runs
 * the jobs.
 *
 * Source of truth: the job records. At start, every title whose latest job completed is
 * re-pinned (objects held before a prefill carry no protect mark on disk), and protected
 * titles no job stands behind are released.
 */
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../src/clock.js'
import { type EdgeFillPort, EdgePrefillTarget } from './edge-target.js'
import { PrefillJobs } from './jobs.js'
import type { TitlePlan } from './planner.js'
import type { PrefillMetrics } from './metrics.js'
import { Popularity } from './popularity.js'
import type { RequestLimits } from './request.js'
import type { RetryPolicy } from './retry.js'
import { prefillRoutes } from './routes.js'
import type { Sleep } from './sleep.js'

export interface EdgePrefillOptions {
  readonly port: EdgeFillPort
  readonly cacheDir: string
  readonly clock: Clock
  readonly adminToken: string | undefined
  /** Objects fetched at once by a job that does not say. */
  readonly concurrency: number
  readonly maxConcurrency: number
  /** Rate outside a job's window (bytes/s); 0 = wait for the window. */
  readonly trickleBytesPerSecond: number
  readonly timeZone?: string
  readonly popularityHalfLifeMs: number
  readonly popularityMaxTitles: number
  readonly metrics?: PrefillMetrics
  readonly retry?: RetryPolicy
  readonly sleep?: Sleep
  readonly log?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void }
}

interface CompleteTitle {
  readonly jobId: string
  readonly version: string | undefined
  readonly keys: readonly string[]
}

export class EdgePrefill {
  readonly jobs: PrefillJobs
  readonly popularity: Popularity
  readonly target: EdgePrefillTarget
  private readonly options: EdgePrefillOptions
  private readonly complete = new Map<string, CompleteTitle>()
  /** Stops hearing of purges (close). */
  private readonly offPurge: (() => void) | undefined

  constructor(o: EdgePrefillOptions) {
    this.options = o
    this.target = new EdgePrefillTarget(o.port)
    this.popularity = new Popularity({
      clock: o.clock,
      halfLifeMs: o.popularityHalfLifeMs,
      maxTitles: o.popularityMaxTitles,
    })
    this.jobs = new PrefillJobs({
      target: this.target,
      cacheDir: o.cacheDir,
      clock: o.clock,
      ...(o.metrics ? { metrics: o.metrics } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.sleep ? { sleep: o.sleep } : {}),
      ...(o.timeZone ? { timeZone: o.timeZone } : {}),
      ...(o.log ? { log: o.log } : {}),
      onTitleComplete: (jobId, plan) => this.completed(jobId, plan),
      onJobDone: () => {
        this.refresh().catch((err: unknown) =>
          o.log?.warn({ err }, 'prefill: refreshing complete titles failed'),
        )
      },
    })
    // A purge wins over the running job's fill of the title (DELETE /admin/cache/vod/{title}).
    this.offPurge = o.port.onPurge?.((title) => this.jobs.titlePurged(title))
  }

  /** Loads jobs, re-pins complete titles, releases orphaned protection, resumes jobs. */
  async start(): Promise<void> {
    await this.jobs.start()
    await this.refresh()
    const wanted = new Set(this.complete.keys())
    for (const id of this.jobs.pendingJobIds())
      for (const t of this.jobs.get(id)?.titles ?? []) wanted.add(t.title)
    for (const p of this.options.port.protection.titles())
      if (!wanted.has(p.title)) this.options.port.protection.unprotectTitle(p.title)
  }

  /** Records a title the running job just completed (its objects are pinned already). */
  private completed(jobId: string, plan: TitlePlan): void {
    const keys = plan.objects.map((o) => this.options.port.keyOf(o.path))
    this.complete.set(plan.title, { jobId, version: plan.version, keys })
  }

  /** Brings the complete-title table in line with the job records (and pins their objects). */
  private async refresh(): Promise<void> {
    const latest = this.jobs.completedTitles()
    for (const title of [...this.complete.keys()]) if (!latest.has(title)) this.complete.delete(title)
    for (const [title, { jobId, version }] of latest) {
      if (this.complete.get(title)?.jobId === jobId) continue
      const plan = await this.jobs.plan(jobId)
      const decided = plan?.titles.find((d) => d.plan.title === title)
      if (!decided) continue
      const keys = decided.plan.objects.map((o) => this.options.port.keyOf(o.path))
      for (const key of keys) this.options.port.protection.protectKey(key, { title, rank: decided.plan.rank })
      this.complete.set(title, { jobId, version, keys })
    }
  }

  /** Titles with every object of the version last prefilled still held. */
  titlesComplete(): string[] {
    const out: string[] = []
    for (const [title, c] of this.complete)
      if (c.keys.every((k) => this.options.port.holds(k))) out.push(title)
    return out.sort()
  }

  /**
   * The request path's one call (the content handler has already validated the target); `n`
   * requests at once for a cluster worker's batch (edge/cluster).
   */
  countRequest(title: string, n = 1): void {
    this.popularity.hit(title, n, n)
  }

  /** A fastify plugin with the routes; register it on the edge app. */
  routes = async (app: FastifyInstance): Promise<void> => {
    const limits: RequestLimits = {
      defaultConcurrency: this.options.concurrency,
      maxConcurrency: this.options.maxConcurrency,
      trickleBytesPerSecond: this.options.trickleBytesPerSecond,
      maxTitles: 1000,
      ...(this.options.timeZone ? { timeZone: this.options.timeZone } : {}),
    }
    await prefillRoutes(app, {
      jobs: this.jobs,
      popularity: this.popularity,
      adminToken: this.options.adminToken,
      limits,
    })
  }

  close(): Promise<void> {
    this.offPurge?.()
    return this.jobs.close()
  }
}
