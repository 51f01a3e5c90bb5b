/**
 * One object of the disk tier as its index holds it (disk-index.ts): the key, the file and its
 * identity, the bytes it takes, whether it is protected, and its cache entry. The entry (parsed
 * headers, freshness, the header block a hit sends) costs tens of microseconds and about a
 * kilobyte to build, so a record restored from the index snapshot (disk-snapshot.ts) holds only
 * its meta as the JSON text the snapshot stored, and builds the entry on its first use: a restart
 * with a million objects does not build a million entries, and a record never read never costs
 * one. What the index itself needs (key, title, size) never builds it.
 */
import { titleOfPath } from '../../src/http/paths.js'
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

export class DiskRecord {
  readonly key: string
  readonly file: string
  readonly size: number
  readonly id: FileId
  protected: boolean
  /** The key's title (undefined outside /vod/{title}/), without building the entry. */
  readonly title: string | undefined
  /** The entry once built, or what it is built from: the meta, or the meta as JSON text. */
  private source: CacheEntry | EntryMeta | string
  private readonly opts: EntryOptions | undefined
  /** Set by the index: the bottom of its ladder (ladder.ts), and the index's tick at its last use. */
  low?: boolean
  used?: number

  /** A record of a built entry. */
  constructor(fields: DiskRecordFields, entry: CacheEntry)
  /** A record whose entry is built from `meta` (an object, or its JSON text) on first use. */
  constructor(fields: DiskRecordFields, meta: EntryMeta | string, opts: EntryOptions)
  constructor(fields: DiskRecordFields, entry: CacheEntry | EntryMeta | string, opts?: EntryOptions) {
    this.key = fields.key
    this.file = fields.file
    this.size = fields.size
    this.id = fields.id
    this.protected = fields.protected
    this.title = titleOfPath(pathOfKey(fields.key))
    this.source = entry
    this.opts = opts
  }

  /** Has the entry been built (for tests and figures)? */
  get built(): boolean {
    return typeof this.source === 'object' && 'fresh' in this.source
  }

  get entry(): CacheEntry {
    const s = this.source
    if (typeof s === 'object' && 'fresh' in s) return s
    const meta = typeof s === 'string' ? (JSON.parse(s) as EntryMeta) : s
    const entry = makeEntry(meta, undefined, this.opts!)
    this.source = entry
    return entry
  }

  /** The meta as JSON (what the snapshot stores), without building the entry. */
  metaJson(): string {
    const s = this.source
    if (typeof s === 'string') return s
    return JSON.stringify('fresh' in s ? s.meta : s)
  }
}
