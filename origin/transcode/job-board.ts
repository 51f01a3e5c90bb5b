/**
 * Ingest jobs shared by every origin of one object store. A job submitted to any origin is
 * recorded in the store (`_cdn/jobs/{id}.json`: spec, state, progress, owner) and run exactly
 * once, by the origin that claims it:
 * - with conditional writes, any job-running origin claims by creating `_cdn/jobs/{id}.claim`
 *   with If-None-Match: * (one create wins);
 * - with the catalogue in etcd ('etcd'), the same claim is an etcd create of that key (one
 *   transaction wins);
 * - without them (Swift), the single-writer rule: only the writer origin runs jobs (the others
 *   are started with --follower and only record what they are given); it takes every queued
 *   record it finds.
 * The origin that receives a job claims it itself when it runs jobs; the others' jobs are found
 * by a poll of the records every `pollMs`. The running origin writes the record on each state
 * change and at most once a second for progress, so GET /jobs/{id} on any origin shows it.
 * A job-running origin also prunes the records (job-retention.ts): settled ones beyond the newest
 * `history`, finished at least `minAgeMs` ago, a bounded batch a poll, beside the poll.
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../../src/clock.js'
import { CdnError, isCdnError } from '../../src/errors.js'
import { mapBounded } from '../store/map-bounded.js'
import type { CasMode } from '../store/store.js'
import {
  DEFAULT_JOB_HISTORY,
  DEFAULT_JOB_HISTORY_MIN_AGE_MS,
  expired,
  planPrune,
  type RecordListing,
  scanRecords,
  SETTLED,
} from './job-retention.js'
import type { JobQueue, JobSpec, JobView } from './jobs.js'

/** What the board needs of the store (S3Store has it). */
export interface RecordStore {
  readonly casMode: CasMode
  readJson<T>(rel: string): Promise<T | undefined>
  writeJson(rel: string, value: unknown, opts?: { create?: boolean }): Promise<boolean>
  /** The keys under the prefix in key order, a page at a time. */
  keyPages(relPrefix: string): AsyncIterable<string[]>
  /** Deletes what writeJson(rel, ..., opts) wrote (with `create`, a claim: in etcd with 'etcd'). */
  deleteJson(rel: string, opts?: { create?: boolean }): Promise<void>
}

/** A job's spec as recorded: the source by its name inside the ingest directory. */
export type SharedSpec = Omit<JobSpec, 'source'> & { sourceName: string }

export interface JobRecord {
  view: JobView
  spec: SharedSpec
  /** The origin running it, once claimed. */
  owner?: string | undefined
}

export interface JobBoardOptions {
  store: RecordStore
  queue: JobQueue
  /** This origin's id (the owner of what it claims). */
  owner: string
  /** Whether this origin runs jobs (false: a follower, which only records them). */
  runner: boolean
  /**
   * Checks a recorded source name against this origin's ingest directory (rejecting when its
   * file is missing or outside it) and gives the name the job keeps (never a local path: job
   * views and shared records show it).
   */
  resolveSource: (name: string) => Promise<string>
  clock: Clock
  pollMs: number
  /** Records listed at most by GET /jobs and by one poll. */
  maxRecords?: number
  /** Settled records kept whatever their age, the newest (job-retention.ts). */
  history?: number
  /** Settled records finished less than this ago are kept, ms. */
  minAgeMs?: number
  /** Records judged (and deleted) at most by one poll's pruning. */
  pruneBatch?: number
  onError?: (err: unknown) => void
}

const DIR = '_cdn/jobs/'
const PROGRESS_EVERY_MS = 1000
/** Deletes in flight at once while pruning. */
const PRUNE_CONCURRENCY = 8

export class JobBoard {
  private readonly writes = new Map<string, Promise<unknown>>()
  private readonly lastProgress = new Map<string, number>()
  private readonly specs = new Map<string, SharedSpec>()
  /**
   * Records read in a settled state, by key, among the newest `maxRecords`: a poll (every
   * `pollMs`) and GET /jobs read only the others from the store, not every record each time.
   */
  private settled = new Map<string, JobRecord>()
  private timer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined
  /** The pruning in flight (one at a time, beside the polls), and where the next one starts. */
  private pruning: Promise<void> | undefined
  private pruneAfter = ''
  private closed = false

