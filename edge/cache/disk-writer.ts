/**
 * Streams one object to a temp file in its final directory as bytes arrive (crc32 computed on
 * the way), and renames it into place only on a commit whose length and checksum match what
 * the upstream sent; anything else removes the temp file. The store it writes for is behind
 * the small `WriterHost` port, so this file does not depend on the disk store.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { titleOfPath } from '../../src/http/paths.js'
import { encodeTrailer, objectDir, objectName } from './disk-format.js'
import { type CacheEntry, type EntryMeta, pathOfKey } from './entry.js'
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
  /** Takes a committed file into the index; undefined when it does not fit. */
  adopt(file: string, meta: EntryMeta): CacheEntry | undefined
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
  private readonly file: string
  private readonly tmp: string

  constructor(
    private readonly store: WriterHost,
    private readonly meta: EntryMeta,
  ) {
    const name = objectName(meta.key)
    const entryTitle = titleOfPath(pathOfKey(meta.key))
    this.dir = objectDir(store.dir, entryTitle, name)
    this.file = join(this.dir, name)
    this.tmp = join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`)
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
        await fh.close()
        await fsp.rename(this.tmp, this.file)
        return this.store.adopt(this.file, meta)
      } catch (err) {
        this.fail(err)
      }
    }
    this.dead = true
    await fh?.close().catch(() => undefined)
    await fsp.rm(this.tmp, { force: true }).catch(() => undefined)
    return undefined
  }

  abort(): void {
    if (this.dead && !this.fh) return
    this.dead = true
    const fh = this.fh
    this.chain = this.chain.then(async () => {
      const h = fh ? await fh : undefined
      await h?.close().catch(() => undefined)
      await fsp.rm(this.tmp, { force: true }).catch(() => undefined)
    })
  }
}
