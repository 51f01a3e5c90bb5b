/**
 * The edge's cache, in-process and without I/O, for replaying traces: the memory tier is the
 * edge's own MemoryStore built by the function the server uses (edge/main.ts `memoryTier`),
 * the disk tier is the edge's DiskIndex (LRU by bytes with the protected share, built by
 * `DiskIndex.forTier` as the disk store builds it), records are sized by the disk format's
 * `fileSize`, and the tiered store's two choices (which tiers a write goes to, when a disk hit
 * is promoted) are its exported `writeTiers` and `promotesOnDiskHit`. Only the bytes are
 * missing: a memory entry's body is a view of one shared zero buffer, and a disk record has no
 * file. test/bench/hit-ratio.test.ts replays a trace through this model and through a real
 * TieredStore on a temp dir and checks that both give the same outcome for every request.
 *
 * The prefill port (EdgeFillPort) over the model lets the real prefill target and planner
 * (edge/prefill) plan and fill it, as wiring.ts does on a running edge.
 */
import type { DiskAdmission } from '../../edge/cache/admission.js'
import { fileSize } from '../../edge/cache/disk-format.js'
import { DiskIndex, DiskRecord } from '../../edge/cache/disk-index.js'
import type { DemandModel } from '../../edge/cache/demand.js'
import { type CacheEntry, type EntryMeta, makeEntry } from '../../edge/cache/entry.js'
import type { MemoryStore } from '../../edge/cache/memory-store.js'
import { type ProtectedShare, protectedShareOf } from '../../edge/cache/protected-share.js'
import { promotesOnDiskHit, writeTiers } from '../../edge/cache/tiered-store.js'
import type { EdgeConfig } from '../../edge/config/spec.js'
import { admissionFor, demandFor, memoryTier } from '../../edge/main.js'
import type { EdgeFillPort } from '../../edge/prefill/edge-target.js'
import { type Clock, systemClock } from '../../src/clock.js'

/** The model keeps no files: every record's identity is this one. */
const NO_FILE = { dev: 0, ino: 0, size: 0, mtimeMs: 0 }
import type { ObjectTable } from './trace.js'

export const HIT_MEMORY = 0
export const HIT_DISK = 1
export const MISS = 2
export type Outcome = typeof HIT_MEMORY | typeof HIT_DISK | typeof MISS

/** What the upstream says of every object: immutable, cacheable for a year. */
const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'public, max-age=31536000, immutable',
  'content-type': 'video/iso.segment',
  date: 'Mon, 05 Jan 2026 04:00:00 GMT',
  etag: '"0123456789abcdef"',
})

/**
 * Per-object entries and file sizes, made once per object and shared by every replay of a
 * trace (ids index dense arrays, grown as the table grows: prefill may intern new objects).
 */
export class Entries {
  private zero = Buffer.alloc(0)
  private readonly disk: Array<CacheEntry | undefined> = []
  private readonly memory: Array<CacheEntry | undefined> = []
  private sizes = new Float64Array(0)
  private protectedSizes = new Float64Array(0)

  constructor(readonly objects: ObjectTable) {}

  /** The meta an upstream answer for the object gives (crc32 left 0: no body is read). */
  meta(id: number, prot: boolean): EntryMeta {
    return {
      key: this.objects.keys[id]!,
      status: 200,
      headers: HEADERS as Record<string, string>,
      requestTime: 0,
      responseTime: 0,
      bodyLength: this.objects.bytes[id]!,
      crc32: 0,
      ...(prot ? { protected: true } : {}),
    }
  }

  /** The entry a disk record holds (no body). */
  diskEntry(id: number): CacheEntry {
    let e = this.disk[id]
    if (!e) {
      while (this.disk.length <= id) this.disk.push(undefined)
      e = makeEntry(this.meta(id, false), undefined, { heuristicMaxMs: 0 })
      this.disk[id] = e
    }
    return e
  }

  /** The entry the memory tier holds: its body is a view of a shared zero buffer. */
  memoryEntry(id: number): CacheEntry {
    let e = this.memory[id]
    if (!e) {
      const bytes = this.objects.bytes[id]!
      if (this.zero.length < bytes) this.zero = Buffer.alloc(Math.max(bytes, this.zero.length * 2))
      while (this.memory.length <= id) this.memory.push(undefined)
      e = { ...this.diskEntry(id), body: this.zero.subarray(0, bytes) }
      this.memory[id] = e
    }
    return e
  }

  /** Bytes the object's file takes on disk (body and trailer). */
  fileSize(id: number, prot: boolean): number {
    let arr = prot ? this.protectedSizes : this.sizes
    if (id >= arr.length) {
      const grown = new Float64Array(Math.max(1024, this.objects.size, id + 1) * 1.5)
      grown.set(arr)
      arr = grown
      if (prot) this.protectedSizes = grown
      else this.sizes = grown
    }
    let n = arr[id]!
    if (n === 0) {
      n = fileSize(this.meta(id, prot))
      arr[id] = n
    }
    return n
  }
}

export interface FillCounters {
  /** Bytes and objects prefill fetched from upstream. */
  bytes: number
  objects: number
}

export class ReplayEdge {
  readonly memory: MemoryStore
  readonly index: DiskIndex
  readonly share: ProtectedShare
  readonly filled: FillCounters = { bytes: 0, objects: 0 }
  private readonly diskDisabled: boolean

