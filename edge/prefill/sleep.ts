/**
 * Waiting, injected like the clock: the job runner and the rate limiter never call
 * setTimeout themselves, so tests drive them with a manual clock and a sleep that moves it.
 */
import { setTimeout as delay } from 'node:timers/promises'

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

export const realSleep: Sleep = async (ms, signal) => {
  if (signal?.aborted) return
  try {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined)
  } catch (err) {
    if ((err as { name?: string }).name !== 'AbortError') throw err
  }
}
