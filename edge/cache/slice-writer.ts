/**
 * Stores a whole-object stream too large to keep whole as slices (slices.ts) while it passes:
 * the first request for a large object, whose size was not known before its headers, leaves the
 * object cached in the slices its later requests are answered from. Each `size`-byte piece of
 * the body becomes the entry a Range fetch of that slice makes (status 200, the stream's headers
 * and validators with the piece's Content-Range, the same freshness), committed when its last
 * byte arrived. A stream that fails or is cut loses only the piece in progress: those committed
 * are whole. One piece is held at a time.
 */
import { crc32 } from 'node:zlib'
import type { CacheEntry, EntryMeta } from './entry.js'
import { sliceKey } from './slices.js'
import type { CacheStore, CacheWriter } from './store.js'

export class SliceWriter {
  private index = 0
  /** Bytes of the piece in progress received, and their crc32. */
  private filled = 0
  private crc = 0
  private writer: CacheWriter | undefined
  private readonly commits: Promise<CacheEntry | undefined>[] = []
  private complete = false
  /** Purged: nothing more is stored. */
  private halted = false

  constructor(
    private readonly store: CacheStore,
    /** The whole answer's meta: its key is the URL's. */
    private readonly meta: EntryMeta,
    private readonly total: number,
    private readonly size: number,
    /**
     * True once a purge of the object's title began (single-flight.ts): no piece is stored from
     * then on. A piece opened before it is refused at its commit (purge-generations.ts); one
     * opened after would pass that check, its writer being younger than the purge.
     */
    private readonly purged: () => boolean = () => false,
  ) {}

  /** The next bytes of the body, in order. */
  write(chunk: Buffer): void {
    if (this.halted) return
    if (this.purged()) {
      this.halted = true
      this.complete = false
      return this.abort()
    }
    let off = 0
    while (off < chunk.length && this.index * this.size < this.total) {
      const length = this.lengthOf(this.index)
      this.writer ??= this.open(length)
      const part = chunk.subarray(off, off + Math.min(length - this.filled, chunk.length - off))
      this.writer.write(part)
      this.crc = crc32(part, this.crc)
      this.filled += part.length
      off += part.length
      if (this.filled === length) this.close()
    }
    this.complete = this.index * this.size >= this.total
  }

  /** The stream failed: the piece in progress is not stored. */
  abort(): void {
    this.writer?.abort()
    this.writer = undefined
  }

  /**
   * Resolves once every piece committed landed: to the last one's entry when the whole body went
   * through and every piece was stored, to undefined otherwise.
   */
  async committed(): Promise<CacheEntry | undefined> {
    const entries = await Promise.all(this.commits)
    return this.complete && entries.every((e) => e !== undefined) ? entries.at(-1) : undefined
  }

  private lengthOf(i: number): number {
    return Math.min(this.size, this.total - i * this.size)
  }

  private open(length: number): CacheWriter {
    const start = this.index * this.size
    const headers = {
      ...this.meta.headers,
      'content-range': `bytes ${start}-${start + length - 1}/${this.total}`,
    }
    return this.store.createWriter({
      ...this.meta,
      key: sliceKey(this.meta.key, this.index),
      status: 200,
      headers,
      bodyLength: length,
    })
  }

  private close(): void {
    const commit = this.writer!.commit({ bodyLength: this.filled, crc32: this.crc })
    // Seen by `committed`; marked handled here, for a stream that fails before anyone asks.
    commit.catch(() => undefined)
    this.commits.push(commit)
    this.writer = undefined
    this.filled = 0
    this.crc = 0
    this.index++
  }
}
