/**
 * The disk tier: one file per object (disk-format.ts), an in-memory index rebuilt by
 * scanning at start (disk-index.ts), LRU by bytes. Writes go to a temp file as bytes arrive
 * and are renamed into place only when complete and verified. Every read checks the crc32;
 * a mismatch drops the file and is a miss. Disk errors are counted and never reach a
 * request: the edge keeps serving from memory and upstream.
 *
 * Hit path: a small LRU of open file descriptors (ref-counted, so eviction never closes an
 * fd under a read) and one positioned read of the body into a fresh Buffer.
 */

import { randomBytes } from 'node:crypto'
import { closeSync, promises as fsp, open, read } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { LRUCache } from 'lru-cache'
import { titleOfPath } from '../../src/http/paths.js'
import {
  decodeMeta,
  encodeTrailer,
  metaLengthOf,
  objectDir,
  objectName,
  TRAILER_FIXED,
} from './disk-format.js'
import { DiskIndex, type DiskRecord } from './disk-index.js'
import { type CacheEntry, type EntryMeta, type EntryOptions, makeEntry, pathOfKey } from './entry.js'
import type { CacheStore, CacheWriter, GetResult, StoreStats } from './store.js'

export interface DiskStoreOptions extends EntryOptions {
  dir: string
  maxBytes: number
  protectedShare: number
  /** Open fds kept for hits (0 = open per read). */
  maxFds: number
}

interface Fd {
  fd: number
  refs: number
  closed: boolean
}

export class DiskStore implements CacheStore {
  readonly index: DiskIndex
  private readonly fds: LRUCache<string, Fd> | undefined
  private errorCount = 0
  readonly errorsByCode = new Map<string, number>()

  private constructor(private readonly opts: DiskStoreOptions) {
    this.index = new DiskIndex(opts.maxBytes, Math.floor(opts.maxBytes * opts.protectedShare), (rec) =>
      this.unlink(rec.file),
    )
    if (opts.maxFds > 0)
      this.fds = new LRUCache<string, Fd>({
        max: opts.maxFds,
        dispose: (h) => {
          h.closed = true
          if (h.refs === 0) closeQuietly(h.fd)
        },
      })
  }

  /** Opens the tier and rebuilds the index from what is on disk (temp, partial and corrupt files are deleted). */
  static async open(opts: DiskStoreOptions): Promise<DiskStore> {
    const store = new DiskStore(opts)
    if (opts.maxBytes > 0) await store.scan()
    return store
  }

  get disabled(): boolean {
    return this.opts.maxBytes <= 0
  }

  private countError(err: unknown): void {
    const code = (err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN'
    this.errorCount++
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1)
  }

