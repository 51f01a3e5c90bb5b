/**
 * The memory tier: lru-cache bounded by bytes (`maxSize` + `sizeCalculation`). Each entry
 * holds its body as one Buffer. Objects larger than `maxEntryShare` of the tier are refused
 * (they live on disk only), so one big object cannot flush the hot set.
 */
import { LRUCache } from 'lru-cache'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry } from './entry.js'
import { PurgeGenerations } from './purge-generations.js'
import {
  type CacheStore,
  type CacheWriter,
  isRevalidated,
  type StoreStats,
  TitleIndex,
  type Validators,
} from './store.js'
import { isVariantKey, VariantIndex } from './variants.js'
import { compressible, Encoder, encodingsOf, MIN_COMPRESS_BYTES } from './compress.js'

/** Rough per-entry bookkeeping cost, so many tiny objects still count against the bound. */
const ENTRY_OVERHEAD = 512

export interface MemoryStoreOptions extends EntryOptions {
  maxBytes: number
  /** Share of maxBytes above which an object is not kept in memory. */
  maxEntryShare: number
  /** Variants kept per URL (variants.ts); unbounded when not given. */
  maxVariants?: number
}

export class MemoryStore implements CacheStore {
  private readonly lru: LRUCache<string, CacheEntry> | undefined
  private readonly index = new TitleIndex()
  /** The variants of each URL held here (variants.ts). */
  readonly variants: VariantIndex
  private evictions = 0
  /** Purges of this tier: nothing that started before one stores its objects after it. */
  private readonly gens = new PurgeGenerations()
  readonly maxEntryBytes: number
  /** Encodes playlists and JSON once each, when this tier takes them (compress.ts; with `compress`). */
  readonly encoder = new Encoder()

