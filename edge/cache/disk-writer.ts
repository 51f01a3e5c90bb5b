/**
 * Streams one object to a temp file in its final directory as bytes arrive (crc32 computed on
 * the way), and renames it into place only on a commit whose length and checksum match what
 * the upstream sent; anything else removes the temp file. The store it writes for is behind
 * the small `WriterHost` port, so this file does not depend on the disk store.
 */
import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import { encodeTrailer } from './disk-format.js'
import { tempBeside } from './disk-install.js'
import type { CacheEntry, EntryMeta } from './entry.js'
import { type FileId, fileIdOf } from './file-id.js'
import type { CacheWriter } from './store.js'

/** What a writer needs from the disk store. */
export interface WriterHost {
  readonly dir: string
  readonly disabled: boolean
  /** Largest object written; a longer body aborts the write. */
  readonly maxBytes: number
  /** Bumped when a full filesystem lowers the tier's size; a write's failure counts against the epoch it began in. */
  readonly epoch: number
  recordError(err: unknown, epoch: number): void
  /** A purge generation, taken when the writer starts (see `install`). */
  ticket(): number
  /**
   * Renames the complete temp file into place and indexes it; undefined (temp file removed)
   * when it does not fit or its key was purged since `ticket`.
   */
  install(tmp: string, meta: EntryMeta, id: FileId, ticket: number): Promise<CacheEntry | undefined>
  /** Where a key's object file lives. */
  fileOf(key: string): string
}

/** Streams one object to a temp file; renames it into place on a verified commit. */
export class DiskWriter implements CacheWriter {
  private fh: Promise<fsp.FileHandle | undefined> | undefined
  private chain: Promise<void> = Promise.resolve()
  private received = 0
  private crc = 0
  private dead: boolean
  private readonly epoch: number
  private readonly dir: string
  private readonly tmp: string
  private readonly ticket: number

  constructor(
    private readonly store: WriterHost,
    private readonly meta: EntryMeta,
  ) {
    const file = store.fileOf(meta.key)
    this.dir = dirname(file)
    this.tmp = tempBeside(file)
    this.ticket = store.ticket()
    this.dead = store.disabled
    this.epoch = store.epoch
  }

  private fail(err: unknown): void {
    if (this.dead) return
    this.dead = true
    this.store.recordError(err, this.epoch)
  }

  private handle(): Promise<fsp.FileHandle | undefined> {
    this.fh ??= fsp
      .mkdir(this.dir, { recursive: true })
      .then(() => fsp.open(this.tmp, 'w'))
      .catch((err) => {
        this.fail(err)
        return undefined
      })
    return this.fh
  }

  write(chunk: Buffer): void {
    if (this.dead) return
    this.received += chunk.length
    if (this.received > this.store.maxBytes) {
      this.abort()
      return
    }
    this.crc = crc32(chunk, this.crc)
    this.chain = this.chain.then(async () => {
      // Aborted before this step ran: the temp file is not even opened.
      if (this.dead) return
      const fh = await this.handle()
      if (!fh || this.dead) return
      try {
        await fh.write(chunk, 0, chunk.length)
      } catch (err) {
        this.fail(err)
      }
    })
  }

  async commit(final: { bodyLength: number; crc32: number }): Promise<CacheEntry | undefined> {
    if (final.bodyLength === 0 && !this.dead) await this.handle()
    await this.chain
    const fh = this.fh ? await this.fh : undefined
    const ok = !this.dead && this.received === final.bodyLength && this.crc === final.crc32
    const meta: EntryMeta = { ...this.meta, ...final }
    if (fh && ok) {
      try {
        const trailer = encodeTrailer(meta)
        await fh.write(trailer, 0, trailer.length)
        // The identity the record will hold: a rename keeps the inode, its size and its mtime.
        const id = fileIdOf(await fh.stat())
        await fh.close()
        return await this.store.install(this.tmp, meta, id, this.ticket)
      } catch (err) {
        this.fail(err)
      }
    }
    this.dead = true
    await fh?.close().catch(() => undefined)
    await fsp.rm(this.tmp, { force: true }).catch(() => undefined)
    return undefined
  }

  /**
   * Drops the write; resolves once the temp file (if one was opened) is closed and removed.
   * The close happens in the chain, after any write step still queued, so a handle opened by
   * a step queued before the abort is closed too (never left to the garbage collector).
   */
  abort(): Promise<void> {
    if (this.dead && !this.fh) return this.chain
    this.dead = true
    this.chain = this.chain.then(async () => {
      const h = this.fh ? await this.fh : undefined
      await h?.close().catch(() => undefined)
      await fsp.rm(this.tmp, { force: true }).catch(() => undefined)
    })
    return this.chain
  }
}
