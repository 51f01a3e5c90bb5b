/**
 * How fast a job fetches: the byte-rate cap and the fill window (outside it the job waits, or
 * trickles at a low rate), and the rate it achieves. Each object not held is let through once
 * the window is open and the bucket is out of debt; a target that paces bodies (`paces`) is then
 * charged chunk by chunk as the bytes arrive, another the whole object upfront, corrected to
 * its real size once fetched.
 */
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import type { JobReport } from './job-report.js'
import { ByteRateLimiter, RateMeter } from './rate-limiter.js'
import type { Sleep } from './sleep.js'
import type { PrefillTarget } from './target.js'
import { type FillWindow, parseWindow, rateNow, windowState } from './window.js'

export interface JobPacingDeps {
  readonly target: PrefillTarget
  readonly clock: Clock
  readonly sleep: Sleep
  /** IANA zone for windows; undefined = the process's local zone. */
  readonly timeZone?: string
}

/** An object let through: how to pace its body, and what to tell once it is fetched. */
export interface Admitted {
  /** For the target's `fill`: undefined when the body is not paced. */
  readonly pace: ((bytes: number) => number) | undefined
  /** Charges what the object really cost (a paced body already was) and meters it. */
  fetched(bytes: number): void
}

/**
 * A paced fill's bucket, in ms at the cap, and its shortest hold. A hold per chunk of a few ms
 * (64 KiB at 20 MB/s: 3 ms) cost the edge's event loop a timer, a pause and a resume for every
 * chunk of every fill, beside the chunk's own work, and that is what viewers queue behind
 * (issue 19); so a body in debt sleeps at least PACED_HOLD_MS and then reads what the bucket
 * refilled (about 1 MB at 20 MB/s) at once. The bucket holds twice the hold, so the rate is
 * kept.
 */
const PACED_BURST_MS = 100
const PACED_HOLD_MS = 50

export class JobPacing {
  /** The rate achieved. */
  readonly meter: RateMeter
  readonly window: FillWindow | undefined
  private readonly limiter: ByteRateLimiter
  private readonly deps: JobPacingDeps
  private readonly report: JobReport
  private readonly giveUp: (err: CdnError) => void

  /**
   * `giveUp` ends the job's work (and so every wait) with the reason the job fails with; it is
   * called when the job can never fill anything.
   */
  constructor(deps: JobPacingDeps, report: JobReport, giveUp: (err: CdnError) => void) {
    this.deps = deps
    this.report = report
    this.giveUp = giveUp
    this.meter = new RateMeter(deps.clock)
    const spec = report.record.spec
    this.window = spec.window ? parseWindow(spec.window, deps.timeZone) : undefined
    // A target that paces bodies is charged chunk by chunk from a small bucket (PACED_BURST_MS).
    this.limiter = new ByteRateLimiter({
      rate: this.rate(),
      clock: deps.clock,
      ...(deps.target.paces ? { burstMs: PACED_BURST_MS, minHoldMs: PACED_HOLD_MS } : {}),
    })
  }

  /** An object already held starts at once; fetched after all (evicted meanwhile), it is charged then. */
  held(): Admitted {
    return this.admitted(false, 0)
  }

  /**
   * Lets the fetch of an object not held start, once the window is open and the bucket is out
   * of debt. Undefined once `signal` ended the wait.
   */
  async admit(plannedBytes: number, signal: AbortSignal): Promise<Admitted | undefined> {
    await this.awaitWindow(signal)
    // Under a cap, a target that paces reads each body at the cap (charged as chunks arrive, so
    // an object starts once the bucket is out of debt); another is charged whole objects upfront.
    const paced = this.deps.target.paces === true && this.limiter.currentRate !== undefined
    const upfront = paced ? 0 : plannedBytes
    if (!(await this.limiter.take(upfront, this.deps.sleep, signal))) return undefined
    return this.admitted(paced, upfront)
  }

  /** `charged`: what the object was charged upfront, corrected to its real size once fetched. */
  private admitted(paced: boolean, charged: number): Admitted {
    return {
      pace: paced ? (n: number) => this.limiter.pace(n) : undefined,
      fetched: (bytes) => {
        // A paced fill was charged as its bytes came (one that joined a viewer's fetch: not at all).
        if (!paced) this.limiter.charge(bytes - charged)
        this.meter.add(bytes)
      },
    }
  }

  private rate(): number | undefined {
    const s = this.report.record.spec
    return rateNow(this.window, this.deps.clock.now(), s.maxBytesPerSecond, s.trickleBytesPerSecond)
  }

  /** Waits while outside the window with no trickle; keeps the limiter's rate current. */
  private async awaitWindow(signal: AbortSignal): Promise<void> {
    for (;;) {
      const rate = this.rate()
      this.limiter.setRate(rate)
      if (rate !== 0 || signal.aborted) {
        if (this.report.record.state === 'waiting') this.report.setState('running')
        return
      }
      if (!this.window) return this.neverFills()
      const st = windowState(this.window, this.deps.clock.now())
      this.report.setState(
        'waiting',
        `outside the fill window ${this.window.spec}; opens in ${Math.ceil(st.msUntilOpen / 1000)} s`,
      )
      await this.deps.sleep(Math.min(Math.max(st.msUntilOpen, 1), 60_000), signal)
    }
  }

  /**
   * A rate of 0 with no window to open is a cap of 0, which would wait for ever. No request
   * passes one (request.ts), but a job an older edge accepted may resume with it: the job stops
   * and fails saying why, rather than hang or crash. Its work ends, and with it `signal`'s wait.
   */
  private neverFills(): void {
    this.giveUp(
      new CdnError(
        'CDN_ERR_BAD_BODY',
        'maxBytesPerSecond: a cap of 0 bytes per second never fills anything; submit the job again with 1 or more',
        { details: { field: 'maxBytesPerSecond' } },
      ),
    )
  }
}
