/**
 * A TinyLFU-style frequency filter in front of the disk tier's LRU, for measuring whether it
 * moves the figure (it is not in the edge yet): a viewer's miss goes to disk only when the
 * object was already asked for within the recent window, so one-off requests (the tail of a
 * session nobody else watches) do not flush segments others come back for. Counts are exact
 * with TinyLFU's aging (every count halved each `window` requests): an upper bound on what a
 * count-min sketch of the same window gives.
 */
export class FrequencyFilter {
  private counts = new Map<number, number>()
  private samples = 0

  constructor(readonly window: number) {}

  /** Counts a request; returns the count before it. */
  record(id: number): number {
    const before = this.counts.get(id) ?? 0
    this.counts.set(id, before + 1)
    if (++this.samples >= this.window) this.age()
    return before
  }

  private age(): void {
    this.samples = 0
    const next = new Map<number, number>()
    for (const [id, n] of this.counts) if (n >= 2) next.set(id, n >> 1)
    this.counts = next
  }
}
