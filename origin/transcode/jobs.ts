/**
 * Ingest jobs: a bounded queue (refuses past `maxQueued`), `concurrency` running at once,
 * a bounded history of finished jobs. The queue knows nothing of HTTP or ffmpeg: it runs
 * whatever `run` it is given and records state, progress and the error's code and message.
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../../src/clock.js'
import { CdnError, type ErrorCode, isCdnError } from '../../src/errors.js'

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

export interface JobSpec {
  source: string
  title: string
  ladder?: string[] | undefined
  format?: 'fmp4' | 'ts' | undefined
  segmentSeconds?: number | undefined
}

export interface JobView {
  id: string
  state: JobState
  /** 0..1 */
  progress: number
  phase: string
  title: string
  source: string
  createdAt: string
  startedAt?: string
  finishedAt?: string
  /** The version published by a successful job. */
  version?: string
  error?: { code: ErrorCode; message: string }
}

export type JobRunner = (
  spec: JobSpec,
  onProgress: (fraction: number, phase: string) => void,
  signal: AbortSignal,
) => Promise<{ version: string }>

export interface JobQueueOptions {
  run: JobRunner
  clock: Clock
  /** Jobs waiting (not running) at most; beyond it submit() throws CDN_ERR_OVERLOADED. */
  maxQueued: number
  concurrency: number
  /** Finished jobs remembered for GET /jobs/{id}, the newest (and any finished within minAgeMs). */
  maxHistory?: number
  /** Finished jobs younger than this are remembered beyond maxHistory, ms (default 0). */
  minAgeMs?: number
  /** Finished jobs remembered at most whatever their age (default HISTORY_CEILING, or maxHistory when larger). */
  historyCeiling?: number
  /** Called on every state change (metrics). `durationSec` is set when a job finishes. */
  onState?: (state: JobState, durationSec?: number) => void
  /** Called with the job's view on every state change and progress step (job records in a shared store). */
  onChange?: (view: JobView) => void
  /** Called with a failed job's error as raised (for the log: it may name files the view must not). */
  onError?: (id: string, err: unknown) => void
}

interface Job {
  view: JobView
  spec: JobSpec
  abort: AbortController
  startedMono?: number
  done: Promise<void>
  resolveDone: () => void
}

/** Finished jobs held in memory at most, whatever their age (beyond a larger maxHistory: that). */
export const HISTORY_CEILING = 10_000

export class JobQueue {
  private readonly jobs = new Map<string, Job>()
  private readonly waiting: Job[] = []
  private running = 0
  private closed = false

  constructor(private readonly opts: JobQueueOptions) {}

  /** Queues a job; `id` is given when the job was claimed from a shared store under that id. */
  submit(spec: JobSpec, id = `job-${randomBytes(6).toString('hex')}`): JobView {
    if (this.closed) throw new CdnError('CDN_ERR_OVERLOADED', 'origin is shutting down')
    if (this.waiting.length >= this.opts.maxQueued)
      throw new CdnError('CDN_ERR_OVERLOADED', `ingest queue is full (${this.opts.maxQueued} waiting)`)
    if (this.jobs.has(id)) throw new CdnError('CDN_ERR_CONFLICT', `job ${id} exists`)
    let resolveDone = () => {}
    const done = new Promise<void>((r) => {
      resolveDone = r
    })
    const job: Job = {
      spec,
      abort: new AbortController(),
      done,
      resolveDone,
      view: {
        id,
        state: 'queued',
        progress: 0,
        phase: 'queued',
        title: spec.title,
        source: spec.source,
        createdAt: new Date(this.opts.clock.now()).toISOString(),
      },
    }
    this.jobs.set(id, job)
    this.waiting.push(job)
    this.opts.onState?.('queued')
    this.opts.onChange?.({ ...job.view })
    this.trim()
    this.pump()
    return { ...job.view }
  }

