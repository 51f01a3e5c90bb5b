/**
 * Admission to the disk tier (`--disk-admission`): whether a viewer's miss is written to disk
 * or kept in memory only. Prefill's writes (protected) are always admitted.
 *
 * - `frequency`: a doorkeeper on misses alone: an object goes to disk on its second miss within
 *   the recent window, so one-off requests (the tail of a session nobody else watches) do not
 *   push out of the disk tier the segments other viewers come back for.
 * - `demand`: by expected demand (demand-order.ts DemandAdmission, the model of demand.ts).
 * - `tinylfu`: TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache
 *   Admission Policy", 2017; the admission of Caffeine's W-TinyLFU). Every request (hit or
 *   miss) is counted; a miss goes to disk when the disk has room, or when the candidate's
 *   estimated recent frequency beats that of the record the disk would evict for it (its LRU
 *   victim, DiskIndex.victim). The memory tier in front plays W-TinyLFU's window: a new object
 *   is served from memory while its count builds up. First occurrences stop at a doorkeeper
 *   (a Bloom filter), so the one-off majority never reaches the sketch.
 *
 * Counts live in a count-min sketch (four rows of byte counters, a fixed number of bytes from
 * the window, never a map that grows with keys) and are halved every `window` samples (TinyLFU's
 * aging; the doorkeeper is cleared at the same time), so a count reflects recent demand.
 *
 * The tiered store asks `admit` once per write it is given (a miss, or a refetch) and calls
 * `record` once per content request (edge/http/serve.ts, through TieredStore.noteRequest); the
 * hit-ratio replay (bench/hit-ratio) builds the same object with `diskAdmission` and calls both
 * at the same points, so what the replay measures is what the edge does.
 */

export type AdmissionMode = 'all' | 'frequency' | 'tinylfu' | 'demand'
export const ADMISSION_MODES: readonly AdmissionMode[] = ['all', 'frequency', 'tinylfu', 'demand']

export interface DiskAdmission {
  /**
   * Whether a write of `key` goes to disk (`frequency` also counts it). `victim` answers the
   * key the disk tier would evict first to make room for the write (undefined: room without
   * evicting); asked only by admissions that compare against it.
   */
  admit(key: string, victim?: () => string | undefined): boolean
  /** Counts one request for `key`, hit or miss (admissions that learn from misses alone leave it out). */
  record?(key: string): void
}

const ROWS = 4
/** The seed of every key's second hash (the probes are h1 + i·h2). */
const SEED2 = 0x9e3779b9
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

/** A count-min sketch of recent samples per key with TinyLFU's halving. */
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

  /** The key's estimated count, then counts it once more (one sample). */
  record(key: string): number {
    const h1 = hash(key, 0)
    const h2 = hash(key, SEED2) | 1
    const min = this.estimateOf(h1, h2)
    this.bump(h1, h2, min)
    this.sample()
    return min
  }

  /** The key's estimated count (the least of its counters), without counting it. */
  estimate(key: string): number {
    return this.estimateOf(hash(key, 0), hash(key, SEED2) | 1)
  }

  /** @internal the estimate for a key's two hashes. */
  estimateOf(h1: number, h2: number): number {
    const width = this.mask + 1
    let min = MAX_COUNT
    for (let row = 0; row < ROWS; row++) {
      const n = this.table[row * width + ((h1 + row * h2) & this.mask)]!
      if (n < min) min = n
    }
    return min
  }

  /** @internal counts a key (its two hashes, its estimate `min`) once more. */
  bump(h1: number, h2: number, min: number): void {
    // Conservative update: only the counters at the minimum grow (fewer overestimates).
    if (min >= MAX_COUNT) return
    const width = this.mask + 1
    for (let row = 0; row < ROWS; row++) {
      const slot = row * width + ((h1 + row * h2) & this.mask)
      if (this.table[slot] === min) this.table[slot] = min + 1
    }
  }

  /** @internal one more sample: every `window` samples, every count is halved. Whether it was. */
  sample(): boolean {
    if (++this.samples < this.window) return false
    this.samples = 0
    this.resets++
    for (let i = 0; i < this.table.length; i++) this.table[i] = this.table[i]! >> 1
    return true
  }
}

/** A Bloom filter of keys (three probes from two hashes), cleared as a whole. */
export class Doorkeeper {
  private readonly bits: Uint32Array
  private readonly mask: number

  /** `capacity`: keys held at once before false positives grow (eight bits per key). */
  constructor(capacity: number) {
    const bits = 2 ** Math.ceil(Math.log2(Math.max(256, capacity * 8)))
    this.mask = bits - 1
    this.bits = new Uint32Array(bits / 32)
  }

  get bytes(): number {
    return this.bits.byteLength
  }

  /** Adds the key (its two hashes); whether it was (probably) there already. */
  add(h1: number, h2: number): boolean {
    let seen = true
    for (let k = 0; k < 3; k++) {
      const bit = (h1 + k * h2) & this.mask
      const word = bit >>> 5
      const m = 1 << (bit & 31)
      if ((this.bits[word]! & m) === 0) {
        seen = false
        this.bits[word] = this.bits[word]! | m
      }
    }
    return seen
  }

  has(h1: number, h2: number): boolean {
    for (let k = 0; k < 3; k++) {
      const bit = (h1 + k * h2) & this.mask
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false
    }
    return true
  }

  clear(): void {
    this.bits.fill(0)
  }
}

/**
 * TinyLFU: requests counted through a doorkeeper into the sketch; a write admitted when the
 * disk has room or when the candidate's estimate beats the victim's.
 */
export class TinyLfuAdmission implements DiskAdmission {
  readonly sketch: FrequencySketch
  readonly doorkeeper: Doorkeeper
  admitted = 0
  refused = 0

  constructor(window: number) {
    this.sketch = new FrequencySketch(window)
    this.doorkeeper = new Doorkeeper(window)
  }

  record(key: string): void {
    const h1 = hash(key, 0)
    const h2 = hash(key, SEED2) | 1
    // A key's first sample in the window only sets its doorkeeper bits.
    if (this.doorkeeper.add(h1, h2)) this.sketch.bump(h1, h2, this.sketch.estimateOf(h1, h2))
    if (this.sketch.sample()) this.doorkeeper.clear()
  }

  /** Recent requests of `key`: the sketch's count, plus one when the doorkeeper holds it. */
  frequency(key: string): number {
    const h1 = hash(key, 0)
    const h2 = hash(key, SEED2) | 1
    return this.sketch.estimateOf(h1, h2) + (this.doorkeeper.has(h1, h2) ? 1 : 0)
  }

  admit(key: string, victim?: () => string | undefined): boolean {
    const v = victim?.()
    const ok = v === undefined || this.frequency(key) > this.frequency(v)
    if (ok) this.admitted++
    else this.refused++
    return ok
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
 * goes to disk), else a frequency filter or TinyLFU whose window is `window` samples, or (0)
 * ten times the objects the disk holds at `meanObjectBytes` each (Caffeine's sample size).
 */
export function diskAdmission(
  mode: AdmissionMode,
  diskSize: number,
  window: number,
  meanObjectBytes = 1e6,
): DiskAdmission | undefined {
  // `demand` is the demand model's (demand-order.ts DemandAdmission, built with the model).
  if (mode === 'all' || mode === 'demand' || diskSize <= 0) return undefined
  const w = window > 0 ? window : Math.max(1000, Math.round((10 * diskSize) / meanObjectBytes))
  return mode === 'tinylfu' ? new TinyLfuAdmission(w) : new FrequencyAdmission(w)
}
