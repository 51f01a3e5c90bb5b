/**
 * Belady's MIN for a cache bounded by bytes: on a miss the object is admitted and, while the
 * bytes exceed the bound, the object whose next request is farthest is evicted (which may be
 * the newcomer: an object never requested again is not admitted at all). It bounds demand
 * caching: every first request is still a miss. Next uses come from one backward pass; the
 * cache is a max-heap of (next use, id) packed in one double, with stale entries skipped.
 */
import { HIT_DISK, MISS, type Outcome } from './edge-model.js'
import type { Trace } from './trace.js'

const ID_SLOT = 2 ** 24

/** For each request, the index of the next request for the same object (n when none). */
export function nextUses(trace: Trace): Int32Array {
  const n = trace.ids.length
  const next = new Int32Array(n)
  const last = new Int32Array(trace.objects.size).fill(n)
  for (let i = n - 1; i >= 0; i--) {
    const id = trace.ids[i]!
    next[i] = last[id]!
    last[id] = i
  }
  return next
}

class MaxHeap {
  private a = new Float64Array(1024)
  size = 0

  push(v: number): void {
    if (this.size === this.a.length) {
      const b = new Float64Array(this.a.length * 2)
      b.set(this.a)
      this.a = b
    }
    const a = this.a
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]! >= v) break
      a[i] = a[p]!
      i = p
    }
    a[i] = v
  }

  pop(): number {
    const a = this.a
    const top = a[0]!
    const v = a[--this.size]!
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= this.size) break
      const r = l + 1
      const c = r < this.size && a[r]! > a[l]! ? r : l
      if (a[c]! <= v) break
      a[i] = a[c]!
      i = c
    }
    a[i] = v
    return top
  }
}

/** Belady's MIN over a trace: the outcome of request i is `outcome(i)` after `run(i)`. */
export class Belady {
  private readonly next: Int32Array
  /** Next use of each cached object; -1 when not cached. */
  private readonly at: Int32Array
  private readonly heap = new MaxHeap()
  private bytes = 0

  constructor(
    private readonly trace: Trace,
    private readonly capacity: number,
    private readonly sizeOf: (id: number) => number,
    next?: Int32Array,
  ) {
    if (trace.ids.length >= 2 ** 29 || trace.objects.size >= ID_SLOT)
      throw new RangeError('Belady: at most 2^29 requests and 2^24 objects')
    this.next = next ?? nextUses(trace)
    this.at = new Int32Array(trace.objects.size).fill(-1)
  }

  /** Request number `i` of the trace (requests must come in order). */
  request(i: number): Outcome {
    const id = this.trace.ids[i]!
    const nu = this.next[i]!
    const never = nu >= this.trace.ids.length
    if (this.at[id]! >= 0) {
      if (never) {
        this.at[id] = -1
        this.bytes -= this.sizeOf(id)
      } else {
        this.at[id] = nu
        this.heap.push(nu * ID_SLOT + id)
      }
      return HIT_DISK
    }
    const size = this.sizeOf(id)
    if (never || size > this.capacity) return MISS
    this.at[id] = nu
    this.heap.push(nu * ID_SLOT + id)
    this.bytes += size
    while (this.bytes > this.capacity) {
      const top = this.heap.pop()
      const victim = top % ID_SLOT
      if (this.at[victim] !== Math.floor(top / ID_SLOT)) continue
      this.at[victim] = -1
      this.bytes -= this.sizeOf(victim)
    }
    return MISS
  }
}
