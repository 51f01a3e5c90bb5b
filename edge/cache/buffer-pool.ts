/**
 * Reusable body buffers for disk hits. A disk hit reads the body into a buffer that the
 * response then writes; allocating a fresh megabyte per hit costs page faults, zeroing by the
 * kernel and garbage collection (a third of the CPU of a disk hit, measured). Buffers come in
 * 64 KiB size classes and go back to the pool only when the response that used them has
 * finished (the socket has taken every byte); the idle pool is bounded by bytes, and a buffer
 * that would not fit is left to the garbage collector.
 *
 * A lent buffer is handed out to exactly one reader at a time: `lend` returns a release
 * function that works once, so a buffer can never be in the pool and in a response at once.
 */

const CLASS = 64 * 1024

export interface Lease {
  /** Exactly `length` bytes, a view of the pooled buffer. */
  readonly buf: Buffer
  /** Gives the buffer back; later calls do nothing. Only once nothing refers to `buf` any more. */
  readonly release: () => void
}

export class BufferPool {
  private readonly idle = new Map<number, Buffer[]>()
  private idleBytes = 0
  /** Buffers handed out and buffers reused, for tests and figures. */
  lent = 0
  reused = 0

  /** `maxIdleBytes`: most bytes kept idle; objects above a quarter of it are not pooled. */
  constructor(private readonly maxIdleBytes: number) {}

  /** Would a body of this length come from the pool? */
  pools(length: number): boolean {
    return length > 0 && classOf(length) * 4 <= this.maxIdleBytes
  }

  lend(length: number): Lease {
    const size = classOf(length)
    const list = this.idle.get(size)
    let whole = list?.pop()
    if (whole) {
      this.idleBytes -= size
      this.reused++
    } else {
      whole = Buffer.allocUnsafeSlow(size)
    }
    this.lent++
    const buf = whole.subarray(0, length)
    let out = true
    return {
      buf,
      release: () => {
        if (!out) return
        out = false
        this.giveBack(whole)
      },
    }
  }

  private giveBack(whole: Buffer): void {
    if (this.idleBytes + whole.length > this.maxIdleBytes) return
    let list = this.idle.get(whole.length)
    if (!list) {
      list = []
      this.idle.set(whole.length, list)
    }
    list.push(whole)
    this.idleBytes += whole.length
  }

  get idleBytesHeld(): number {
    return this.idleBytes
  }
}

function classOf(length: number): number {
  return Math.ceil(length / CLASS) * CLASS
}
