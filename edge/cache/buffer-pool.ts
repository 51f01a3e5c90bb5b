/**
 * Reusable body buffers: a disk hit's body, a miss's body (edge/upstream/flight.ts) and the
 * chunks of a streamed hit. Allocating a fresh megabyte per transfer costs page faults, zeroing
 * by the kernel and garbage collection (a third of the CPU of a disk hit, measured), and worse,
 * memory: a freed Buffer is only returned at V8's next garbage collection, which an idle process
 * never runs, and glibc then keeps much of it in its arenas. Under a burst of misses the edge's
 * RSS grew by the dead buffers and stayed there after the load (bench/results/boundary-before.md).
 *
 * So each buffer is a resizable ArrayBuffer (ES2024, in size classes an eighth apart): V8 reserves its address space with mmap,
 * not malloc, commits pages as it grows, and `resize(0)` gives the pages back to the kernel at
 * once (madvise), with no garbage collection. A buffer goes back to the pool only when the
 * response that used it has finished (the socket has taken every byte); one idle for `idleMs`
 * is decommitted, so the pool shrinks to nothing a few seconds after a burst; the idle pool is
 * bounded by bytes, and a buffer that would not fit is decommitted when it comes back.
 *
 * The idle bound can also follow the in-flight budget (`boundIdle`): bytes kept idle plus bytes
 * reserved for transfers never exceed the budget, so under a full budget the pool keeps nothing
 * idle and the edge's body memory is the budget, not the budget plus the pool.
 *
 * A lent buffer is handed out to exactly one user at a time: `lend` returns a release function
 * that works once, so a buffer can never be in the pool and in a response at once.
 */
import type { Clock } from '../../src/clock.js'

/** Smallest size class (see classOf). */
const MIN_CLASS = 64 * 1024
/** Default time an idle buffer keeps its pages. */
const IDLE_MS = 10_000

/** ES2024's resizable ArrayBuffer (Node 20 has it); the project's TypeScript lib is ES2023. */
interface Resizable extends ArrayBuffer {
  resize(byteLength: number): void
}
const Resizable = ArrayBuffer as unknown as new (
  byteLength: number,
  opts: { maxByteLength: number },
) => Resizable

export interface Lease {
  /** Exactly `length` bytes, a view of the pooled buffer. */
  readonly buf: Buffer
  /** Gives the buffer back; later calls do nothing. Only once nothing refers to `buf` any more. */
  readonly release: () => void
}

export interface BufferPoolOptions {
  /** An idle buffer unused this long gives its pages back (default 10 s). */
  idleMs?: number
  /** Longest body pooled (default: a quarter of the idle bound). */
  maxLength?: number
  /** Monotonic time for idleness (default: performance.now). */
  clock?: Pick<Clock, 'monotonic'>
}

interface Slot {
  ab: Resizable
  /** Monotonic ms when it came back. */
  since: number
}

export class BufferPool {
  /** Idle buffers per size class, oldest first. */
  private readonly idle = new Map<number, Slot[]>()
  private idleBytes = 0
  private lentBytes = 0
  private timer: NodeJS.Timeout | undefined
  private readonly idleMs: number
  private readonly maxLength: number
  private readonly clock: Pick<Clock, 'monotonic'>
  /** Room for idle bytes now (see boundIdle); the constructor's bound when unset. */
  private room: () => number = () => Number.POSITIVE_INFINITY
  /** Buffers handed out, buffers reused, and idle buffers whose pages were given back. */
  lent = 0
  reused = 0
  decommitted = 0

  /** `maxIdleBytes`: most bytes kept idle. */
  constructor(
    private readonly maxIdleBytes: number,
    opts: BufferPoolOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? IDLE_MS
    this.maxLength = opts.maxLength ?? Math.floor(maxIdleBytes / 4)
    this.clock = opts.clock ?? { monotonic: () => performance.now() }
  }

  /**
   * Bounds idle bytes also by `room()` (e.g. the in-flight budget's limit less the bytes
   * reserved): checked when a buffer comes back and before a new one is allocated, when the
   * oldest idle buffers are given back first.
   */
  boundIdle(room: () => number): void {
    this.room = room
  }

  /** Would a body of this length come from the pool? */
  pools(length: number): boolean {
    return length > 0 && length <= this.maxLength
  }

  lend(length: number): Lease {
    const size = classOf(length)
    const slot = this.idle.get(size)?.pop()
    let ab: Resizable
    if (slot) {
      ab = slot.ab
      this.idleBytes -= ab.byteLength
      this.reused++
      if (ab.byteLength < length) ab.resize(length)
    } else {
      this.shed(this.room())
      ab = new Resizable(length, { maxByteLength: size })
    }
    const held = ab.byteLength
    this.lentBytes += held
    this.lent++
    let out = true
    return {
      buf: Buffer.from(ab, 0, length),
      release: () => {
        if (!out) return
        out = false
        this.lentBytes -= held
        this.giveBack(ab, size)
      },
    }
  }

  /** Gives back the pages of every buffer idle for `idleMs` or more; returns how many. */
  trim(): number {
    const now = this.clock.monotonic()
    let n = 0
    for (const list of this.idle.values()) {
      while (list.length > 0 && now - list[0]!.since >= this.idleMs) {
        this.decommit(list.shift()!.ab)
        n++
      }
    }
    this.schedule()
    return n
  }

  /** Gives back every idle buffer's pages and stops the idle timer. */
  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const list of this.idle.values()) for (const s of list.splice(0)) this.decommit(s.ab)
  }

  get idleBytesHeld(): number {
    return this.idleBytes
  }

  /** Bytes of the buffers lent now (not yet given back). */
  get lentBytesHeld(): number {
    return this.lentBytes
  }

  /** Bytes the pool's buffers hold now, lent and idle (what it adds to RSS). */
  get bytesHeld(): number {
    return this.idleBytes + this.lentBytes
  }

  /** Gives back the oldest idle buffers until at most `bound` bytes are idle. */
  private shed(bound: number): void {
    while (this.idleBytes > Math.max(0, bound)) {
      let oldest: Slot[] | undefined
      for (const list of this.idle.values())
        if (list.length > 0 && (!oldest || list[0]!.since < oldest[0]!.since)) oldest = list
      if (!oldest) return
      this.decommit(oldest.shift()!.ab)
    }
  }

  private giveBack(ab: Resizable, size: number): void {
    if (this.idleBytes + ab.byteLength > Math.min(this.maxIdleBytes, this.room())) {
      ab.resize(0)
      this.decommitted++
      return
    }
    let list = this.idle.get(size)
    if (!list) {
      list = []
      this.idle.set(size, list)
    }
    list.push({ ab, since: this.clock.monotonic() })
    this.idleBytes += ab.byteLength
    this.schedule()
  }

  private decommit(ab: Resizable): void {
    this.idleBytes -= ab.byteLength
    ab.resize(0)
    this.decommitted++
  }

  /** A trim once the oldest idle buffer may be due; unref'd, so it never keeps a process up. */
  private schedule(): void {
    if (this.timer || this.idleBytes === 0) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.trim()
    }, this.idleMs)
    this.timer.unref()
  }
}

/**
 * The buffer size reserved for a length: 2^k (1 + j/8), at least MIN_CLASS, so a buffer reused
 * for a shorter body of its class holds at most an eighth more than the bytes in flight counted.
 */
function classOf(length: number): number {
  let base = MIN_CLASS
  while (base * 2 < length) base *= 2
  if (length <= base) return base
  const step = base / 8
  return base + Math.ceil((length - base) / step) * step
}
