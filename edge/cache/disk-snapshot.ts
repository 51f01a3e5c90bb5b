/**
 * A snapshot of the disk tier's index, so a restart need not read every object's trailer: at a
 * million objects that is a million opens before the edge can serve. Written on close and every
 * SNAPSHOT_EVERY_MS while the index changes (disk-store.ts), as `{cacheDir}/index.snapshot`
 * (temp file, fsync, rename). It holds, in LRU order, each record's bucket, file name, size,
 * protection, file identity (device, inode, and the generation: size and mtime; file-id.ts) and
 * meta, and the mtime of every bucket directory ({title}/{hh}) as it was just before the records
 * were taken. A restored record is as complete as a scanned one: it carries the identity its
 * file had when it was indexed, and like any record it is checked on its first open (the fd's
 * inode against the identity, then the body's crc32: disk-reader.ts), so a file replaced since
 * under the same name is a miss, never served as the recorded object.
 *
 * Validated against the directory, per bucket: adding, removing or renaming a file in a
 * directory moves that directory's mtime (and the edge only ever changes an object by renaming
 * a new file over it), so a bucket whose mtime is the one recorded holds exactly the recorded
 * files, and its records are taken without opening them. Every other bucket (changed, new, or
 * modified within SETTLE_MS before the snapshot, where a coarse timestamp could hide a change
 * made in the same tick) is scanned file by file, as without a snapshot. A body changed in
 * place under the same name is caught where it always was: the identity, size and crc32 checks
 * of the first read (disk-reader.ts). A snapshot that cannot be read, or is of another format
 * (CDNIDX1 and CDNIDX2 included), is ignored (a full scan).
 *
 * Format CDNIDX4 (disk-snapshot-format.ts): the header with the bucket times, the records in
 * blocks of columns, each block under a crc32, and an end block with the record count; a damaged,
 * truncated or older (CDNIDX1-3) snapshot is refused. At a million objects the load is what the
 * restart waits for: a record costs it one key string and one small object; its file name,
 * identity and meta stay in the block's bytes until its first use (disk-record.ts). The file is
 * read block by block, synchronously (the tier does not serve yet), and written through
 * src/fs/atomic.ts (temp file, fsync, rename, directory fsync).
 */
