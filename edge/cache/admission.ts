/**
 * Admission to the disk tier (`--disk-admission`): whether a viewer's miss is written to disk
 * or kept in memory only. `frequency` is a TinyLFU-style doorkeeper: an object goes to disk on
 * its second miss within the recent window, so one-off requests (the tail of a session nobody
 * else watches) do not push out of the disk tier the segments other viewers come back for.
 * Counts live in a count-min sketch (four rows of byte counters, a fixed number of bytes from
 * the window, never a map that grows with keys) and are halved every `window` misses (TinyLFU's
 * aging), so a count reflects recent demand. Prefill's writes (protected) are always admitted.
 *
 * The tiered store asks `admit` once per write it is given (a miss, or a refetch); the hit-ratio
 * replay (bench/hit-ratio) builds the same object with `diskAdmission` and asks it at the same
 * point, so what the replay measures is what the edge does.
 */

export type AdmissionMode = 'all' | 'frequency'
export const ADMISSION_MODES: readonly AdmissionMode[] = ['all', 'frequency']

export interface DiskAdmission {
  /** Counts one more write of `key`; whether it goes to disk. */
  admit(key: string): boolean
}

const ROWS = 4
const MAX_COUNT = 255

/** FNV-1a over the key's UTF-16 code units: fast, and good enough to spread keys over rows. */
function hash(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // Final avalanche (murmur3's fmix32) so nearby keys land far apart.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A count-min sketch of recent writes per key with TinyLFU's halving. */
export class FrequencySketch {
  private readonly table: Uint8Array
  private readonly mask: number
  private samples = 0
  /** Times every count was halved (for tests and figures). */
  resets = 0

  constructor(readonly window: number) {
    // About one counter per sample of the window, per row: few collisions among the keys seen.
    const width = 2 ** Math.ceil(Math.log2(Math.max(64, window)))
    this.mask = width - 1
    this.table = new Uint8Array(width * ROWS)
  }

  /** Bytes the sketch holds. */
  get bytes(): number {
    return this.table.length
  }

  /** The key's estimated count, then counts it once more. */
  record(key: string): number {
    const h1 = hash(key, 0)
    const h2 = hash(key, 0x9e3779b9) | 1
    const width = this.mask + 1
    let min = MAX_COUNT
    const slots: number[] = []
    for (let row = 0; row < ROWS; row++) {
      const slot = row * width + ((h1 + row * h2) & this.mask)
      slots.push(slot)
      const n = this.table[slot]!
      if (n < min) min = n
    }
    // Conservative update: only the counters at the minimum grow (fewer overestimates).
    if (min < MAX_COUNT) for (const slot of slots) if (this.table[slot] === min) this.table[slot] = min + 1
    if (++this.samples >= this.window) this.age()
    return min
  }

  private age(): void {
    this.samples = 0
    this.resets++
    for (let i = 0; i < this.table.length; i++) this.table[i] = this.table[i]! >> 1
  }
}

/** Admits on the second write of a key within the window. */
export class FrequencyAdmission implements DiskAdmission {
  readonly sketch: FrequencySketch
  admitted = 0
  refused = 0

  constructor(window: number) {
    this.sketch = new FrequencySketch(window)
  }

  admit(key: string): boolean {
    const ok = this.sketch.record(key) > 0
    if (ok) this.admitted++
    else this.refused++
    return ok
  }
}

/**
 * The admission a disk tier of `diskSize` bytes is given: undefined for `all` (every write
 * goes to disk), else a frequency filter whose window is `window` writes, or (0) ten times the
 * objects the disk holds at `meanObjectBytes` each.
 */
export function diskAdmission(
  mode: AdmissionMode,
  diskSize: number,
  window: number,
  meanObjectBytes = 1e6,
): DiskAdmission | undefined {
  if (mode === 'all' || diskSize <= 0) return undefined
  const w = window > 0 ? window : Math.max(1000, Math.round((10 * diskSize) / meanObjectBytes))
  return new FrequencyAdmission(w)
}
