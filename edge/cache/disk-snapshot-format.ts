/**
 * The index snapshot's file format, CDNIDX4 (disk-snapshot.ts reads and writes it). Made for
 * the restart: at a million objects the load is what the edge waits for, so a record costs the
 * loader one key string and one small object, and nothing it can leave for later.
 *
 *   "CDNIDX4\n", then blocks: [u32 payload length][u32 crc32 of kind and payload][u8 kind][payload]
 *
 * Kinds: H (first, once) the header, JSON `{"at":ms,"buckets":[["{title}/{hh}","mtimeNs"],...]}`;
 * R a block of up to BLOCK_RECORDS records, in columns (below); E (last) JSON `{"records":n}`.
 * Anything else, a block whose crc32 does not match, a short file, bytes after E or a count
 * that is not E's, and the snapshot is refused (the caller then scans every file).
 *
 * An R block's payload, little-endian, each column aligned to its width:
 *   u32 n, u32 keyBytes, u32 metaBytes, u32 0
 *   f64 size[n], dev[n], ino[n], fileSize[n], mtimeMs[n]   (the record's bytes and file identity)
 *   u32 bucket[n] (index into the header's buckets), u32 keyChars[n] (UTF-16 length),
 *   u32 metaEnd[n] (end of each meta in the metas), u8 flags[n] (1: protected), pad to 8
 *   32-byte names[n] (the file name, sha256 of the key, raw), keys (UTF-8, back to back),
 *   metas (each the meta's JSON, UTF-8, back to back)
 * The loader decodes a block's keys with one call and slices each key out by its length; the
 * rest stays in the block's buffer until a record is first used (disk-record.ts), so a record
 * that is never read never has its file name, identity or meta decoded.
 */
import { crc32 } from 'node:zlib'
import type { EntryMeta } from './entry.js'
import type { FileId } from './file-id.js'

export const MAGIC = Buffer.from('CDNIDX4\n', 'latin1')
/** Records per R block. */
export const BLOCK_RECORDS = 8192
/** Bytes before a block's payload: length, crc32, kind. */
export const BLOCK_HEAD = 9
/** No block is larger (a length beyond it is damage, not a block). */
export const MAX_BLOCK = 1 << 30
const NAME_BYTES = 32
const F64_COLUMNS = 5

export type BlockKind = 'H' | 'R' | 'E'

export interface SnapshotHeader {
  at: number
  /** `{title}/{hh}` and its directory's mtime in ns (a decimal string: exact). */
  buckets: Array<[string, string]>
}

/** One record as the writer takes it. */
export interface SnapshotRecord {
  bucket: number
  /** The file name: 64 hex digits. */
  name: string
  size: number
  protected: boolean
  id: FileId
  key: string
  meta: Buffer
}

/** A block: its head and payload. */
export function encodeBlock(kind: BlockKind, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(BLOCK_HEAD)
  head.writeUInt32LE(payload.length, 0)
  head[8] = kind.charCodeAt(0)
  head.writeUInt32LE(crc32(payload, crc32(head.subarray(8))), 4)
  return Buffer.concat([head, payload])
}

export const encodeJsonBlock = (kind: 'H' | 'E', value: unknown): Buffer =>
  encodeBlock(kind, Buffer.from(JSON.stringify(value), 'utf8'))

const align = (n: number, to: number) => Math.ceil(n / to) * to

/** Where each column of an R block of `n` records starts. */
function layout(n: number) {
  const f64 = 16
  const u32 = f64 + F64_COLUMNS * 8 * n
  const flags = u32 + 3 * 4 * n
  const names = align(flags + n, 8)
  const keys = names + NAME_BYTES * n
  return { f64, u32, flags, names, keys }
}

/** An R block's payload for `recs` (at most BLOCK_RECORDS). */
export function encodeRecords(recs: readonly SnapshotRecord[]): Buffer {
  const n = recs.length
  const keys = recs.map((r) => Buffer.from(r.key, 'utf8'))
  const keyBytes = keys.reduce((a, k) => a + k.length, 0)
  const metaBytes = recs.reduce((a, r) => a + r.meta.length, 0)
  const at = layout(n)
  const buf = Buffer.alloc(at.keys + keyBytes + metaBytes)
  buf.writeUInt32LE(n, 0)
  buf.writeUInt32LE(keyBytes, 4)
  buf.writeUInt32LE(metaBytes, 8)
  let keyAt = at.keys
  let metaAt = at.keys + keyBytes
  for (let i = 0; i < n; i++) {
    const r = recs[i]!
    const nums = [r.size, r.id.dev, r.id.ino, r.id.size, r.id.mtimeMs]
    for (let c = 0; c < F64_COLUMNS; c++) buf.writeDoubleLE(nums[c]!, at.f64 + (c * n + i) * 8)
    metaAt += r.meta.copy(buf, metaAt)
    buf.writeUInt32LE(r.bucket, at.u32 + i * 4)
    buf.writeUInt32LE(r.key.length, at.u32 + (n + i) * 4)
    buf.writeUInt32LE(metaAt - at.keys - keyBytes, at.u32 + (2 * n + i) * 4)
    buf[at.flags + i] = r.protected ? 1 : 0
    if (buf.write(r.name, at.names + i * NAME_BYTES, 'hex') !== NAME_BYTES)
      throw new Error(`bad name ${r.name}`)
    keyAt += keys[i]!.copy(buf, keyAt)
  }
  return buf
}