  /** The disk tier's admission, built from the config as the edge builds it (edge/main.ts). */
  readonly admission: DiskAdmission | undefined

  constructor(
    readonly config: Readonly<EdgeConfig>,
    readonly entries: Entries,
    /** The demand model's time (--disk-eviction/--disk-admission demand): the trace's. */
    clock: Clock = systemClock,
    /** A demand model in place of the one the config builds (oracle-demand.ts). */
    model?: DemandModel,
  ) {
    this.memory = memoryTier(config)
    const demand = model ?? demandFor(config, clock)
    this.admission = admissionFor(config, demand)
    this.index = DiskIndex.forTier(
      {
        maxBytes: config.diskSize,
        protectedShare: config.protectedShare,
        lowRendition: config.diskLowRendition,
        ...(demand && config.diskEviction === 'demand' ? { demand } : {}),
      },
      () => undefined,
    )
    this.share = protectedShareOf(this.index)
    this.diskDisabled = config.diskSize <= 0
  }

  /**
   * One viewer's request: where it was served from (a miss is fetched and stored). Counted
   * first, as the request path counts it (edge/http/serve.ts: TieredStore.noteRequest).
   */
  request(id: number): Outcome {
    const key = this.entries.objects.keys[id]!
    this.admission?.record?.(key)
    if (this.memory.getInMemory(key)) return HIT_MEMORY
    if (this.readDisk(id)) return HIT_DISK
    this.store(id, false)
    return MISS
  }

  /** A disk read: marks the record used and promotes the object when memory takes it. */
  private readDisk(id: number): boolean {
    const rec = this.index.get(this.entries.objects.keys[id]!)
    if (!rec) return false
    this.index.touch(rec)
    if (promotesOnDiskHit(this.memory, this.entries.objects.bytes[id]!))
      this.memory.put(this.entries.memoryEntry(id))
    return true
  }

  /** A committed write (a viewer's miss, or a prefill's fetch with `prot`). */
  store(id: number, prot: boolean): void {
    const key = this.entries.objects.keys[id]!
    const size = this.entries.fileSize(id, prot)
    const tiers = writeTiers(
      { protected: prot, key },
      this.diskDisabled,
      this.admission,
      () => this.index.victim(this.entries.objects.bytes[id]!)?.key,
    )
    if (tiers !== 'disk') this.memory.put(this.entries.memoryEntry(id))
    if (tiers === 'memory') return
    this.index.add(
      new DiskRecord(
        {
          key: this.entries.objects.keys[id]!,
          file: '',
          id: NO_FILE,
          size,
          protected: prot,
        },
        this.entries.diskEntry(id),
      ),
    )
  }

  /** Held in either tier (no use recorded: the store's `lookup`). */
  holds(id: number): boolean {
    const key = this.entries.objects.keys[id]!
    return this.memory.lookup(key) !== undefined || this.index.get(key) !== undefined
  }

  /**
   * The prefill port over this model (what wiring.ts builds over a running edge): `sizeOf` and
   * `textOf` answer as the upstream would.
   */
  fillPort(upstream: {
    sizeOf(path: string): number | undefined
    textOf(path: string): string | undefined
  }): EdgeFillPort {
    const objects = this.entries.objects
    const idOf = (path: string) => {
      const known = objects.idOf(path)
      if (known !== undefined) return known
      const size = upstream.sizeOf(path)
      return size === undefined ? undefined : objects.intern(path, size)
    }
    return {
      keyOf: (path) => path,
      fill: async (path, opts) => {
        const id = idOf(path)
        if (id === undefined) return { key: path, how: 'fetched', status: 404, bytes: 0, stored: false }
        const bytes = objects.bytes[id]!
        if (this.holds(id)) return { key: path, how: 'held', status: 200, bytes, stored: true }
        this.store(id, opts.protect)
        this.filled.bytes += bytes
        this.filled.objects++
        return { key: path, how: 'fetched', status: 200, bytes, stored: this.holds(id) }
      },
      holds: (key) => {
        const id = objects.idOf(key)
        return id !== undefined && this.holds(id)
      },
      heldBytes: (key) => {
        const id = objects.idOf(key)
        return id !== undefined && this.holds(id) ? objects.bytes[id] : undefined
      },
      readHeld: async (key) => {
        const id = objects.idOf(key)
        if (id === undefined || !(this.memory.getInMemory(key) || this.readDisk(id))) return undefined
        const text = upstream.textOf(key)
        return text === undefined ? undefined : Buffer.from(text)
      },
      head: async (path) => {
        const size = upstream.sizeOf(path)
        return size === undefined ? { status: 404, length: undefined } : { status: 200, length: size }
      },
      protection: this.share,
    }
  }
}

/** The floor: one LRU by bytes of `capacity` (the disk index with no protected share). */
export class PlainLru {
  private readonly index: DiskIndex

  constructor(
    capacity: number,
    private readonly entries: Entries,
  ) {
    this.index = DiskIndex.forTier({ maxBytes: capacity, protectedShare: 0 }, () => undefined)
  }

  request(id: number): Outcome {
    const key = this.entries.objects.keys[id]!
    const rec = this.index.get(key)
    if (rec) {
      this.index.touch(rec)
      return HIT_DISK
    }
    this.index.add(
      new DiskRecord(
        { key, file: '', id: NO_FILE, size: this.entries.fileSize(id, false), protected: false },
        this.entries.diskEntry(id),
      ),
    )
    return MISS
  }
}