  get(id: string): JobView | undefined {
    const job = this.jobs.get(id)
    return job ? { ...job.view } : undefined
  }

  list(): JobView[] {
    return [...this.jobs.values()].map((j) => ({ ...j.view }))
  }

  /** Resolves when the job reaches a final state. */
  async wait(id: string): Promise<JobView | undefined> {
    await this.jobs.get(id)?.done
    return this.get(id)
  }

  counts(): Record<JobState, number> {
    const c: Record<JobState, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 }
    for (const j of this.jobs.values()) c[j.view.state]++
    return c
  }

  /** Cancels waiting jobs, aborts running ones and waits for them to wind down. */
  async close(): Promise<void> {
    this.closed = true
    for (const job of this.waiting.splice(0)) this.finish(job, 'cancelled')
    const active = [...this.jobs.values()].filter((j) => j.view.state === 'running')
    for (const j of active) j.abort.abort()
    await Promise.all(active.map((j) => j.done))
  }

  private pump(): void {
    while (!this.closed && this.running < this.opts.concurrency && this.waiting.length) {
      const job = this.waiting.shift()!
      this.running++
      void this.execute(job).finally(() => {
        this.running--
        this.pump()
      })
    }
  }

  private async execute(job: Job): Promise<void> {
    job.view.state = 'running'
    job.view.phase = 'starting'
    job.view.startedAt = new Date(this.opts.clock.now()).toISOString()
    job.startedMono = this.opts.clock.monotonic()
    this.opts.onState?.('running')
    this.opts.onChange?.({ ...job.view })
    try {
      const { version } = await this.opts.run(
        job.spec,
        (fraction, phase) => {
          job.view.progress = Math.max(job.view.progress, Math.min(1, fraction))
          job.view.phase = phase
          this.opts.onChange?.({ ...job.view })
        },
        job.abort.signal,
      )
      job.view.version = version
      job.view.progress = 1
      this.finish(job, 'succeeded')
    } catch (err) {
      // An unexpected error's message may name files (ENOENT, open '/...'): the view gets its code.
      const code = (err as { code?: unknown })?.code
      const e = isCdnError(err)
        ? err
        : new CdnError('CDN_ERR_INTERNAL', `ingest failed${typeof code === 'string' ? ` (${code})` : ''}`)
      if (!isCdnError(err) || e.status >= 500) this.opts.onError?.(job.view.id, err)
      job.view.error = { code: e.code, message: e.message }
      this.finish(job, e.code === 'CDN_ERR_CANCELLED' ? 'cancelled' : 'failed')
    }
  }

  private finish(job: Job, state: JobState): void {
    job.view.state = state
    job.view.phase = state
    job.view.finishedAt = new Date(this.opts.clock.now()).toISOString()
    const duration =
      job.startedMono === undefined ? undefined : (this.opts.clock.monotonic() - job.startedMono) / 1000
    this.opts.onState?.(state, duration)
    this.opts.onChange?.({ ...job.view })
    job.resolveDone()
  }

  /**
   * Forgets the oldest finished jobs beyond maxHistory that finished at least minAgeMs ago (a
   * client polling a job that just finished still finds it).
   */
  private trim(): void {
    const max = this.opts.maxHistory ?? 100
    const now = this.opts.clock.now()
    const finished = [...this.jobs.values()].filter((j) => !['queued', 'running'].includes(j.view.state))
    // Memory stays bounded whatever the pace of jobs: past HISTORY_CEILING (or the history, when
    // larger) the oldest go even within the minimum age.
    const ceiling = Math.max(max, this.opts.historyCeiling ?? HISTORY_CEILING)
    finished.forEach((j, i) => {
      const beyond = finished.length - i
      if (beyond <= max) return
      if (beyond > ceiling || now - Date.parse(j.view.finishedAt!) >= (this.opts.minAgeMs ?? 0))
        this.jobs.delete(j.view.id)
    })
  }
}
