/**
 * What prefill does when the upstream is down: pause, retry with exponential backoff, then
 * give up with a reason. Policy is data; only retryable errors (connection refused, timeouts,
 * 5xx) are retried, never a 4xx.
 */
import { CdnError, isCdnError } from '../../src/errors.js'
import type { Sleep } from './sleep.js'

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number
  readonly initialDelayMs: number
  readonly maxDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, initialDelayMs: 1000, maxDelayMs: 30_000 }

export function isRetryable(err: unknown): boolean {
  if (isCdnError(err)) return err.retryable
  const code = (err as { code?: string })?.code ?? ''
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|UND_ERR_)/.test(code)
}

export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1))
}

/** The error a job fails with once the upstream stayed down through every retry. */
export function upstreamDownError(err: unknown, attempts: number): CdnError {
  const why = isCdnError(err) ? err.message : ((err as Error)?.message ?? String(err))
  return new CdnError('CDN_ERR_UPSTREAM_DOWN', `upstream unavailable after ${attempts} attempts: ${why}`, {
    cause: err,
    details: { attempts },
  })
}

/** Whether a described error (a title's) is the upstream down through every retry (above). */
export function isUpstreamDown(e: { readonly code: string } | undefined): boolean {
  return e?.code === 'CDN_ERR_UPSTREAM_DOWN'
}

export interface RetryHooks {
  readonly sleep: Sleep
  readonly signal?: AbortSignal
  /** Called before each wait after a retryable failure (attempt counts from 1). */
  onPause?(err: unknown, attempt: number, delayMs: number): void
  /** Called once when a call that paused ends, however it ends. */
  onResume?(): void
}

/** Runs `fn`, retrying retryable failures per `policy`; rethrows other errors unchanged. */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy, hooks: RetryHooks): Promise<T> {
  let paused = false
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (!isRetryable(err) || hooks.signal?.aborted) throw err
        if (attempt >= policy.attempts) throw upstreamDownError(err, attempt)
        const delay = backoffDelay(policy, attempt)
        paused = true
        hooks.onPause?.(err, attempt, delay)
        await hooks.sleep(delay, hooks.signal)
        if (hooks.signal?.aborted) throw err
      }
    }
  } finally {
    // However the call ends, this caller no longer holds the job paused.
    if (paused) hooks.onResume?.()
  }
}
