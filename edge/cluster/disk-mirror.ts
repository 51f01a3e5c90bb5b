/**
 * A cluster worker's disk tier: a read-only mirror of the primary's disk index, reading the
 * primary's files through the same DiskReader as the disk store. It never scans, writes,
 * rewrites or unlinks: the index is fed with the primary's changes (`apply`, from `disk`
 * messages), and the keys it read are handed back (`takeRead`) for the primary's LRU.
 */
import type { Clock } from '../../src/clock.js'
import { DiskIndex, DiskRecord } from '../cache/disk-index.js'
import type { DiskErrorLog } from '../cache/disk-errors.js'
import type { DiskReaderHooks } from '../cache/disk-fds.js'
import { DiskReader } from '../cache/disk-reader.js'
import { DiskErrors, DiskReads, type DiskTier } from '../cache/disk-tier.js'
import type { CacheEntry, EntryMeta, EntryOptions } from '../cache/entry.js'
import type { FileId } from '../cache/file-id.js'
import type { CacheWriter, StoreStats } from '../cache/store.js'
import type { SendFile } from '../native/sendfile.js'

/** One change to the primary's index, as a mirror applies it. */
export type DiskEvent =
  | { op: 'add'; file: string; size: number; id: FileId; meta: EntryMeta }
  | { op: 'remove'; key: string; file: string }

/** The primary's side: an index change as an event. */
export function diskEvent(rec: DiskRecord, op: 'add' | 'remove'): DiskEvent {
  return op === 'add'
    ? { op, file: rec.file, size: rec.size, id: rec.id, meta: rec.entry.meta }
    : { op, key: rec.key, file: rec.file }
}

/** What a mirror's writer does: accepts bytes, stores nothing (the primary writes). */
const NO_WRITE: CacheWriter = {
  write: () => undefined,
  commit: async () => undefined,
  abort: () => undefined,
}

export interface DiskMirrorOptions extends EntryOptions {
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
  /** Largest read done on the event loop, of a hot file only (--disk-sync-read-max). */
  syncReadMax?: number
  /** Streamed bodies are sent with it (sendfile(2), edge/native/sendfile.ts; --disk-sendfile). */
  sendfile?: SendFile
  /** Most bytes of one send on the event loop (--disk-sendfile-max-chunk; disk-reader.ts). */
  loopChunk?: number
  clock: Clock
  /** Test hooks (undefined in production). */
  hooks?: DiskReaderHooks
}

export class DiskMirror extends DiskReads implements DiskTier {
  /** Unbounded: the primary's index holds the bound, and its evictions arrive as events. */
  protected readonly index = new DiskIndex(
    Number.POSITIVE_INFINITY,
    Number.POSITIVE_INFINITY,
    () => undefined,
  )
  protected readonly reader: DiskReader
  private readonly errors: DiskErrors
  /** Keys read since the last `takeRead`. */
  private readonly readKeys = new Set<string>()
  readonly disabled = false

  constructor(private readonly opts: DiskMirrorOptions) {
    super()
    this.errors = new DiskErrors(() => opts.clock.monotonic())
    this.reader = new DiskReader({
      index: this.index,
      maxFds: opts.maxFds,
      ...(opts.syncReadMax !== undefined ? { syncReadMax: opts.syncReadMax } : {}),
      ...(opts.sendfile ? { sendfile: opts.sendfile } : {}),
      ...(opts.loopChunk !== undefined ? { loopChunk: opts.loopChunk } : {}),
      clock: opts.clock,
      errors: this.errors,
      dropped: () => undefined,
      read: (key) => this.readKeys.add(key),
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
    })
  }

  /** Applies the primary's index changes (a replaced or removed file's cached fd is dropped). */
  apply(events: readonly DiskEvent[]): void {
    for (const ev of events) {
      this.reader.forget(ev.file)
      if (ev.op === 'remove') {
        this.index.remove(ev.key)
        continue
      }
      const fields = { key: ev.meta.key, file: ev.file, size: ev.size, id: ev.id, protected: false }
      this.index.add(new DiskRecord(fields, ev.meta, this.opts))
    }
  }

  /** The keys read since the last call (the primary marks them recently used). */
  takeRead(): string[] {
    if (!this.readKeys.size) return []
    const keys = [...this.readKeys]
    this.readKeys.clear()
    return keys
  }

  createWriter(): CacheWriter {
    return NO_WRITE
  }

  async updateMeta(): Promise<CacheEntry | undefined> {
    return undefined
  }

  /** Forgets the key here (the primary unlinks the file; its event follows). */
  async delete(key: string): Promise<boolean> {
    let held = false
    // A URL's variants go with it (variants.ts).
    for (const k of [key, ...this.index.variants.keys(key)]) {
      const rec = this.index.remove(k)
      if (!rec) continue
      this.reader.forget(rec.file)
      held = true
    }
    return held
  }

  /** The bytes are the primary's, counted there once; errors are this worker's own. */
  stats(): StoreStats {
    return { diskErrors: this.errors.count, diskReads: { ...this.reader.reads } }
  }

  /** Disk errors logged, rate-limited (attach a logger once the app has one). */
  get errorLog(): DiskErrorLog {
    return this.errors.log
  }

  /** Disk errors by errno code, for /metrics. */
  get errorsByCode(): ReadonlyMap<string, number> {
    return this.errors.byCode
  }

  async close(): Promise<void> {
    this.reader.close()
  }
}
