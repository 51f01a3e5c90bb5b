/**
 * A 304's refresh of a disk object (disk-store.ts's updateMeta): the same body under new meta,
 * written as a new file (the body copied from the record's file, checked against its crc32 on
 * the way, then the new trailer) and renamed into place through the store's install. The file
 * in place is never written: a read, or a rewrite of the key racing this, only ever sees a whole
 * file. If the key was rewritten or purged meanwhile, that stands and the refresh is dropped.
 */
import { promises as fsp } from 'node:fs'
import type { DiskCapacity } from './disk-capacity.js'
import { encodeTrailer } from './disk-format.js'
import type { DiskIndex, DiskRecord } from './disk-index.js'
import { copyBody, tempBeside } from './disk-install.js'
import type { DiskErrors } from './disk-tier.js'
import type { CacheEntry, EntryMeta } from './entry.js'
import { type FileId, fileIdOf, sameInode } from './file-id.js'
import { isRevalidated, type Validators } from './store.js'

/** What a refresh needs of the disk store. */
export interface RefreshTarget {
  readonly index: DiskIndex
  readonly capacity: DiskCapacity
  readonly errors: DiskErrors
  /** Test hook: the object's file is open and nothing is written yet. */
  metaSource?(key: string): Promise<void>
  ticket(): number
  unlink(rec: DiskRecord): void
  install(
    tmp: string,
    meta: EntryMeta,
    id: FileId,
    ticket: number,
    replaces?: DiskRecord,
  ): Promise<CacheEntry | undefined>
}

export async function refreshMeta(
  store: RefreshTarget,
  key: string,
  meta: EntryMeta,
  revalidated?: Validators,
): Promise<CacheEntry | undefined> {
  const { index, capacity, errors } = store
  const rec = index.get(key)
  if (!rec || !isRevalidated(rec.entry.meta.headers, revalidated)) return undefined
  const ticket = store.ticket()
  const epoch = capacity.epoch
  const next: EntryMeta = { ...meta, bodyLength: rec.entry.meta.bodyLength, crc32: rec.entry.meta.crc32 }
  const tmp = tempBeside(rec.file)
  let src: fsp.FileHandle | undefined
  let out: fsp.FileHandle | undefined
  try {
    src = await fsp.open(rec.file, 'r')
    // Another file at the path (a rewrite landed first): it stands.
    if (!sameInode(fileIdOf(await src.stat()), rec.id)) return undefined
    await store.metaSource?.(key)
    out = await fsp.open(tmp, 'wx')
    if ((await copyBody(src, out, next.bodyLength)) !== next.crc32) {
      errors.add(Object.assign(new Error('checksum mismatch'), { code: 'ECHECKSUM' }), 'body')
      if (index.get(key) === rec) index.remove(key)
      store.unlink(rec)
      return undefined
    }
    const trailer = encodeTrailer(next)
    await out.write(trailer, 0, trailer.length, next.bodyLength)
    const id = fileIdOf(await out.stat())
    await out.close()
    out = undefined
    return await store.install(tmp, next, id, ticket, rec)
  } catch (err) {
    // The object in place was never written: it stays, under its old meta.
    errors.add(err, 'trailer')
    // The refresh is a new file: a full filesystem lowers the effective size as a write's would.
    capacity.failed(err, 'trailer', epoch)
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && index.get(key) === rec) index.remove(key)
    return undefined
  } finally {
    await src?.close().catch(() => undefined)
    await out?.close().catch(() => undefined)
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
  }
}
