/**
 * The primary's questions to its workers (purge, delete, stats, metrics, stop) and their
 * answers, matched by id. A worker that does not answer within ASK_TIMEOUT_MS (or whose
 * channel is gone, or that exits meanwhile) counts as an undefined answer: a question never
 * hangs the primary. (/status and /metrics wait for their answers as long as the worker lives,
 * at most one of each kind at a time, and use its last one meanwhile: worker-views.ts.)
 */
import type { ChildProcess } from 'node:child_process'
import type { Ask, ToPrimary, ToWorker } from './protocol.js'

/** How long the primary waits for a worker's answer (purge, stats, metrics, stop). */
export const ASK_TIMEOUT_MS = 5_000

export type Answer = Extract<ToPrimary, { type: 'answer' }>

/** Who did not confirm a question (slot numbers), and the answers of those who did. */
export interface Confirmed {
  missing: number[]
  answers: Answer[]
}

/** A worker asked, by its slot number (the id an operator sees; never its pid or socket). */
export interface Asked {
  index: number
  worker: ChildProcess
}

export class WorkerRpc {
  private nextId = 1
  /** Questions waiting for their answer, by id; each entry is removed when it settles. */
  private readonly waiting = new Map<
    number,
    { worker: ChildProcess; settle: (answer: Answer | undefined) => void }
  >()

  /**
   * Asks one worker; resolves with its answer, or undefined (timeout, channel gone, exited).
   * An infinite `timeoutMs` waits as long as the worker lives.
   */
  ask(worker: ChildProcess, question: Ask, timeoutMs = ASK_TIMEOUT_MS): Promise<Answer | undefined> {
    return new Promise((resolve) => {
      const id = this.nextId++
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => settle(undefined), timeoutMs) : undefined
      const settle = (answer: Answer | undefined): void => {
        clearTimeout(timer)
        this.waiting.delete(id)
        resolve(answer)
      }
      this.waiting.set(id, { worker, settle })
      const msg: ToWorker = { type: 'ask', id, ...question }
      worker.send(msg, (err) => {
        if (err) this.waiting.get(id)?.settle(undefined)
      })
    })
  }

  /** Asks each worker at once; resolves when every one has answered or given up. */
  askAll(workers: readonly ChildProcess[], question: Ask): Promise<Array<Answer | undefined>> {
    return Promise.all(workers.map((worker) => this.ask(worker, question)))
  }

  /**
   * Asks each worker at once and resolves, once every one has answered or given up, with the
   * slot numbers of those that did not confirm (no answer in time, channel gone, exited, or an
   * answer carrying an error), in slot order (empty when every worker confirmed), and the
   * answers of those that did.
   */
  async confirmAll(workers: readonly Asked[], question: Ask): Promise<Confirmed> {
    const answers = await Promise.all(workers.map((w) => this.ask(w.worker, question)))
    const confirmed = (a: Answer | undefined): a is Answer => a !== undefined && a.error === undefined
    return {
      missing: workers
        .filter((_, i) => !confirmed(answers[i]))
        .map((w) => w.index)
        .sort((a, b) => a - b),
      answers: answers.filter(confirmed),
    }
  }

  /** A worker's answer arrived. */
  answered(answer: Answer): void {
    this.waiting.get(answer.id)?.settle(answer)
  }

  /** A worker exited: its questions are given up now rather than at their timeout. */
  gone(worker: ChildProcess): void {
    for (const q of [...this.waiting.values()]) if (q.worker === worker) q.settle(undefined)
  }
}
