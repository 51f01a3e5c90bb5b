/**
 * Runs tasks one at a time per key, in the order they were queued; different keys run
 * concurrently. A task's failure is its caller's alone: the next task of the key still runs.
 * A key holds memory only while it has a task queued or running.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>()

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    const next = prev.catch(() => undefined).then(task)
    this.tails.set(key, next)
    const clear = () => {
      if (this.tails.get(key) === next) this.tails.delete(key)
    }
    next.then(clear, clear)
    return next
  }

  /** How many keys have a task queued or running. */
  get size(): number {
    return this.tails.size
  }
}
