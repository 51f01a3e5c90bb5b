/**
 * The cluster's worker processes: N forks of worker-main.ts, each in a numbered slot. A slot
 * is sent its init when its worker says hello, and counts as ready once it says it listens. A
 * worker that dies is replaced after a delay that doubles (up to a bound) while replacements
 * die young. Index changes of the primary's disk tier go to every worker that has its init,
 * batched per tick.
 */
import { type ChildProcess, fork as forkProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { systemClock } from '../../src/clock.js'
import type { DiskEvent } from './disk-mirror.js'
import { isMessage, type ToPrimary, type ToWorker } from './protocol.js'

/** Delay before a worker that died is replaced; doubled (up to the max) while replacements die young. */
const RESPAWN_DELAY_MS = 500
const RESPAWN_MAX_DELAY_MS = 30_000
/** A worker that lived this long resets the delay. */
const RESPAWN_HEALTHY_MS = 10_000

export interface WorkerSlot {
  index: number
  worker: ChildProcess
  /** Sent its init: index changes go to it from then on. */
  following: boolean
  listening: boolean
}

/** The messages the pool does not handle itself (took, usage, answer). */
export type WorkerReport = Exclude<ToPrimary, { type: 'hello' } | { type: 'listening' }>

export interface WorkerPoolOptions {
  size: number
  /** Each worker's private socket path is `${socketBase}.${index}` (removed before a fork). */
  socketBase: string
  /** The init for a worker that said hello. */
  init(index: number): Extract<ToWorker, { type: 'init' }>
  report(slot: WorkerSlot, m: WorkerReport): void
  /** A worker exited (its slot is gone); a replacement follows in `respawnInMs` unless the pool is closing. */
  exited(
    slot: WorkerSlot,
    code: number | null,
    signal: NodeJS.Signals | null,
    respawnInMs: number | undefined,
  ): void
}

export class WorkerPool {
  private readonly slots = new Map<number, WorkerSlot>()
  private readonly respawnDelay = new Map<number, number>()
  private readonly workerMain = fileURLToPath(new URL('./worker-main.js', import.meta.url))
  private closing = false
  private listeningCount = 0
  private events: DiskEvent[] = []
  private resolveStarted!: () => void
  /** Resolves once every worker of the first generation listens. */
  readonly started = new Promise<void>((resolve) => {
    this.resolveStarted = resolve
  })

  constructor(private readonly opts: WorkerPoolOptions) {}

  start(): void {
    for (let i = 0; i < this.opts.size; i++) this.fork(i)
  }

  /** Workers that can take connections and questions now. */
  ready(): ChildProcess[] {
    return [...this.slots.values()].filter((s) => s.listening && s.worker.connected).map((s) => s.worker)
  }

  /** Workers that listen (asked questions; a closed channel answers undefined). */
  listening(): ChildProcess[] {
    return this.listeningSlots().map((s) => s.worker)
  }

  /**
   * Workers sent their init, listening or still opening (a question waits in the worker until it
   * listens, and is answered then).
   */
  following(): ChildProcess[] {
    return [...this.slots.values()].filter((s) => s.following).map((s) => s.worker)
  }

  /** The slots whose worker listens, in slot order. */
  listeningSlots(): WorkerSlot[] {
    return [...this.slots.values()].filter((s) => s.listening).sort((a, b) => a.index - b.index)
  }

  /** Queues an index change for every following worker (sent once per tick). */
  queue(ev: DiskEvent): void {
    if (this.events.length === 0) setImmediate(() => this.flush())
    this.events.push(ev)
  }

  private flush(): void {
    const msg: ToWorker = { type: 'disk', events: this.events }
    this.events = []
    for (const s of this.slots.values()) if (s.following && s.worker.connected) s.worker.send(msg, noop)
  }

  private fork(index: number): void {
    // A worker killed earlier leaves its private socket file behind.
    rmSync(`${this.opts.socketBase}.${index}`, { force: true })
    const worker = forkProcess(this.workerMain, [], { serialization: 'json' })
    const born = systemClock.monotonic()
    const slot: WorkerSlot = { index, worker, following: false, listening: false }
    this.slots.set(index, slot)
    worker.on('message', (m) => this.onMessage(slot, m))
    worker.on('exit', (code, signal) => {
      if (this.slots.get(index) === slot) this.slots.delete(index)
      if (this.closing) return this.opts.exited(slot, code, signal, undefined)
      const young = systemClock.monotonic() - born < RESPAWN_HEALTHY_MS
      const delay = young
        ? Math.min(RESPAWN_MAX_DELAY_MS, (this.respawnDelay.get(index) ?? RESPAWN_DELAY_MS / 2) * 2)
        : RESPAWN_DELAY_MS
      this.respawnDelay.set(index, young ? delay : RESPAWN_DELAY_MS / 2)
      this.opts.exited(slot, code, signal, delay)
      setTimeout(() => {
        if (!this.closing) this.fork(index)
      }, delay).unref()
    })
  }

  private onMessage(slot: WorkerSlot, m: unknown): void {
    if (!isMessage<ToPrimary>(m)) return
    if (m.type === 'hello') {
      slot.worker.send(this.opts.init(slot.index), noop)
      slot.following = true
    } else if (m.type === 'listening') {
      slot.listening = true
      if (++this.listeningCount === this.opts.size) this.resolveStarted()
    } else this.opts.report(slot, m)
  }

  /** No more replacements; resolves with one promise per worker, settled when it has exited. */
  close(): Promise<void>[] {
    this.closing = true
    return [...this.slots.values()].map(
      (s) =>
        new Promise<void>((resolve) =>
          s.worker.exitCode !== null || s.worker.signalCode !== null
            ? resolve()
            : s.worker.once('exit', () => resolve()),
        ),
    )
  }

  kill(): void {
    for (const s of this.slots.values()) s.worker.kill('SIGKILL')
  }

  removeSockets(): void {
    for (let i = 0; i < this.opts.size; i++) {
      rmSync(`${this.opts.socketBase}.${i}`, { force: true })
      rmSync(`${this.opts.socketBase}.${i}.http`, { force: true })
    }
  }
}

function noop(): void {}