  constructor(private readonly o: JobBoardOptions) {}

  /** Called by the queue on every change of a job this origin runs. */
  onChange(view: JobView): void {
    const spec = this.specs.get(view.id)
    if (!spec) return
    const final = !['queued', 'running'].includes(view.state)
    const now = this.o.clock.monotonic()
    const isProgress = view.state === 'running' && view.phase !== 'starting'
    if (isProgress && now - (this.lastProgress.get(view.id) ?? -Infinity) < PROGRESS_EVERY_MS) return
    this.lastProgress.set(view.id, now)
    this.write({ view, spec, owner: this.o.owner })
    if (final) {
      this.specs.delete(view.id)
      this.lastProgress.delete(view.id)
    }
  }

  /** Records a job submitted here; runs it here when this origin runs jobs and wins the claim. */
  async submit(spec: SharedSpec, source: string): Promise<JobView> {
    const stamp = new Date(this.o.clock.now()).toISOString().replace(/[-:.]/g, '').slice(0, 15)
    const id = `job-${stamp}-${randomBytes(5).toString('hex')}`
    const view: JobView = {
      id,
      state: 'queued',
      progress: 0,
      phase: 'queued',
      title: spec.title,
      source: spec.sourceName,
      createdAt: new Date(this.o.clock.now()).toISOString(),
    }
    await this.o.store.writeJson(`${DIR}${id}.json`, { view, spec } satisfies JobRecord)
    if (this.o.runner && (await this.claim(id))) return this.run(id, spec, source)
    return view
  }

  async get(id: string): Promise<JobView | undefined> {
    const local = this.o.queue.get(id)
    if (local) return local
    if (!/^job-[0-9A-Za-z-]{1,64}$/.test(id)) return undefined
    return (await this.o.store.readJson<JobRecord>(`${DIR}${id}.json`))?.view
  }

  /** Every recorded job (newest first, at most maxRecords), this origin's from memory. */
  async list(): Promise<JobView[]> {
    const records = await this.records(await this.listRecords())
    const local = new Map(this.o.queue.list().map((v) => [v.id, v]))
    const views = records.map((r) => local.get(r.view.id) ?? r.view)
    for (const v of local.values()) if (!views.some((x) => x.id === v.id)) views.push(v)
    return views.sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  }