/**
 * A decoded R block. Its columns are views of the payload (no copy); `keys` are sliced from one
 * decoded string. Restored records keep the block and their slot, and read the rest from it on
 * first use.
 */
export class RecordBlock {
  readonly n: number
  readonly size: Float64Array
  readonly bucket: Uint32Array
  readonly flags: Uint8Array
  private readonly f64: Float64Array
  private readonly metaEnd: Uint32Array
  private readonly names: number
  private readonly metas: number

  /** `payload` must start at its ArrayBuffer's offset 0 (the columns are aligned views). */
  private constructor(
    private readonly payload: Buffer,
    /** The directory prefix (`{root}/{title}/{hh}/`) of each header bucket. */
    private readonly dirs: readonly string[],
  ) {
    const n = payload.readUInt32LE(0)
    const at = layout(n)
    this.n = n
    this.f64 = new Float64Array(payload.buffer, payload.byteOffset + at.f64, F64_COLUMNS * n)
    this.size = this.f64.subarray(0, n)
    const u32 = new Uint32Array(payload.buffer, payload.byteOffset + at.u32, 3 * n)
    this.bucket = u32.subarray(0, n)
    this.metaEnd = u32.subarray(2 * n)
    this.flags = new Uint8Array(payload.buffer, payload.byteOffset + at.flags, n)
    this.names = at.names
    this.metas = at.keys + payload.readUInt32LE(4)
  }

  /**
   * Checks a payload's shape (lengths, offsets, bucket ids) and decodes its keys; undefined when
   * it does not hold together.
   */
  static decode(
    payload: Buffer,
    dirs: readonly string[],
  ): { block: RecordBlock; keys: string[] } | undefined {
    if (payload.length < 16 || payload.byteOffset % 8 !== 0) return undefined
    const n = payload.readUInt32LE(0)
    const keyBytes = payload.readUInt32LE(4)
    const metaBytes = payload.readUInt32LE(8)
    if (n > BLOCK_RECORDS || layout(n).keys + keyBytes + metaBytes !== payload.length) return undefined
    const block = new RecordBlock(payload, dirs)
    const at = layout(n)
    const text = payload.toString('utf8', at.keys, at.keys + keyBytes)
    const chars = new Uint32Array(payload.buffer, payload.byteOffset + at.u32 + 4 * n, n)
    const keys = new Array<string>(n)
    let from = 0
    let metaEnd = 0
    for (let i = 0; i < n; i++) {
      const to = from + chars[i]!
      const m = block.metaEnd[i]!
      if (to > text.length || m < metaEnd || block.bucket[i]! >= dirs.length) return undefined
      keys[i] = text.slice(from, to)
      from = to
      metaEnd = m
    }
    if (from !== text.length || metaEnd !== metaBytes) return undefined
    return { block, keys }
  }

  /** The record's file path. */
  file(slot: number): string {
    const at = this.names + slot * NAME_BYTES
    return this.dirs[this.bucket[slot]!]! + this.payload.toString('hex', at, at + NAME_BYTES)
  }

  /** The record's file identity. */
  id(slot: number): FileId {
    const n = this.n
    const f = this.f64
    return { dev: f[n + slot]!, ino: f[2 * n + slot]!, size: f[3 * n + slot]!, mtimeMs: f[4 * n + slot]! }
  }

  /** The record's meta as the JSON bytes the snapshot holds. */
  metaBytes(slot: number): Buffer {
    const from = this.metas + (slot === 0 ? 0 : this.metaEnd[slot - 1]!)
    return this.payload.subarray(from, this.metas + this.metaEnd[slot]!)
  }

  meta(slot: number): EntryMeta {
    return JSON.parse(this.metaBytes(slot).toString('utf8')) as EntryMeta
  }
}
