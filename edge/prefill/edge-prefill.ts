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
 *
 * A title re-ingested since its prefill: once the edge holds a master naming another version
 * than the one filled (a viewer's miss or a refresh stored it, or it was held at start), the
 * filled version is superseded: it leaves `titlesComplete` (steering would otherwise prefer this
 * edge for a version players no longer ask for) and its protection is released to ordinary
 * eviction, unless a job queued or running for the title is about to replace it.
 */
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../src/clock.js'
import { masterPath, parseVodPath } from '../../src/http/paths.js'
import { type EdgeFillPort, EdgePrefillTarget } from './edge-target.js'
import { PrefillJobs } from './jobs.js'
import type { TitlePlan } from './planner.js'
import type { PrefillMetrics } from './metrics.js'
import { readMaster } from './playlists.js'
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
  /** The master's cache key of each complete title, to the title. */
  private readonly masters = new Map<string, string>()
  /** Complete titles whose held master names another version: title → that version. */
  private readonly superseded = new Map<string, string>()
  /** Stops hearing of purges (close). */
  private readonly offPurge: (() => void) | undefined
  /** Stops hearing of stored objects (close). */
  private readonly offStored: (() => void) | undefined

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
    this.offStored = o.port.onStored?.((key) => {
      const title = this.masters.get(key)
      if (title !== undefined) this.checkVersion(title)
    })
  }

  /** Loads jobs, re-pins complete titles, releases orphaned protection, resumes jobs. */
  async start(): Promise<void> {
    await this.jobs.start()
    await this.refresh()
    const wanted = new Set([...this.complete.keys(), ...this.pendingTitles()])
    for (const p of this.options.port.protection.titles())
      if (!wanted.has(p.title)) this.options.port.protection.unprotectTitle(p.title)
  }

  /** Titles of the jobs queued or running. */
  private pendingTitles(): Set<string> {
    const out = new Set<string>()
    for (const id of this.jobs.pendingJobIds())
      for (const t of this.jobs.get(id)?.titles ?? []) out.add(t.title)
    return out
  }

  /** Records a title the running job just completed (its objects are pinned already). */
  private completed(jobId: string, plan: TitlePlan): void {
    const keys = plan.objects.map((o) => this.options.port.keyOf(o.path))
    this.setComplete(plan.title, { jobId, version: plan.version, keys })
  }

  private setComplete(title: string, c: CompleteTitle): void {
    this.complete.set(title, c)
    this.masters.set(this.options.port.keyOf(masterPath(title)), title)
    this.superseded.delete(title)
  }

  private dropComplete(title: string): void {
    this.complete.delete(title)
    this.masters.delete(this.options.port.keyOf(masterPath(title)))
    this.superseded.delete(title)
  }

  /**
   * Reads the held master of a complete title (in the background; nothing held, nothing
   * done) and supersedes the filled version when the master names another one.
   */
  private checkVersion(title: string): void {
    const filled = this.complete.get(title)
    if (filled?.version === undefined) return
    const path = masterPath(title)
    this.options.port
      .readHeld(this.options.port.keyOf(path))
      .then((body) => {
        if (!body || this.complete.get(title) !== filled) return
        const named = readMaster(body.toString('utf8'), path)
          .map((v) => parseVodPath(v.path.split('?')[0]!))
          .find((p) => p?.kind === 'media')
        if (named?.kind !== 'media' || named.version === filled.version) return
        if (this.superseded.get(title) === named.version) return
        this.superseded.set(title, named.version)
        // A job queued or running for the title fills the new version and replaces this one.
        const pending = this.pendingTitles().has(title)
        if (!pending) this.options.port.protection.unprotectTitle(title)
        this.options.log?.info(
          { title, filled: filled.version, current: named.version, released: !pending },
          'prefill: title re-ingested since its prefill; the filled version is no longer complete',
        )
      })
      .catch((err: unknown) =>
        this.options.log?.warn({ err, title }, 'prefill: reading a held master failed'),
      )
  }

  /** Brings the complete-title table in line with the job records (and pins their objects). */
  private async refresh(): Promise<void> {
    const latest = this.jobs.completedTitles()
    for (const title of [...this.complete.keys()]) if (!latest.has(title)) this.dropComplete(title)
    for (const [title, { jobId, version }] of latest) {
      if (this.complete.get(title)?.jobId === jobId) continue
      const plan = await this.jobs.plan(jobId)
      const decided = plan?.titles.find((d) => d.plan.title === title)
      if (!decided) continue
      const keys = decided.plan.objects.map((o) => this.options.port.keyOf(o.path))
      for (const key of keys) this.options.port.protection.protectKey(key, { title, rank: decided.plan.rank })
      this.setComplete(title, { jobId, version, keys })
      this.checkVersion(title)
    }
  }

  /** Titles with every object of the version last prefilled still held. */
  titlesComplete(): string[] {
    const out: string[] = []
    for (const [title, c] of this.complete)
      if (!this.superseded.has(title) && c.keys.every((k) => this.options.port.holds(k))) out.push(title)
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
    this.offStored?.()
    return this.jobs.close()
  }
}
