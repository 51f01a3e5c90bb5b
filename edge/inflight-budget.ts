/**
 * One bound on the bytes an edge process holds for transfers in flight: a miss's body buffer
 * (from its upstream's headers until the flight is over and its last client has the bytes),
 * a disk hit's body read whole (until its response closed), the chunk window of a streamed
 * disk hit, and the window of a relayed (pass-through) answer or of an uncached stream.
 * The memory tier is bounded on its own (--memory-size) and is not counted here.
 *
 * A transfer reserves its bytes before it allocates them. A reservation that does not fit
 * waits (first come, first served) until enough is released, and fails with
 * CDN_ERR_OVERLOADED (503) after its timeout or when too many already wait. A reservation
 * larger than the whole budget is granted only when nothing else is in flight, so any object
 * can still be served, alone.
 */
import { EventEmitter } from 'node:events'
import { CdnError } from '../src/errors.js'

/**
 * The most bytes one client may have queued (written, not yet taken by its socket) on a
 * stream that is not kept whole (an object over --max-object-size, a relayed answer): past
 * it, the source is paused until the client drains.
 */
export const CLIENT_WINDOW_BYTES = 1024 * 1024

/**
 * The allowance outside the budget: a body of at most this many bytes read from disk for the raw
 * hit path (edge/http/serve.ts rawDiskHit) is not reserved. It is written to its socket at once,
 * and the raw path answers no further request on a connection whose socket holds more than its
 * high-water mark (raw-connection.ts), so what such bodies hold is bounded per connection (16 KiB
 * plus one body), like the heads of memory hits, which are not reserved either. A reservation
 * (a Hold, its closures and two events) cost a small hit more CPU than its fstat (profile:
 * docs/bench.md).
 */
export const UNRESERVED_BODY_MAX = 4 * 1024

/** Bytes reserved; the reservation ends once every holder released it. */
export interface Hold {
  readonly bytes: number
  /** Another holder (a client sharing a flight's buffer): its release is needed too. */
  retain(): () => void
  /** Adds bytes to the reservation without waiting (a body without Content-Length). */
  grow(n: number): void
  release(): void
}

/**
 * Events: 'reserve' (bytes taken), 'queued' (a reservation waits), 'stall' (a transfer paused its source for a client a window behind), 'drop' (a
 * client too far behind a shared stream was disconnected), 'release' (bytes went back).
 */
export class InflightBudget extends EventEmitter {
  /** Bytes reserved now, and the most ever reserved at once. */
  bytes = 0
  peak = 0
  /** Counts for /metrics. */
  stalls = 0
  drops = 0
  refused = 0
  private readonly queue: { n: number; grant: (h: Hold) => void; timer: NodeJS.Timeout }[] = []

  constructor(
    readonly limit: number,
    private readonly maxWaiters = 10_000,
  ) {
    super()
  }

  get waiting(): number {
    return this.queue.length
  }

  /** A reservation now, or undefined when it does not fit (or others wait before it). */
  tryTake(n: number): Hold | undefined {
    if (this.queue.length > 0 || !this.fits(n)) return undefined
    return this.take(n)
  }

  /** A reservation now when it fits, else once enough is released; rejects after `timeoutMs`. */
  acquire(n: number, timeoutMs: number): Promise<Hold> {
    const now = this.tryTake(n)
    if (now) return Promise.resolve(now)
    if (this.queue.length >= this.maxWaiters) return Promise.reject(this.overloaded())
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        grant: resolve,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter)
          if (i !== -1) this.queue.splice(i, 1)
          reject(this.overloaded())
          // The head may have been the one that did not fit: the next ones may.
          this.drain()
        }, timeoutMs),
      }
      waiter.timer.unref()
      this.queue.push(waiter)
      this.emit('queued')
    })
  }

  /** Records a client stalled (source paused) or dropped, for /metrics and tests. */
  stalled(): void {
    this.stalls++
    this.emit('stall')
  }

  dropped(): void {
    this.drops++
    this.emit('drop')
  }

  private overloaded(): CdnError {
    this.refused++
    return new CdnError('CDN_ERR_OVERLOADED', 'edge busy: bytes in flight at their bound; retry')
  }

  private fits(n: number): boolean {
    return this.bytes === 0 || this.bytes + n <= this.limit
  }

  private take(n: number): Hold {
    this.add(n)
    this.emit('reserve')
    let bytes = n
    let refs = 1
    const release = (): void => {
      if (refs <= 0 || --refs > 0) return
      this.add(-bytes)
      this.emit('release')
      this.drain()
    }
    const holder = (): (() => void) => {
      let once = true
      return () => {
        if (!once) return
        once = false
        release()
      }
    }
    return {
      get bytes() {
        return bytes
      },
      retain: () => {
        if (refs <= 0) return noop
        refs++
        return holder()
      },
      grow: (more) => {
        if (refs <= 0) return
        bytes += more
        this.add(more)
      },
      release: holder(),
    }
  }

  private add(n: number): void {
    this.bytes += n
    if (this.bytes > this.peak) this.peak = this.bytes
  }

  private drain(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.n)) {
      const w = this.queue.shift()!
      clearTimeout(w.timer)
      w.grant(this.take(w.n))
    }
  }
}

function noop(): void {}
