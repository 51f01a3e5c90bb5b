/**
 * Streams one object to a temp file in its final directory as bytes arrive, and renames it into
 * place only on a commit whose length matches what it was given; anything else removes the temp
 * file. The checksum is the caller's (computed once as the bytes arrive, flight-body.ts), as
 * the memory tier's writer takes it: summing the same bytes again here doubled the fill's crc32.
 *
 * Chunks are written in batches (one writev of at least `WRITE_BATCH_BYTES`, or the rest with
 * the trailer at commit): every file operation is a round trip through libuv's pool that costs
 * the event loop a dispatch, a promise and a completion, and wakes a pool thread that competes
 * for the CPU with the loop. An upstream body arrives in 16-64 KB chunks, so a write per chunk
 * made a 20 MB/s prefill several hundred round trips a second (issue 19). The directory is made
 * only when opening the temp file finds it missing.
 *
 * The store it writes for is behind the small `WriterHost` port, so this file does not depend
 * on the disk store.
 */
import { promises as fsp } from 'node:fs'
import { dirname } from 'node:path'
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

/** Bytes gathered before they are written (one writev); the rest goes with the trailer. */
export const WRITE_BATCH_BYTES = 1024 * 1024
/** Chunks gathered before they are written, whatever their bytes (bounds the writev's vector). */
const WRITE_BATCH_CHUNKS = 256

/** Streams one object to a temp file; renames it into place on a verified commit. */
export class DiskWriter implements CacheWriter {
  private fh: Promise<fsp.FileHandle | undefined> | undefined
  private chain: Promise<void> = Promise.resolve()
  private received = 0
  /** Chunks not yet written, and their bytes. */
  private batch: Buffer[] = []
  private batchBytes = 0
  /** File writes issued (each a writev of a batch; the last one carries the trailer). */
  private writes = 0
  private dead: boolean
  /** Refused when made: disabled, or an announced length longer than the tier (CacheWriter). */
  readonly refused: boolean
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
    // An announced body longer than the tier would be written to a temp file and thrown away.
    this.refused = store.disabled || meta.bodyLength > store.maxBytes
    this.dead = this.refused
    this.epoch = store.epoch
  }

  private fail(err: unknown): void {
    if (this.dead) return
    this.dead = true
    this.store.recordError(err, this.epoch)
  }

  /** Opens the temp file, making its directory only when it is missing. */
  private handle(): Promise<fsp.FileHandle | undefined> {
    this.fh ??= fsp
      .open(this.tmp, 'w')
      .catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
        await fsp.mkdir(this.dir, { recursive: true })
        return fsp.open(this.tmp, 'w')
      })
      .catch((err) => {
        this.fail(err)
        return undefined
      })
    return this.fh
  }

  /** File writes issued so far (a batch each; the commit's carries the trailer). */
  get fileWrites(): number {
    return this.writes
  }

  write(chunk: Buffer): void {
    if (this.dead) return
    this.received += chunk.length
    if (this.received > this.store.maxBytes) {
      this.abort()
      return
    }
    // The temp file is opened with the first bytes, not the first batch: a crash mid-body leaves
    // it for the next start's scan, as a write per chunk did.
    if (!this.fh) void this.handle()
    this.batch.push(chunk)
    this.batchBytes += chunk.length
    if (this.batchBytes >= WRITE_BATCH_BYTES || this.batch.length >= WRITE_BATCH_CHUNKS) this.flush()
  }

  /** Queues the gathered chunks (and `tail`) as one write. */
  private flush(tail?: Buffer): void {
    const bufs = tail ? [...this.batch, tail] : this.batch
    this.batch = []
    this.batchBytes = 0
    if (bufs.length === 0) return
    this.writes++
    this.chain = this.chain.then(async () => {
      // Aborted before this step ran: the temp file is not even opened.
      if (this.dead) return
      const fh = await this.handle()
      if (!fh || this.dead) return
      try {
        await writeAll(fh, bufs)
      } catch (err) {
        this.fail(err)
      }
    })
  }

  async commit(final: { bodyLength: number; crc32: number }): Promise<CacheEntry | undefined> {
    const ok = !this.dead && this.received === final.bodyLength
    const meta: EntryMeta = { ...this.meta, ...final }
    // The body's last chunks and the trailer go in one write.
    if (ok) this.flush(encodeTrailer(meta))
    else this.batch = []
    await this.chain
    const fh = this.fh ? await this.fh : undefined
    if (fh && ok && !this.dead) {
      try {
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
    this.batch = []
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

/**
 * Writes every byte of `bufs`. A writev may write less than asked without an error (a
 * filesystem that fills part-way through it); the rest is written again, and that write fails
 * with the real reason (ENOSPC, EDQUOT, EFBIG), so a short file is never committed.
 */
export async function writeAll(
  fh: { writev(bufs: Buffer[]): Promise<{ bytesWritten: number }> },
  bufs: Buffer[],
): Promise<void> {
  let rest = bufs
  for (;;) {
    const { bytesWritten } = await fh.writev(rest)
    let left = bytesWritten
    let i = 0
    while (i < rest.length && left >= rest[i]!.length) left -= rest[i++]!.length
    if (i === rest.length) return
    if (bytesWritten === 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' })
    rest = [rest[i]!.subarray(left), ...rest.slice(i + 1)]
  }
}
