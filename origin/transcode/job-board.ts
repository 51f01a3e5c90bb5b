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
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../../src/clock.js'
import { CdnError, isCdnError } from '../../src/errors.js'
import type { CasMode } from '../store/store.js'
import type { JobQueue, JobSpec, JobView } from './jobs.js'

/** What the board needs of the store (S3Store has it). */
export interface RecordStore {
  readonly casMode: CasMode
  readJson<T>(rel: string): Promise<T | undefined>
  writeJson(rel: string, value: unknown, opts?: { create?: boolean }): Promise<boolean>
  /** The first `max` keys under the prefix in key order, or with `last` the last `max`. */
  listKeys(relPrefix: string, max?: number, opts?: { last?: boolean }): Promise<string[]>
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
  onError?: (err: unknown) => void
}

const DIR = '_cdn/jobs/'
/** States a record never leaves: read once, kept in memory while among the newest records. */
const SETTLED = new Set(['succeeded', 'failed', 'cancelled'])
const PROGRESS_EVERY_MS = 1000

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
    const records = await this.records()
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

  /** Stops polling (no new claims). */
  async stop(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.polling
  }

  /** Waits for the record writes in flight (after the queue has closed). */
  async flush(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes.values()])
  }

  /** One look at the records: claims and runs the queued jobs nobody owns. */
  async poll(): Promise<number> {
    let taken = 0
    for (const r of await this.records()) {
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
    return taken
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

  private async records(): Promise<JobRecord[]> {
    const max = this.o.maxRecords ?? 200
    // Ids start with their creation time: the last keys are the newest, read whatever the history
    // before them (the first 10000 keys were read: past 5000 jobs, new ones were never seen, so
    // never run nor listed). A job has two keys at most, its record and its claim.
    const keys = (await this.o.store.listKeys(DIR, 2 * max, { last: true })).filter((k) =>
      k.endsWith('.json'),
    )
    const newest = keys.sort().slice(-max)
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
