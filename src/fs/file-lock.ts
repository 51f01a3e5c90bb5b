/**
 * A lock on one file shared by every process on the machine, for a read-modify-write of that
 * file that must not interleave with another process's (the origin's title pointer, written by
 * a running origin, `cdn ingest --store` and `cdn origin retire` on one directory). Built on
 * proper-lockfile: the lock is the directory `{file}.lock`, made with mkdir (atomic: one of two
 * racing processes gets it), its mtime refreshed while held.
 *
 * A lock left by a process killed while holding it is taken over once its mtime is STALE_MS old:
 * the holder of such a lock is gone, or stalled that long inside a section that lasts
 * milliseconds. A waiter retries with backoff for longer than that, so it outlives a stale lock.
 * `stillHeld()` says whether another process took the lock over meanwhile (the holder stalled
 * past STALE_MS): the caller checks it right before the write it guards, and gives up the write.
 *
 * Why not the edge's --cache-dir lock (edge/cache/dir-lock.ts, pid-based, refuses at once): that
 * one is held for a process's life, so waiting out a stale period at every restart would hurt;
 * this one is held for one write, and a crash inside it costs at most STALE_MS on one file.
 */
import { basename } from 'node:path'
import { lock } from 'proper-lockfile'
import { CdnError } from '../errors.js'

export const STALE_MS = 10_000

/**
 * Backoff from a few ms up to 100 ms (a try is one mkdir), about 20 s in all: past STALE_MS, so a
 * waiter outlives a stale lock and takes it over.
 */
const RETRIES = { retries: 220, factor: 1.2, minTimeout: 2, maxTimeout: 100, randomize: true }

export interface HeldLock {
  /** False once another process has taken the lock over (this one stalled past STALE_MS). */
  stillHeld(): boolean
}

/** The path of the lock that guards `file`. */
export function lockPathFor(file: string): string {
  return `${file}.lock`
}

/**
 * Runs `fn` holding the lock on `file` (which need not exist; its directory must), waiting
 * while another process holds it. Throws CDN_ERR_DISK when the lock stays held past the retries.
 */
export async function withFileLock<T>(file: string, fn: (held: HeldLock) => Promise<T>): Promise<T> {
  const got = await acquire(file, RETRIES)
  if (!got)
    throw new CdnError('CDN_ERR_DISK', `${basename(file)} stayed locked by another process`, {
      internal: { lock: lockPathFor(file) },
    })
  return runHolding(got, fn)
}

/** Runs `fn` holding the lock on `file` if no other process holds it now; else `{ ran: false }`. */
export async function ifUnlocked<T>(
  file: string,
  fn: (held: HeldLock) => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false }> {
  const got = await acquire(file, 0)
  return got ? { ran: true, value: await runHolding(got, fn) } : { ran: false }
}

interface Acquired {
  release(): Promise<void>
  compromised: boolean
}

async function acquire(file: string, retries: typeof RETRIES | 0): Promise<Acquired | undefined> {
  const got: Acquired = { release: async () => {}, compromised: false }
  try {
    got.release = await lock(file, {
      realpath: false,
      stale: STALE_MS,
      retries,
      onCompromised: () => {
        // Never thrown from a timer: the guarded write checks stillHeld() and gives up.
        got.compromised = true
      },
    })
    return got
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined
    throw err
  }
}

async function runHolding<T>(got: Acquired, fn: (held: HeldLock) => Promise<T>): Promise<T> {
  try {
    return await fn({ stillHeld: () => !got.compromised })
  } finally {
    // A lock taken over is another process's now: never remove it.
    if (!got.compromised) await got.release()
  }
}
