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
 * (CDNIDX1, written before records held identities, included), is ignored (a full scan).
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import type { DiskRecord } from './disk-index.js'
import { eachLimited, type Found, listBuckets, scanObjects } from './disk-scan.js'
import { type EntryMeta, type EntryOptions, makeEntry } from './entry.js'

export const SNAPSHOT_FILE = 'index.snapshot'
const HEADER = 'CDNIDX2'
/** A bucket modified this close before the snapshot is scanned anyway (timestamp granularity). */
export const SETTLE_MS = 2_000
/** Records per write while a snapshot is written (the event loop runs in between). */
const CHUNK = 2_000

/** mtime of a directory, in ns as a string (exact), or undefined when it is gone. */
async function mtimeOf(path: string): Promise<string | undefined> {
  try {
    return (await fsp.stat(path, { bigint: true })).mtimeNs.toString()
  } catch {
    return undefined
  }
}

/** Stats every bucket (SCAN_CONCURRENCY at a time): `{title}/{hh}` → mtime in ns. */
async function bucketTimes(dir: string, onError: (err: unknown) => void): Promise<Map<string, string>> {
  const root = join(dir, 'objects')
  const times = new Map<string, string>()
  await eachLimited(await listBuckets(dir, onError), async (rel) => {
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
  const root = join(dir, 'objects')
  const ids = new Map<string, number>()
  const lines: string[] = [`${HEADER} ${JSON.stringify({ at })}\n`]
  for (const [rel, m] of times) {
    ids.set(rel, ids.size)
    lines.push(`B ${m} ${rel}\n`)
  }
  const tmp = join(dir, `.${SNAPSHOT_FILE}.${randomBytes(4).toString('hex')}.tmp`)
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(tmp, 'w')
    await fh.write(lines.join(''))
    for (let i = 0; i < recs.length; i += CHUNK) {
      let text = ''
      for (const rec of recs.slice(i, i + CHUNK)) {
        const id = ids.get(relative(root, dirname(rec.file)))
        if (id === undefined) continue
        const f = rec.id
        text += `R ${id} ${basename(rec.file)} ${rec.size} ${rec.protected ? 1 : 0} ${f.dev} ${f.ino} ${f.size} ${f.mtimeMs} ${JSON.stringify(rec.entry.meta)}\n`
      }
      await fh.write(text)
    }
    await fh.sync()
    await fh.close()
    fh = undefined
    await fsp.rename(tmp, join(dir, SNAPSHOT_FILE))
  } catch (err) {
    onError(err)
    await fh?.close().catch(() => undefined)
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
  }
}

/** What a start with a snapshot found. */
export interface Restored {
  /** Records of the buckets the snapshot vouches for, least recently used first. */
  trusted: DiskRecord[]
  /** Records of every other bucket, read from their files. */
  scanned: Found[]
  /** Buckets taken from the snapshot and scanned, for figures and tests. */
  bucketsTrusted: number
  bucketsScanned: number
}

/** The index from the snapshot and the buckets that changed since, or undefined without a usable snapshot. */
export async function restore(
  dir: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
): Promise<Restored | undefined> {
  let buf: Buffer
  try {
    buf = await fsp.readFile(join(dir, SNAPSHOT_FILE))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err)
    return undefined
  }
  let pos = buf.indexOf(10)
  const head = pos > 0 ? buf.toString('utf8', 0, pos) : ''
  if (!head.startsWith(`${HEADER} `)) return undefined
  let at: number
  try {
    at = (JSON.parse(head.slice(HEADER.length + 1)) as { at: number }).at
  } catch {
    return undefined
  }
  const current = await bucketTimes(dir, onError)
  const root = join(dir, 'objects')
  const settled = BigInt(Math.floor(at - SETTLE_MS)) * 1_000_000n
  /** Snapshot bucket id → its path when the directory vouches for it (same mtime, settled). */
  const vouched: Array<string | undefined> = []
  const trustedBuckets = new Set<string>()
  const trusted: DiskRecord[] = []
  for (pos++; pos < buf.length;) {
    const end = buf.indexOf(10, pos)
    if (end === -1) break
    const kind = buf[pos]
    if (kind === 66 /* B */) {
      const line = buf.toString('utf8', pos + 2, end)
      const sp = line.indexOf(' ')
      const m = line.slice(0, sp)
      const rel = line.slice(sp + 1)
      const ok = current.get(rel) === m && BigInt(m) < settled
      vouched.push(ok ? rel : undefined)
      if (ok) trustedBuckets.add(rel)
    } else if (kind === 82 /* R */) {
      const rec = parseRecord(buf, pos + 2, end, vouched, root, entryOpts)
      if (rec) trusted.push(rec)
    }
    pos = end + 1
  }
  const toScan = [...current.keys()].filter((rel) => !trustedBuckets.has(rel))
  const scanned = await scanObjects(dir, entryOpts, onError, toScan)
  return { trusted, scanned, bucketsTrusted: trustedBuckets.size, bucketsScanned: toScan.length }
}

/** Fields of an `R` line before its meta: bucket, name, size, protected, dev, ino, file size, mtimeMs. */
const R_FIELDS = 8

/** One `R {bucket} {name} {size} {protected} {dev} {ino} {fileSize} {mtimeMs} {meta}` line, when its bucket is vouched for. */
function parseRecord(
  buf: Buffer,
  from: number,
  end: number,
  vouched: ReadonlyArray<string | undefined>,
  root: string,
  entryOpts: EntryOptions,
): DiskRecord | undefined {
  const fields: string[] = []
  let at = from
  while (fields.length < R_FIELDS) {
    const sp = buf.indexOf(32, at)
    if (sp < 0 || sp >= end) return undefined
    fields.push(buf.toString('latin1', at, sp))
    at = sp + 1
  }
  const [bucket, name, sizeText, prot, dev, ino, fileSize, mtimeMs] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  const rel = vouched[Number(bucket)]
  if (rel === undefined) return undefined
  const size = Number(sizeText)
  const id = { dev: Number(dev), ino: Number(ino), size: Number(fileSize), mtimeMs: Number(mtimeMs) }
  let meta: EntryMeta
  try {
    meta = JSON.parse(buf.toString('utf8', at, end)) as EntryMeta
  } catch {
    return undefined
  }
  const numbers = [size, id.dev, id.ino, id.size, id.mtimeMs]
  if (typeof meta.key !== 'string' || !numbers.every(Number.isFinite)) return undefined
  return {
    key: meta.key,
    file: join(root, rel, name),
    size,
    id,
    entry: makeEntry(meta, undefined, entryOpts),
    protected: prot === '1',
  }
}