  constructor(private readonly opts: MemoryStoreOptions) {
    this.maxEntryBytes = Math.floor(opts.maxBytes * opts.maxEntryShare)
    this.variants = new VariantIndex(opts.maxVariants)
    if (opts.maxBytes <= 0) return
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: opts.maxBytes,
      sizeCalculation: (e) => entrySize(e),
      dispose: (e, key, reason) => {
        if (reason === 'set') return
        if (reason === 'evict') this.evictions++
        this.index.remove(e.title, key)
        this.variants.remove(key)
      },
    })
  }

  /** Would an object of this size be kept here? */
  fits(bodyLength: number): boolean {
    return this.lru !== undefined && bodyLength + ENTRY_OVERHEAD <= this.maxEntryBytes
  }

  getInMemory(key: string): CacheEntry | undefined {
    return this.lru?.get(key)
  }

  async get(key: string) {
    const entry = this.lru?.get(key)
    return entry ? { entry, tier: 'memory' as const } : undefined
  }

  lookup(key: string): CacheEntry | undefined {
    return this.lru?.peek(key)
  }

  has(key: string): boolean {
    return this.lru?.has(key) ?? false
  }

  /** A purge generation, taken before reading what `put` may then store (see purge-generations.ts). */
  ticket(): number {
    return this.gens.ticket()
  }

  /**
   * Adds a complete entry (a promoted disk hit, or a committed write); refused when its key or
   * title was purged since `ticket` (taken when the read or write that produced it started).
   */
  put(entry: CacheEntry, ticket = this.gens.ticket()): boolean {
    if (!this.lru || !entry.body || !this.fits(entry.body.length)) return false
    const key = entry.meta.key
    if (this.gens.purgedSince(ticket, key, entry.title)) return false
    this.lru.set(key, entry)
    if (!this.lru.has(key)) return true
    this.index.add(entry.title, key)
    // A URL holds one plain entry or its variants, a bounded number of them.
    for (const k of this.variants.add(key, entry.meta.varyKey)) this.lru.delete(k)
    if (this.opts.compress && entry.encoded === undefined && entry.body.length >= MIN_COMPRESS_BYTES)
      if (compressible(entry.meta)) this.encode(entry)
    return true
  }

  /**
   * Encodes a playlist or JSON entry on the threadpool, then keeps its encoded forms beside it: the
   * entry is set again with them, so their bytes count against this tier's bound. Nothing is kept
   * when the entry left meanwhile (evicted, purged, replaced).
   */
  private encode(entry: CacheEntry): void {
    const key = entry.meta.key
    this.encoder.encode(entry.body!).then(
      (bodies) => {
        if (bodies === undefined || this.lru?.peek(key) !== entry) return
        const encoded = encodingsOf(entry, bodies, (m, b) => makeEntry(m, b, this.opts))
        if (encoded !== undefined) this.lru.set(key, { ...entry, encoded })
      },
      () => this.encoder.failed++,
    )
  }

  createWriter(meta: EntryMeta): CacheWriter {
    const chunks: Buffer[] = []
    const ticket = this.gens.ticket()
    let received = 0
    // A body whose announced length does not fit is refused at once (0: not announced).
    const refused = !this.lru || meta.bodyLength + ENTRY_OVERHEAD > this.maxEntryBytes
    let dead = refused
    return {
      refused,
      write: (chunk) => {
        if (dead) return
        received += chunk.length
        if (received > this.maxEntryBytes) {
          dead = true
          chunks.length = 0
          return
        }
        chunks.push(chunk)
      },
      commit: async (final) => {
        if (dead || received !== final.bodyLength) return undefined
        const entry = makeEntry({ ...meta, ...final }, joinChunks(chunks, received), this.opts)
        return this.put(entry, ticket) ? entry : undefined
      },
      abort: () => {
        dead = true
        chunks.length = 0
      },
    }
  }

  async updateMeta(key: string, meta: EntryMeta, revalidated?: Validators) {
    const old = this.lru?.get(key)
    if (!old || !isRevalidated(old.meta.headers, revalidated)) return undefined
    let entry = makeEntry(
      { ...meta, bodyLength: old.meta.bodyLength, crc32: old.meta.crc32 },
      old.body,
      this.opts,
    )
    // The body did not change: its encoded bodies are kept under the refreshed headers, unless
    // those no longer let the edge encode it (a no-transform added, another Content-Type).
    const enc = old.encoded
    const encoded =
      enc && compressible(entry.meta)
        ? encodingsOf(entry, { br: enc.br?.body, gzip: enc.gzip?.body }, (m, b) => makeEntry(m, b, this.opts))
        : undefined
    if (encoded !== undefined) entry = { ...entry, encoded }
    this.put(entry)
    return entry
  }

  /** Deleting a URL deletes its variants. */
  async delete(key: string): Promise<boolean> {
    this.gens.purgeKey(key)
    let held = false
    if (!isVariantKey(key)) for (const k of this.variants.keys(key)) held = this.lru!.delete(k) || held
    return (this.lru?.delete(key) ?? false) || held
  }

  async purgeTitle(title: string): Promise<number> {
    this.gens.purgeTitle(title)
    let n = 0
    for (const key of this.index.keys(title)) if (this.lru?.delete(key)) n++
    return n
  }

  titles(): string[] {
    return this.index.titles()
  }

  titleIndex(title: string) {
    return this.index.get(title)
  }

  stats(): StoreStats {
    return {
      memory: {
        bytes: this.lru?.calculatedSize ?? 0,
        capacityBytes: this.opts.maxBytes,
        objects: this.lru?.size ?? 0,
        evictions: this.evictions,
      },
    }
  }

  async close(): Promise<void> {
    this.lru?.clear()
  }
}

/** The body, its encoded forms (compress.ts) and the bookkeeping. */
function entrySize(e: CacheEntry): number {
  return (e.body?.length ?? 0) + (e.encoded?.bytes ?? 0) + ENTRY_OVERHEAD
}

/**
 * One Buffer from the chunks. When they are consecutive views of one allocation (the
 * single-flight's preallocated body) this is a view, not a copy.
 */
export function joinChunks(chunks: readonly Buffer[], total: number): Buffer {
  if (chunks.length === 1) return chunks[0]!
  if (chunks.length === 0) return Buffer.alloc(0)
  const first = chunks[0]!
  let end = first.byteOffset + first.length
  let contiguous = true
  for (let i = 1; i < chunks.length; i++) {
    const c = chunks[i]!
    if (c.buffer !== first.buffer || c.byteOffset !== end) {
      contiguous = false
      break
    }
    end += c.length
  }
  if (contiguous) return Buffer.from(first.buffer, first.byteOffset, total)
  return Buffer.concat(chunks as Buffer[], total)
}
