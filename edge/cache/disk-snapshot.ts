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
 * Format CDNIDX3, one line each: the header (`CDNIDX3 {"at":ms}`), `B {mtimeNs} {title}/{hh}` per
 * bucket, `R {bucket} {name} {size} {protected} {dev} {ino} {fileSize} {mtimeMs} {keyBytes}
 * {key} {meta JSON}` per record (oldest first), and `E {records}` last (a snapshot without it
 * is not used). At a million objects the load is what the restart waits for, so it parses no
 * JSON: a record keeps its meta as text and builds its entry on first use (disk-record.ts); the
 * file is read in chunks, so the whole snapshot is never in memory at once. It is written
 * through src/fs/atomic.ts (temp file, fsync, rename, directory fsync).
 */
import { promises as fsp, statSync } from 'node:fs'
import { join } from 'node:path'
import { produceFileAtomic } from '../../src/fs/atomic.js'
import { DiskRecord } from './disk-record.js'
import { eachLimited, listBuckets } from './disk-scan.js'
import type { EntryOptions } from './entry.js'

export const SNAPSHOT_FILE = 'index.snapshot'
const HEADER = 'CDNIDX3'
/** A bucket modified this close before the snapshot is scanned anyway (timestamp granularity). */
export const SETTLE_MS = 2_000
/** Records per write while a snapshot is written (the event loop runs in between). */
const CHUNK = 2_000
/** Bytes read at a time while a snapshot is loaded. */
const READ_CHUNK = 4 << 20
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
  const lines: string[] = [`${HEADER} ${JSON.stringify({ at })}\n`]
  for (const [rel, m] of times) {
    ids.set(rel, ids.size)
    lines.push(`B ${m} ${rel}\n`)
  }
  try {
    await produceFileAtomic(join(dir, SNAPSHOT_FILE), async (tmp) => {
      const fh = await fsp.open(tmp, 'wx')
      try {
        await fh.write(lines.join(''))
        let written = 0
        for (let i = 0; i < recs.length; i += CHUNK) {
          let text = ''
          for (let j = i; j < Math.min(i + CHUNK, recs.length); j++) {
            const rec = recs[j]!
            const f = rec.file
            // {root}{title}/{hh}/{name}
            if (!f.startsWith(root) || f.charCodeAt(f.length - NAME_LENGTH - 1) !== 47) continue
            const id = ids.get(f.slice(root.length, f.length - NAME_LENGTH - 1))
            if (id === undefined) continue
            const d = rec.id
            const name = f.slice(f.length - NAME_LENGTH)
            text += `R ${id} ${name} ${rec.size} ${rec.protected ? 1 : 0} ${d.dev} ${d.ino} ${d.size} ${d.mtimeMs} ${Buffer.byteLength(rec.key)} ${rec.key} ${rec.metaJson()}\n`
            written++
          }
          await fh.write(text)
        }
        await fh.write(`E ${written}\n`)
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

/** The snapshot's records of the buckets it still vouches for, or undefined without a usable snapshot. */
export async function restore(
  dir: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
): Promise<Restored | undefined> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(join(dir, SNAPSHOT_FILE), 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err)
    return undefined
  }
  try {
    const current = await bucketTimes(dir, onError, true)
    const loader = new Loader(`${join(dir, 'objects')}/`, current, entryOpts)
    let buf = Buffer.allocUnsafe(READ_CHUNK)
    let have = 0
    for (;;) {
      if (have === buf.length) {
        // A line longer than the buffer: grow it.
        const bigger = Buffer.allocUnsafe(buf.length * 2)
        buf.copy(bigger, 0, 0, have)
        buf = bigger
      }
      const { bytesRead } = await fh.read(buf, have, buf.length - have, null)
      have += bytesRead
      const used = loader.lines(buf, have)
      if (used < 0) return undefined
      buf.copy(buf, 0, used, have)
      have -= used
      if (bytesRead === 0) break
    }
    if (!loader.complete()) return undefined
    const toScan = [...current.keys()].filter((rel) => !loader.trustedBuckets.has(rel))
    return { trusted: loader.trusted, toScan, bucketsTrusted: loader.trustedBuckets.size }
  } catch (err) {
    onError(err)
    return undefined
  } finally {
    await fh.close().catch(() => undefined)
  }
}

/** Parses a snapshot's lines as they are read. */
class Loader {
  readonly trusted: DiskRecord[] = []
  readonly trustedBuckets = new Set<string>()
  /** Snapshot bucket id → its path prefix when the directory vouches for it (same mtime, settled). */
  private readonly vouched: Array<string | undefined> = []
  private settled: bigint | undefined
  private records = 0
  private ended: number | undefined

  constructor(
    private readonly root: string,
    private readonly current: ReadonlyMap<string, string>,
    private readonly entryOpts: EntryOptions,
  ) {}

  /** Takes the whole lines of `buf[0, length)`; returns the bytes used, or -1 if the snapshot is not usable. */
  lines(buf: Buffer, length: number): number {
    let pos = 0
    for (;;) {
      const end = buf.indexOf(10, pos)
      if (end === -1 || end >= length) return pos
      if (!this.line(buf, pos, end)) return -1
      pos = end + 1
    }
  }

  /** Was the snapshot whole (its end line, with the count of records it wrote)? */
  complete(): boolean {
    return this.ended === this.records
  }

  private line(buf: Buffer, from: number, end: number): boolean {
    if (this.settled === undefined) return this.header(buf.toString('utf8', from, end))
    if (this.ended !== undefined) return false
    const kind = buf[from]
    if (kind === 82 /* R */) {
      this.records++
      return this.record(buf, from + 2, end)
    }
    const line = buf.toString('utf8', from + 2, end)
    if (kind === 66 /* B */) {
      const sp = line.indexOf(' ')
      const m = line.slice(0, sp)
      const rel = line.slice(sp + 1)
      const ok = sp > 0 && this.current.get(rel) === m && BigInt(m) < this.settled
      this.vouched.push(ok ? `${this.root}${rel}/` : undefined)
      if (ok) this.trustedBuckets.add(rel)
      return true
    }
    if (kind === 69 /* E */) {
      this.ended = Number(line)
      return true
    }
    return false
  }

  private header(line: string): boolean {
    if (!line.startsWith(`${HEADER} `)) return false
    try {
      const at = (JSON.parse(line.slice(HEADER.length + 1)) as { at: number }).at
      this.settled = BigInt(Math.floor(at - SETTLE_MS)) * 1_000_000n
      return true
    } catch {
      return false
    }
  }

  /** `{bucket} {name} {size} {protected} {dev} {ino} {fileSize} {mtimeMs} {keyBytes} {key} {meta}`. */
  private record(buf: Buffer, from: number, end: number): boolean {
    const f = this.fields
    let at = from
    for (let i = 0; i < 9; i++) {
      const sp = buf.indexOf(32, at)
      if (sp < 0 || sp >= end) return false
      // The name is read only for a vouched bucket; mtimeMs may have a fraction.
      if (i !== 1) f[i] = i === 7 ? Number(buf.toString('latin1', at, sp)) : integer(buf, at, sp)
      else if (sp - at !== NAME_LENGTH) return false
      else f[i] = at
      at = sp + 1
    }
    for (let i = 0; i < 9; i++) if (!Number.isFinite(f[i])) return false
    const keyBytes = f[8]!
    if (at + keyBytes + 1 >= end) return false
    const prefix = this.vouched[f[0]!]
    if (prefix === undefined) return true
    const fields = {
      key: buf.toString('utf8', at, at + keyBytes),
      file: prefix + buf.toString('latin1', f[1]!, f[1]! + NAME_LENGTH),
      size: f[2]!,
      id: { dev: f[4]!, ino: f[5]!, size: f[6]!, mtimeMs: f[7]! },
      protected: f[3] === 1,
    }
    this.trusted.push(new DiskRecord(fields, buf.toString('utf8', at + keyBytes + 1, end), this.entryOpts))
    return true
  }

  /** A record line's numeric fields (reused). */
  private readonly fields = new Array<number>(9).fill(0)
}

/** A non-negative decimal integer in `buf[from, to)`, or NaN. */
function integer(buf: Buffer, from: number, to: number): number {
  // Beyond 15 digits (a 64-bit inode number) as Number() rounds it, as the stat that made it did.
  if (to - from > 15) return Number(buf.toString('latin1', from, to))
  if (to <= from) return Number.NaN
  let n = 0
  for (let i = from; i < to; i++) {
    const d = buf[i]! - 48
    if (d < 0 || d > 9) return Number.NaN
    n = n * 10 + d
  }
  return n
}
