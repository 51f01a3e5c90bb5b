/**
 * Rebuilding the disk tier's index at start (disk-store.ts): every object file under
 * objects/{title}/{hh}/ is checked by its trailer (disk-format.ts); temp files, partial files and
 * files that do not check out are deleted. Errors are reported, never thrown: a tier that cannot
 * be read starts empty.
 */
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { decodeMeta, metaLengthOf, TRAILER_FIXED } from './disk-format.js'
import type { DiskRecord } from './disk-index.js'
import { type EntryMeta, type EntryOptions, makeEntry } from './entry.js'

/** A record found on disk, with its file's mtime (the index is rebuilt oldest first). */
export interface Found {
  rec: DiskRecord
  mtime: number
}

export async function scanObjects(
  dir: string,
  entryOpts: EntryOptions,
  onError: (err: unknown) => void,
): Promise<Found[]> {
  const root = join(dir, 'objects')
  let titles: string[]
  try {
    await fsp.mkdir(root, { recursive: true })
    titles = await fsp.readdir(root)
  } catch (err) {
    onError(err)
    return []
  }
  const found: Found[] = []
  for (const t of titles) {
    let buckets: string[]
    try {
      buckets = await fsp.readdir(join(root, t))
    } catch (err) {
      onError(err)
      continue
    }
    for (const b of buckets) {
      const bucket = join(root, t, b)
      let names: string[]
      try {
        names = await fsp.readdir(bucket)
      } catch (err) {
        onError(err)
        continue
      }
      for (const name of names) {
        const rec = await load(join(bucket, name), name, entryOpts, onError)
        if (rec) found.push(rec)
      }
    }
  }
  return found
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
    const entry = makeEntry(meta, undefined, entryOpts)
    return {
      rec: { key: meta.key, file, size: st.size, entry, protected: meta.protected === true },
      mtime: st.mtimeMs,
    }
  } catch (err) {
    onError(err)
    return undefined
  } finally {
    await fh?.close().catch(() => undefined)
  }
}