import { closeSync, promises as fsp, fstatSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { isTempPath, produceFileAtomic } from '../../src/fs/atomic.js'
import { DiskRecord } from './disk-record.js'
import { eachLimited, listBuckets } from './disk-scan.js'
import {
  BLOCK_HEAD,
  BLOCK_RECORDS,
  type BlockKind,
  encodeBlock,
  encodeJsonBlock,
  encodeRecords,
  MAGIC,
  MAX_BLOCK,
  RecordBlock,
  type SnapshotHeader,
  type SnapshotRecord,
} from './disk-snapshot-format.js'
import type { EntryOptions } from './entry.js'

export const SNAPSHOT_FILE = 'index.snapshot'
/** A bucket modified this close before the snapshot is scanned anyway (timestamp granularity). */
export const SETTLE_MS = 2_000
const NAME_LENGTH = 64

/** mtime of a directory, in ns as a string (exact), or undefined when it is gone. */
async function mtimeOf(path: string): Promise<string | undefined> {
  try {
    return (await fsp.stat(path, { bigint: true })).mtimeNs.toString()
  } catch {
    return undefined
  }
}

/**
 * Stats every bucket: `{title}/{hh}` → mtime in ns. SCAN_CONCURRENCY at a time while the edge
 * serves (a snapshot being written); at start, before it serves, one after the other on the
 * event loop, which at 50,000 buckets (a million objects) is several times faster.
 */
async function bucketTimes(
  dir: string,
  onError: (err: unknown) => void,
  atStart = false,
): Promise<Map<string, string>> {
  const root = join(dir, 'objects')
  const times = new Map<string, string>()
  const buckets = await listBuckets(dir, onError)
  if (atStart) {
    for (const rel of buckets) {
      const st = statSync(join(root, rel), { bigint: true, throwIfNoEntry: false })
      if (st) times.set(rel, st.mtimeNs.toString())
    }
    return times
  }
  await eachLimited(buckets, async (rel) => {
    const m = await mtimeOf(join(root, rel))
    if (m !== undefined) times.set(rel, m)
  })
  return times
}

/**
 * Writes the snapshot: bucket times first, then `records()` taken after them (a change in
 * between leaves its bucket's recorded time older than the directory's: that bucket is
 * scanned at load). Records of a bucket created meanwhile are left out (scanned at load).
 */
export async function writeSnapshot(
  dir: string,
  records: () => DiskRecord[],
  now: () => number,
  onError: (err: unknown) => void,
): Promise<void> {
  const at = now()
  const times = await bucketTimes(dir, onError)
  const recs = records()
  const root = `${join(dir, 'objects')}/`
  const ids = new Map<string, number>()
  const header: SnapshotHeader = { at, buckets: [] }
  for (const [rel, m] of times) {
    ids.set(rel, ids.size)
    header.buckets.push([rel, m])
  }
  try {
    await produceFileAtomic(join(dir, SNAPSHOT_FILE), async (tmp) => {
      const fh = await fsp.open(tmp, 'wx')
      try {
        await fh.write(Buffer.concat([MAGIC, encodeJsonBlock('H', header)]))
        let written = 0
        let block: SnapshotRecord[] = []
        const flush = async () => {
          if (!block.length) return
          await fh.write(encodeBlock('R', encodeRecords(block)))
          written += block.length
          block = []
        }
        for (const rec of recs) {
          const f = rec.file
          // {root}{title}/{hh}/{name}
          if (!f.startsWith(root) || f.charCodeAt(f.length - NAME_LENGTH - 1) !== 47) continue
          const bucket = ids.get(f.slice(root.length, f.length - NAME_LENGTH - 1))
          if (bucket === undefined) continue
          const name = f.slice(f.length - NAME_LENGTH)
          block.push({
            bucket,
            name,
            size: rec.size,
            protected: rec.protected,
            id: rec.id,
            key: rec.key,
            meta: rec.metaBytes(),
          })
          if (block.length === BLOCK_RECORDS) await flush()
        }
        await flush()
        await fh.write(encodeJsonBlock('E', { records: written }))
      } finally {
        await fh.close()
      }
    })
  } catch (err) {
    onError(err)
  }
}

/** What a start with a snapshot found. */
export interface Restored {
  /** Records of the buckets the snapshot vouches for, least recently used first. */
  trusted: DiskRecord[]
  /** Buckets the snapshot does not vouch for (changed, new, or too recent): to be scanned. */
  toScan: string[]
  /** Buckets taken from the snapshot, for figures and tests. */
  bucketsTrusted: number
}

/**
 * Removes the temp files of snapshot writes a crash cut short (a kill -9 while one was written
 * leaves it beside the snapshot, as large as the snapshot, counted nowhere). Run at start, under
 * the directory's lock, so no write of ours is under way.
 */
export async function removeCutSnapshots(dir: string, onError: (err: unknown) => void): Promise<void> {
  try {
    for (const name of await fsp.readdir(dir))
      if (name.startsWith(`.${SNAPSHOT_FILE}.`) && isTempPath(name))
        await fsp.rm(join(dir, name), { force: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err)
  }
}

/** The snapshot's records of the buckets it still vouches for, or undefined without a usable snapshot. */
export async function restore(
  dir: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
): Promise<Restored | undefined> {
  let fd: number
  try {
    fd = openSync(join(dir, SNAPSHOT_FILE), 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err)
    return undefined
  }
  try {
    const current = await bucketTimes(dir, onError, true)
    return load(new BlockReader(fd), `${join(dir, 'objects')}/`, current, entryOpts)
  } catch (err) {
    onError(err)
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** Reads a snapshot's blocks one after the other, each into a buffer of its own (records keep it). */
class BlockReader {
  private pos = 0
  private readonly length: number

  constructor(private readonly fd: number) {
    this.length = fstatSync(fd).size
  }

  /** The magic: is this a CDNIDX4 snapshot? */
  magic(): boolean {
    const m = this.bytes(MAGIC.length)
    return m !== undefined && m.equals(MAGIC)
  }

  /** The next block (undefined at the end of the file, 'bad' when it does not check out). */
  next(): { kind: BlockKind; payload: Buffer } | undefined | 'bad' {
    if (this.pos === this.length) return undefined
    const head = this.bytes(BLOCK_HEAD)
    if (!head) return 'bad'
    const len = head.readUInt32LE(0)
    if (len > MAX_BLOCK || len > this.length - this.pos) return 'bad'
    const payload = this.bytes(len)!
    if (crc32(payload, crc32(head.subarray(8))) !== head.readUInt32LE(4)) return 'bad'
    const kind = String.fromCharCode(head[8]!)
    if (kind !== 'H' && kind !== 'R' && kind !== 'E') return 'bad'
    return { kind, payload }
  }

  /** The next `n` bytes, in a buffer at the start of its own memory; undefined past the end. */
  private bytes(n: number): Buffer | undefined {
    if (n > this.length - this.pos) return undefined
    const buf = Buffer.allocUnsafeSlow(n)
    for (let got = 0; got < n;) {
      const r = readSync(this.fd, buf, got, n - got, this.pos + got)
      if (r === 0) return undefined
      got += r
    }
    this.pos += n
    return buf
  }
}

const json = (payload: Buffer): unknown => JSON.parse(payload.toString('utf8'))

/** The records of the buckets `current` vouches for; undefined when the snapshot is not whole and sound. */
function load(
  blocks: BlockReader,
  root: string,
  current: ReadonlyMap<string, string>,
  entryOpts: EntryOptions,
): Restored | undefined {
  if (!blocks.magic()) return undefined
  const first = blocks.next()
  if (typeof first !== 'object' || first.kind !== 'H') return undefined
  const header = json(first.payload) as SnapshotHeader
  if (typeof header.at !== 'number' || !Array.isArray(header.buckets)) return undefined
  const settled = BigInt(Math.floor(header.at - SETTLE_MS)) * 1_000_000n
  const dirs: string[] = []
  /** Per header bucket: its title when the directory vouches for it (same mtime, settled), else null. */
  const vouched: Array<string | undefined | null> = []
  const trustedBuckets = new Set<string>()
  for (const [rel, m] of header.buckets) {
    dirs.push(`${root}${rel}/`)
    const ok = current.get(rel) === m && BigInt(m) < settled
    const title = rel.slice(0, rel.indexOf('/'))
    vouched.push(ok ? (title === '_' ? undefined : title) : null)
    if (ok) trustedBuckets.add(rel)
  }
  const trusted: DiskRecord[] = []
  let records = 0
  for (;;) {
    const b = blocks.next()
    if (typeof b !== 'object') return undefined
    if (b.kind === 'E') {
      if ((json(b.payload) as { records?: unknown }).records !== records) return undefined
      break
    }
    if (b.kind !== 'R') return undefined
    const decoded = RecordBlock.decode(b.payload, dirs)
    if (!decoded) return undefined
    const { block, keys } = decoded
    for (let slot = 0; slot < block.n; slot++) {
      const title = vouched[block.bucket[slot]!]
      if (title !== null)
        trusted.push(new DiskRecord({ key: keys[slot]!, title, block, slot, opts: entryOpts }))
    }
    records += block.n
  }
  // Nothing after the end block.
  if (blocks.next() !== undefined) return undefined
  const toScan = [...current.keys()].filter((rel) => !trustedBuckets.has(rel))
  return { trusted, toScan, bucketsTrusted: trustedBuckets.size }
}
