/** Shared set-up for the job runner's tests: a real origin, a DirTarget, a manager factory. */
import { join } from 'node:path'
import type { Test } from 'tap'
import { PrefillJobs, type PrefillJobsOptions } from '../../../edge/prefill/jobs.js'
import type { JobView } from '../../../edge/prefill/model.js'
import type { Sleep } from '../../../edge/prefill/sleep.js'
import { ManualClock } from '../../../src/clock.js'
import { ingestedStore, type StartedOrigin, startOrigin, tempDir } from '../../helpers/origin.js'
import { DirTarget } from './dir-target.js'

export interface Fixture {
  origin: StartedOrigin
  cacheDir: string
  clock: ManualClock
  /** A target on the fixture's object directory (a new one = the edge restarted). */
  target(capacityBytes?: number): DirTarget
  jobs(target: DirTarget, options?: Partial<PrefillJobsOptions>): Promise<PrefillJobs>
}

/** Sleep that moves the manual clock at once; `hook` runs first (fault injection). */
export function manualSleep(clock: ManualClock, hook?: (ms: number) => void | Promise<void>): Sleep {
  return async (ms, signal) => {
    await hook?.(ms)
    if (!signal?.aborted) clock.advance(ms)
    // Let I/O progress between simulated waits.
    await new Promise((r) => setImmediate(r))
  }
}

export async function fixture(t: Test, titles = ['alpha', 'beta']): Promise<Fixture> {
  const store = await ingestedStore(t, { titles: titles.map((id) => ({ id, seconds: 10 })) })
  const origin = await startOrigin(t, { store })
  const cacheDir = await tempDir(t, 'cdn-prefill-')
  const clock = new ManualClock(Date.UTC(2026, 2, 10, 3, 0))
  return {
    origin,
    cacheDir,
    clock,
    target(capacityBytes = 1e9) {
      const target = new DirTarget({ upstream: origin.url, dir: join(cacheDir, 'objects'), capacityBytes })
      t.teardown(() => target.close())
      return target
    },
    async jobs(target, options = {}) {
      const jobs = new PrefillJobs({
        target,
        cacheDir,
        clock,
        sleep: manualSleep(clock),
        retry: { attempts: 3, initialDelayMs: 1000, maxDelayMs: 4000 },
        timeZone: 'UTC',
        persistEveryMs: 0,
        ...options,
      })
      t.teardown(() => jobs.close())
      await jobs.start()
      return jobs
    },
  }
}

export async function finished(jobs: PrefillJobs, id: string): Promise<JobView> {
  await jobs.idle()
  return jobs.get(id)!
}

export function gets(target: DirTarget): string[] {
  return target.requestedPaths.filter((p) => p.startsWith('GET '))
}
