/**
 * One object of the disk tier as its index holds it (disk-index.ts): the key, the file and its
 * identity, the bytes it takes, whether it is protected, and its cache entry. The entry (parsed
 * headers, freshness, the header block a hit sends) costs tens of microseconds and about a
 * kilobyte to build, so a record restored from the index snapshot (disk-snapshot.ts) holds only
 * its key, size, protection and title, and its place in the snapshot's block
 * (disk-snapshot-format.ts), where its file name, identity and meta stay as bytes until its
 * first use: a restart with a million objects decodes none of them, and a record never read
 * never costs them. What the index itself needs (key, title, size) never builds the entry.
 */
import { titleOfPath } from '../../src/http/paths.js'
import type { DemandKey } from './demand.js'
import type { RecordBlock } from './disk-snapshot-format.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry, pathOfKey } from './entry.js'
import type { FileId } from './file-id.js'

export interface DiskRecordFields {
  key: string
  file: string
  /** File size: body + trailer. */
  size: number
  /** The inode and generation of the file this record describes (reads check it: file-id.ts). */
  id: FileId
  protected: boolean
}

/** Slot `slot` of a snapshot block (disk-snapshot-format.ts). */
export interface RestoredFields {
  key: string
  /** Its bucket's title: the one the key's file is stored under (disk-format.ts's objectDir). */
  title: string | undefined
  block: RecordBlock
  slot: number
  opts: EntryOptions
}

export class DiskRecord {
  readonly key: string
  readonly size: number
  protected: boolean
  /** The key's title (undefined outside /vod/{title}/), without building the entry. */
  readonly title: string | undefined
  /** The entry once built, or the meta it is built from (undefined: in the snapshot block). */
  private source: CacheEntry | EntryMeta | undefined
  private readonly opts: EntryOptions | undefined
  private path: string | undefined
  private fileId: FileId | undefined
  /** A restored record's snapshot block and slot in it, until its first use. */
  private block: RecordBlock | undefined
  private readonly slot: number
  /** Set by the index: the bottom of its ladder (ladder.ts), and the index's tick at its last use. */
  low?: boolean
  used?: number
  /** Set by the demand order (demand-order.ts): where the record sits in its stream (null: nowhere). */
  demand?: DemandKey | null

  /** A record of a built entry. */
  constructor(fields: DiskRecordFields, entry: CacheEntry)
  /** A record whose entry is built from `meta` on first use. */
  constructor(fields: DiskRecordFields, meta: EntryMeta, opts: EntryOptions)
  /** A record restored from a snapshot block: all but key, title, size and protection stay in the block. */
  constructor(restored: RestoredFields)
  constructor(
    fields: DiskRecordFields | RestoredFields,
    entry?: CacheEntry | EntryMeta,
    opts?: EntryOptions,
  ) {
    if ('block' in fields) {
      const { block, slot } = fields
      this.key = fields.key
      this.size = block.size[slot]!
      this.protected = block.flags[slot] === 1
      this.title = fields.title
      this.source = undefined
      this.opts = fields.opts
      this.path = undefined
      this.fileId = undefined
      this.block = block
      this.slot = slot
      return
    }
    this.key = fields.key
    this.size = fields.size
    this.protected = fields.protected
    this.title = titleOfPath(pathOfKey(fields.key))
    this.source = entry
    this.opts = opts
    this.path = fields.file
    this.fileId = fields.id
    this.block = undefined
    this.slot = 0
  }

  get file(): string {
    return this.path ?? this.block!.file(this.slot)
  }

  get id(): FileId {
    return this.fileId ?? this.block!.id(this.slot)
  }

  /** Has the entry been built (for tests and figures)? */
  get built(): boolean {
    return this.source !== undefined && 'fresh' in this.source
  }

  get entry(): CacheEntry {
    const s = this.source
    if (s !== undefined && 'fresh' in s) return s
    const block = this.block
    let meta = s
    if (block) {
      // First use of a restored record: everything taken out of the block, which it lets go.
      meta = block.meta(this.slot)
      this.path = block.file(this.slot)
      this.fileId = block.id(this.slot)
      this.block = undefined
    }
    const entry = makeEntry(meta!, undefined, this.opts!)
    this.source = entry
    return entry
  }

  /** The meta as JSON bytes (what the snapshot stores), without building the entry. */
  metaBytes(): Buffer {
    if (this.block) return this.block.metaBytes(this.slot)
    const s = this.source!
    return Buffer.from(JSON.stringify('fresh' in s ? s.meta : s), 'utf8')
  }
}