  private unlink(file: string): void {
    this.fds?.delete(file)
    fsp.unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.countError(err)
    })
  }

  private async scan(): Promise<void> {
    const root = join(this.opts.dir, 'objects')
    let titles: string[]
    try {
      await fsp.mkdir(root, { recursive: true })
      titles = await fsp.readdir(root)
    } catch (err) {
      this.countError(err)
      return
    }
    const found: { rec: DiskRecord; mtime: number }[] = []
    for (const t of titles) {
      let buckets: string[]
      try {
        buckets = await fsp.readdir(join(root, t))
      } catch (err) {
        this.countError(err)
        continue
      }
      for (const b of buckets) {
        const dir = join(root, t, b)
        let names: string[]
        try {
          names = await fsp.readdir(dir)
        } catch (err) {
          this.countError(err)
          continue
        }
        for (const name of names) {
          const rec = await this.load(join(dir, name), name)
          if (rec) found.push(rec)
        }
      }
    }
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { rec } of found) if (!this.index.add(rec)) this.unlink(rec.file)
  }

  /** Reads one file's trailer; deletes it when it is a temp file or does not check out. */
  private async load(file: string, name: string): Promise<{ rec: DiskRecord; mtime: number } | undefined> {
    if (name.endsWith('.tmp') || !/^[0-9a-f]{64}$/.test(name)) {
      await fsp.rm(file, { force: true, recursive: true }).catch((err) => this.countError(err))
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
      const entry = makeEntry(meta, undefined, this.opts)
      return {
        rec: { key: meta.key, file, size: st.size, entry, protected: meta.protected === true },
        mtime: st.mtimeMs,
      }
    } catch (err) {
      this.countError(err)
      return undefined
    } finally {
      await fh?.close().catch(() => undefined)
    }
  }

  peek(): CacheEntry | undefined {
    return undefined
  }

  has(key: string): boolean {
    return this.index.get(key) !== undefined
  }

  /** Record for a key, without I/O (for the tiered store and the fast path). */
  record(key: string): DiskRecord | undefined {
    return this.index.get(key)
  }

  async get(key: string): Promise<GetResult | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const body = await this.readBody(rec)
    if (!body) return undefined
    this.index.touch(rec)
    return { entry: { ...rec.entry, body, hitMemo: undefined }, tier: 'disk' }
  }

  /** The verified body, or undefined (file gone or corrupt: dropped, counted). */
  readBody(rec: DiskRecord): Promise<Buffer | undefined> {
    const len = rec.entry.meta.bodyLength
    return new Promise((resolve) => {
      this.withFd(rec.file, (err, h, release) => {
        if (err || !h) {
          if ((err as NodeJS.ErrnoException)?.code !== 'ENOENT') this.countError(err)
          this.dropRecord(rec)
          return resolve(undefined)
        }
        const buf = Buffer.allocUnsafeSlow(len)
        const step = (off: number): void => {
          if (off >= len) {
            release()
            if (crc32(buf) !== rec.entry.meta.crc32) {
              this.countError(Object.assign(new Error('checksum mismatch'), { code: 'ECHECKSUM' }))
              this.dropRecord(rec)
              resolve(undefined)
              return
            }
            resolve(buf)
            return
          }
          read(h.fd, buf, off, len - off, off, (e, n) => {
            if (e || n === 0) {
              release()
              this.countError(e ?? Object.assign(new Error('short read'), { code: 'ESHORT' }))
              this.dropRecord(rec)
              return resolve(undefined)
            }
            step(off + n)
          })
        }
        step(0)
      })
    })
  }

  private dropRecord(rec: DiskRecord): void {
    if (this.index.get(rec.key) === rec) this.index.remove(rec.key)
    this.unlink(rec.file)
  }

  private withFd(file: string, cb: (err: unknown, h: Fd | undefined, release: () => void) => void): void {
    const cached = this.fds?.get(file)
    const release = (h: Fd) => () => {
      h.refs--
      if (h.closed && h.refs === 0) closeQuietly(h.fd)
    }
    if (cached && !cached.closed) {
      cached.refs++
      cb(null, cached, release(cached))
      return
    }
    open(file, 'r', (err, fd) => {
      if (err) return cb(err, undefined, () => undefined)
      const h: Fd = { fd, refs: 1, closed: !this.fds }
      if (this.fds) {
        const prev = this.fds.get(file)
        if (prev && !prev.closed) {
          // A concurrent open won the race; use the cached one.
          closeSync(fd)
          prev.refs++
          return cb(null, prev, release(prev))
        }
        this.fds.set(file, h)
      }
      cb(null, h, release(h))
    })
  }

  createWriter(meta: EntryMeta): CacheWriter {
    return new DiskWriter(this, meta)
  }

  /** Called by a writer once its file is in place. */
  adopt(file: string, meta: EntryMeta): CacheEntry | undefined {
    this.fds?.delete(file)
    const entry = makeEntry(meta, undefined, this.opts)
    const size = meta.bodyLength + encodeTrailer(meta).length
    if (!this.index.add({ key: meta.key, file, size, entry, protected: meta.protected === true })) {
      this.unlink(file)
      return undefined
    }
    return entry
  }

  async updateMeta(key: string, meta: EntryMeta): Promise<CacheEntry | undefined> {
    const rec = this.index.get(key)
    if (!rec) return undefined
    const next: EntryMeta = { ...meta, bodyLength: rec.entry.meta.bodyLength, crc32: rec.entry.meta.crc32 }
    const trailer = encodeTrailer(next)
    try {
      const fh = await fsp.open(rec.file, 'r+')
      try {
        await fh.truncate(next.bodyLength)
        await fh.write(trailer, 0, trailer.length, next.bodyLength)
      } finally {
        await fh.close()
      }
    } catch (err) {
      this.countError(err)
      this.dropRecord(rec)
      return undefined
    }
    return this.adopt(rec.file, next)
  }

  async delete(key: string): Promise<boolean> {
    const rec = this.index.remove(key)
    if (!rec) return false
    this.unlink(rec.file)
    return true
  }

  async purgeTitle(title: string): Promise<number> {
    let n = 0
    for (const key of this.index.keysOf(title)) if (await this.delete(key)) n++
    return n
  }

  titles(): string[] {
    return this.index.titleList()
  }

  titleIndex(title: string) {
    return this.index.titleIndex(title)
  }

  get errors(): number {
    return this.errorCount
  }

  recordError(err: unknown): void {
    this.countError(err)
  }

  get dir(): string {
    return this.opts.dir
  }

  get maxBytes(): number {
    return this.opts.maxBytes
  }

  stats(): StoreStats {
    return {
      disk: {
        bytes: this.index.bytes,
        capacityBytes: this.opts.maxBytes,
        objects: this.index.size,
        evictions: this.index.evictions,
      },
      diskErrors: this.errorCount,
    }
  }

  async close(): Promise<void> {
    this.fds?.clear()
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Already closed: nothing to release.
  }
}

/** Streams one object to a temp file; renames it into place on a verified commit. */
class DiskWriter implements CacheWriter {
  private fh: Promise<fsp.FileHandle | undefined> | undefined
  private chain: Promise<void> = Promise.resolve()
  private received = 0
  private crc = 0
  private dead: boolean
  private readonly dir: string
  private readonly file: string
  private readonly tmp: string

  constructor(
    private readonly store: DiskStore,
    private readonly meta: EntryMeta,
  ) {
    const name = objectName(meta.key)
    const entryTitle = titleOfPath(pathOfKey(meta.key))
    this.dir = objectDir(store.dir, entryTitle, name)
    this.file = join(this.dir, name)
    this.tmp = join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`)
    this.dead = store.disabled
  }

  private fail(err: unknown): void {
    if (this.dead) return
    this.dead = true
    this.store.recordError(err)
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
