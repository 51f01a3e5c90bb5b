/**
 * Rebuilding the disk tier's index at start (disk-store.ts): every object file under
 * objects/{title}/{hh}/ is checked by its trailer (disk-format.ts); temp files, partial files and
 * files that do not check out are deleted. Buckets (the {title}/{hh} directories) are scanned
 * SCAN_CONCURRENCY at a time, so the threadpool always has reads queued. A snapshot of the index
 * (disk-snapshot.ts) lets a restart scan only the buckets that changed since it was written.
 * Errors are reported, never thrown: a tier that cannot be read starts empty.
 */
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { decodeMeta, metaLengthOf, TRAILER_FIXED } from './disk-format.js'
import { DiskRecord } from './disk-record.js'
import { fileIdOf } from './file-id.js'
import type { EntryMeta, EntryOptions } from './entry.js'
import { forEachLimit } from '../prefill/pool.js'

/** Buckets scanned (or stat'ed) at once. */
export const SCAN_CONCURRENCY = 16

/** A record found on disk, with its file's mtime (the index is rebuilt oldest first). */
export interface Found {
  rec: DiskRecord
  mtime: number
}

/** Every bucket under objects/, as `{title}/{hh}` paths relative to it. */
export async function listBuckets(dir: string, onError: (err: unknown) => void): Promise<string[]> {
  const root = join(dir, 'objects')
  let titles: string[]
  try {
    await fsp.mkdir(root, { recursive: true })
    titles = await fsp.readdir(root)
  } catch (err) {
    onError(err)
    return []
  }
  const out: string[] = []
  await eachLimited(titles, async (t) => {
    try {
      for (const b of await fsp.readdir(join(root, t))) out.push(`${t}/${b}`)
    } catch (err) {
      onError(err)
    }
  })
  return out
}

/** Runs `fn` over `items`, SCAN_CONCURRENCY at a time. */
export function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  return forEachLimit(items, SCAN_CONCURRENCY, fn)
}

/** While buckets are scanned in the background: each bucket's records as it is done, and when to stop. */
export interface ScanProgress {
  bucket(found: Found[]): void | Promise<void>
  stopped(): boolean
}

/**
 * Loads every object file of the given buckets (all of them when `buckets` is undefined); with
 * `progress`, hands each bucket's records over as it is done (and returns none).
 */
export async function scanObjects(
  dir: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
  buckets?: readonly string[],
  progress?: ScanProgress,
): Promise<Found[]> {
  const root = join(dir, 'objects')
  const all: Found[] = []
  await eachLimited(buckets ?? (await listBuckets(dir, onError)), async (rel) => {
    if (progress?.stopped()) return
    const bucket = join(root, rel)
    let names: string[]
    try {
      names = await fsp.readdir(bucket)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err)
      return
    }
    const found = progress ? [] : all
    for (const name of names) {
      const rec = await load(join(bucket, name), name, entryOpts, onError)
      if (rec) found.push(rec)
    }
    if (progress && !progress.stopped()) await progress.bucket(found)
  })
  return all
}
/** Reads one file's trailer; deletes it when it is a temp file or does not check out. */
async function load(
  file: string,
  name: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
): Promise<Found | undefined> {
  if (name.endsWith('.tmp') || !/^[0-9a-f]{64}$/.test(name)) {
    await fsp.rm(file, { force: true, recursive: true }).catch((err) => onError(err))
    return undefined
  }
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(file, 'r')
    const st = await fh.stat()
    let meta: EntryMeta | undefined
    if (st.size >= TRAILER_FIXED) {
      const tail = Buffer.alloc(TRAILER_FIXED)
      await fh.read(tail, 0, TRAILER_FIXED, st.size - TRAILER_FIXED)
      const metaLen = metaLengthOf(tail)
      if (metaLen !== undefined && metaLen + TRAILER_FIXED <= st.size) {
        const json = Buffer.alloc(metaLen)
        await fh.read(json, 0, metaLen, st.size - TRAILER_FIXED - metaLen)
        meta = decodeMeta(json, st.size, name)
      }
    }
    if (!meta) {
      await fh.close()
      fh = undefined
      await fsp.unlink(file)
      return undefined
    }
    const fields = {
      key: meta.key,
      file,
      size: st.size,
      id: fileIdOf(st),
      protected: meta.protected === true,
    }
    return { rec: new DiskRecord(fields, meta, entryOpts), mtime: st.mtimeMs }
  } catch (err) {
    onError(err)
    return undefined
  } finally {
    await fh?.close().catch(() => undefined)
  }
}