  /** Starts looking for jobs submitted to other origins (runners only). */
  start(): void {
    if (!this.o.runner || this.closed) return
    const tick = () => {
      this.polling = this.poll()
        .then(
          () => undefined,
          (err: unknown) => this.o.onError?.(err),
        )
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, this.o.pollMs)
        })
    }
    tick()
  }

  /** Stops polling (no new claims, no new pruning). */
  async stop(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.polling
    await this.pruning
  }

  /** Waits for the record writes and the pruning in flight (after the queue has closed). */
  async flush(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes.values()])
    await this.pruning
  }

  /**
   * One look at the records: claims and runs the queued jobs nobody owns, then starts pruning
   * from the same listing unless a pruning is still in flight (flush() waits for it).
   */
  async poll(): Promise<number> {
    let taken = 0
    const listing = await this.listRecords()
    for (const r of await this.records(listing)) {
      if (this.closed) break
      if (r.view.state !== 'queued' || r.owner || this.o.queue.get(r.view.id)) continue
      if (!(await this.claim(r.view.id))) continue
      taken++
      let source: string
      try {
        source = await this.o.resolveSource(r.spec.sourceName)
      } catch (err) {
        this.failClaimed(r, err, new CdnError('CDN_ERR_BAD_SOURCE', 'the source is unreadable here'))
        continue
      }
      try {
        this.run(r.view.id, r.spec, source)
      } catch (err) {
        // The local queue is full: leave the claim; the record says why.
        this.failClaimed(r, err, new CdnError('CDN_ERR_OVERLOADED', 'ingest queue is full'))
      }
    }
    if (this.o.runner && !this.closed && !this.pruning) {
      this.pruning = this.prune(listing)
        .then(
          () => undefined,
          (err: unknown) => this.o.onError?.(err),
        )
        .finally(() => {
          this.pruning = undefined
        })
    }
    return taken
  }

  /**
   * Deletes the listing's next batch of expired records, each claim first (a record left without
   * its claim is settled: nobody claims it again, and the next pass deletes it). Never a queued or
   * running record, nor its claim. Gives the number deleted.
   */
  private async prune(listing: RecordListing): Promise<number> {
    const now = this.o.clock.now()
    const minAgeMs = this.o.minAgeMs ?? DEFAULT_JOB_HISTORY_MIN_AGE_MS
    const plan = planPrune(listing, {
      history: this.o.history ?? DEFAULT_JOB_HISTORY,
      minAgeMs,
      batch: this.batch(),
      now,
    })
    this.pruneAfter = plan.after
    let deleted = 0
    await mapBounded(plan.candidates, PRUNE_CONCURRENCY, async (key) => {
      if (this.closed) return
      const r = this.settled.get(key) ?? (await this.o.store.readJson<JobRecord>(key))
      if (!r || !expired(r, now, minAgeMs)) return
      // Belt and braces: a job this origin still has queued or running keeps its record.
      const local = this.o.queue.get(r.view.id)
      if (local && !SETTLED.has(local.state)) return
      await this.o.store.deleteJson(`${DIR}${r.view.id}.claim`, { create: true })
      await this.o.store.deleteJson(key)
      deleted++
    })
    return deleted
  }

  private batch(): number {
    return this.o.pruneBatch ?? 100
  }

  /** Marks a job this node claimed as failed, with err's code when it has one. */
  private failClaimed(r: JobRecord, err: unknown, fallback: CdnError): void {
    const e = isCdnError(err) ? err : fallback
    const view: JobView = {
      ...r.view,
      state: 'failed',
      phase: 'failed',
      error: { code: e.code, message: e.message },
    }
    this.write({ view, spec: r.spec, owner: this.o.owner })
  }

  private run(id: string, spec: SharedSpec, source: string): JobView {
    this.specs.set(id, spec)
    const { sourceName: _name, ...rest } = spec
    return this.o.queue.submit({ ...rest, source }, id)
  }

  private claim(id: string): Promise<boolean> {
    return this.o.store.writeJson(`${DIR}${id}.claim`, { owner: this.o.owner }, { create: true })
  }

  /** One listing of the records: the newest, and the next prune candidates. */
  private listRecords(): Promise<RecordListing> {
    // Ids start with their creation time: the last keys are the newest, read whatever the history
    // before them (the first 10000 keys were read: past 5000 jobs, new ones were never seen, so
    // never run nor listed).
    return scanRecords(this.o.store.keyPages(DIR), {
      newest: this.o.maxRecords ?? 200,
      batch: this.batch(),
      after: this.pruneAfter,
    })
  }

  private async records(listing: RecordListing): Promise<JobRecord[]> {
    const newest = listing.newest
    const out: JobRecord[] = []
    const settled = new Map<string, JobRecord>()
    for (const k of newest) {
      const r = this.settled.get(k) ?? (await this.o.store.readJson<JobRecord>(k))
      if (!r) continue
      out.push(r)
      if (SETTLED.has(r.view.state)) settled.set(k, r)
    }
    this.settled = settled
    return out
  }

  /** Record writes of one job in order: a progress write never lands after the final one. */
  private write(record: JobRecord): void {
    const id = record.view.id
    const prev = this.writes.get(id) ?? Promise.resolve()
    const next = prev
      .then(() => this.o.store.writeJson(`${DIR}${id}.json`, record))
      .catch((err: unknown) => this.o.onError?.(err))
    this.writes.set(id, next)
    void next.finally(() => {
      if (this.writes.get(id) === next) this.writes.delete(id)
    })
  }
}
