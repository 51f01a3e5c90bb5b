/**
 * The object-store backend of the OriginStore contract (store.ts): S3-compatible storage, the
 * same key layout as the local directory under s3://BUCKET/PREFIX/. Several origins can serve
 * one bucket: nothing but short caches lives in the process.
 *
 * Publish: every object of the version is uploaded under its immutable versioned prefix
 * (lib-storage's Upload: multipart past `partSize`, so memory per upload is bounded by
 * partSize × queueSize), version.json last, then the title's pointer is swapped:
 * - 'conditional' (the store honours If-Match / If-None-Match, detected at init): a lost race
 *   answers 412 and the swap re-reads and merges, so no publish is ever lost;
 * - 'etcd' (asked for with --s3-cas etcd): the pointers live in etcd, not in the bucket, and a
 *   swap is a transaction on the pointer key's revision (etcd-pointers.ts): any number of
 *   origins may publish, as with conditional writes; job claims are etcd creates too;
 * - 'single-writer' (Swift's S3 API answers 501 to conditional PUTs): swaps are serialised in
 *   this process, and the rule is that only one process writes a bucket's pointers (the origin
 *   started without --follower; the others leave their jobs to it through the store).
 *
 * Reads: a /vod request reads the title's pointer (cached `pointerTtlMs`; a swap made here
 * clears it), then the object's metadata (cached: versions are immutable), then the byte range
 * asked for, passed to the store as a Range (never read whole).
 */
import { createReadStream } from 'node:fs'
import { mkdir, readdir, stat } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, relative, sep } from 'node:path'
import type { Readable } from 'node:stream'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { LRUCache } from 'lru-cache'
import { type Clock, systemClock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import type { VodPath } from '../../src/http/paths.js'
import { assertTitle, contentTypeFor, TITLE_RE, VERSION_RE } from '../../src/http/paths.js'
import { KeyedQueue } from '../../src/keyed-queue.js'
import { objectKey, type TitleEntry, type VersionEntry } from './content-store.js'
import type { EtcdPointers } from './etcd-pointers.js'
import {
  detectCasMode,
  ensureBucket,
  isConditionFailed,
  isNotFound,
  type S3Location,
  storeError,
} from './s3-client.js'
import type { CasMode, OriginStore, PointerRead, StoredObject } from './store.js'
import { swapWithRetry, withVersion } from './store.js'

export interface S3StoreOptions {
  client: S3Client
  location: S3Location
  /** Local directory for staging (ffmpeg's output) and generated sources. */
  workDir: string
  /** 'auto' detects; the others are the operator's word for it. */
  casMode?: 'auto' | CasMode
  /** Multipart part size, bytes (s3api's minimum is 5 MiB). */
  partSize?: number
  /** Objects uploaded at once by a publish. */
  uploadConcurrency?: number
  /** How long a title's pointer read is reused, ms (0: every request reads it). */
  pointerTtlMs?: number
  /** Object metadata kept at most (immutable objects: size, ETag, Last-Modified). */
  maxCachedHeads?: number
  createBucket?: boolean
  /** The catalogue in etcd: required by casMode 'etcd', and only used by it. */
  etcd?: EtcdPointers | undefined
  clock?: Clock
}

interface Head {
  size: number
  etag: string
  lastModified: Date
}

export class S3Store implements OriginStore {
  readonly kind = 's3'
  casMode: CasMode = 'single-writer'
  private readonly client: S3Client
  private readonly loc: S3Location
  private readonly o: Required<Omit<S3StoreOptions, 'client' | 'location' | 'etcd'>>
  private readonly etcd: EtcdPointers | undefined
  private readonly pointers: LRUCache<string, PointerRead>
  private readonly heads: LRUCache<string, Head>
  private readonly locks = new KeyedQueue()

  constructor(opts: S3StoreOptions) {
    this.client = opts.client
    this.loc = opts.location
    this.etcd = opts.etcd
    if ((opts.casMode === 'etcd') !== (opts.etcd !== undefined))
      throw new CdnError('CDN_ERR_CONFIG', '--s3-etcd and --s3-cas etcd go together')
    this.o = {
      workDir: opts.workDir,
      casMode: opts.casMode ?? 'auto',
      partSize: opts.partSize ?? 8 * 1024 * 1024,
      uploadConcurrency: opts.uploadConcurrency ?? 4,
      pointerTtlMs: opts.pointerTtlMs ?? 1000,
      maxCachedHeads: opts.maxCachedHeads ?? 10_000,
      createBucket: opts.createBucket ?? true,
      clock: opts.clock ?? systemClock,
    }
    const perf = { now: () => this.o.clock.monotonic() }
    this.pointers = new LRUCache({ max: 10_000, ttl: Math.max(1, this.o.pointerTtlMs), perf })
    // Retire deletes a version only after its grace period, far longer than this.
    this.heads = new LRUCache({ max: this.o.maxCachedHeads, ttl: 60_000, perf })
  }

  async init(): Promise<this> {
    await mkdir(join(this.o.workDir, 'staging'), { recursive: true })
    if (this.o.createBucket) await ensureBucket(this.client, this.loc.bucket)
    this.casMode = this.o.casMode === 'auto' ? await detectCasMode(this.client, this.loc) : this.o.casMode
    return this
  }

  describe(): ReturnType<OriginStore['describe']> {
    return { kind: this.kind, location: `s3://${this.loc.bucket}/${this.loc.prefix}`, casMode: this.casMode }
  }

  async close(): Promise<void> {
    this.client.destroy()
    this.etcd?.close()
  }

  sourcesDir(): string {
    return join(this.o.workDir, 'sources')
  }

  async createStaging(label: string): Promise<string> {
    const dir = join(this.o.workDir, 'staging', `${label}-${randomBytes(4).toString('hex')}`)
    await mkdir(dir, { recursive: true })
    return dir
  }

  /** Full key of a path relative to the store's root. */
  key(rel: string): string {
    return `${this.loc.prefix}${rel}`
  }

  private pointerKey(title: string): string {
    return this.key(`titles/${assertTitle(title)}/title.json`)
  }

  async readPointer(title: string): Promise<PointerRead> {
    if (!TITLE_RE.test(title)) return { entry: undefined, token: undefined }
    if (this.etcd) return this.etcd.read(title)
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.pointerKey(title) }),
      )
      const text = await res.Body!.transformToString('utf8')
      return { entry: JSON.parse(text) as TitleEntry, token: res.ETag }
    } catch (err) {
      if (isNotFound(err)) return { entry: undefined, token: undefined }
      if (err instanceof SyntaxError)
        throw new CdnError('CDN_ERR_STORE', `catalogue entry for ${title} is unreadable`, { cause: err })
      throw storeError(`reading the pointer of ${title}`, err)
    }
  }

  private async cachedPointer(title: string): Promise<PointerRead> {
    if (this.o.pointerTtlMs <= 0) return this.readPointer(title)
    const hit = this.pointers.get(title)
    if (hit) return hit
    const read = await this.readPointer(title)
    this.pointers.set(title, read)
    return read
  }

  async readTitle(title: string): Promise<TitleEntry | undefined> {
    return (await this.readPointer(title)).entry
  }

  async listTitles(): Promise<TitleEntry[]> {
    if (this.etcd) return this.etcd.list()
    const names: string[] = []
    let token: string | undefined
    do {
      const res = await this.client
        .send(
          new ListObjectsV2Command({
            Bucket: this.loc.bucket,
            Prefix: this.key('titles/'),
            Delimiter: '/',
            ContinuationToken: token,
          }),
        )
        .catch((err: unknown) => {
          throw storeError('listing titles', err)
        })
      for (const p of res.CommonPrefixes ?? []) {
        const name = p.Prefix!.slice(this.key('titles/').length).replace(/\/$/, '')
        if (TITLE_RE.test(name)) names.push(name)
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
    const entries = await mapBounded(names, 16, (n) => this.readTitle(n))
    return entries.filter((e): e is TitleEntry => e !== undefined).sort((a, b) => a.id.localeCompare(b.id))
  }

  async swapPointer(title: string, expected: string | undefined, entry: TitleEntry): Promise<boolean> {
    const Body = `${JSON.stringify(entry, null, 2)}\n`
    const put = (cond: { IfMatch?: string; IfNoneMatch?: string }) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: this.pointerKey(title),
          Body,
          ContentType: 'application/json',
          ...cond,
        }),
      )
    try {
      if (this.etcd) return await this.etcd.swap(title, expected, entry)
      if (this.casMode === 'conditional') {
        await put(expected === undefined ? { IfNoneMatch: '*' } : { IfMatch: expected })
        return true
      }
      // Single writer: the read, the comparison and the write are one step in this process.
      return await this.locked(title, async () => {
        if ((await this.readPointer(title)).token !== expected) return false
        await put({})
        return true
      })
    } catch (err) {
      if (this.casMode === 'conditional' && isConditionFailed(err)) return false
      throw isCdnErrorLike(err) ? err : storeError(`writing the pointer of ${title}`, err)
    } finally {
      this.pointers.delete(title)
    }
  }

  async publish(title: string, staged: string, version: VersionEntry, now: Date): Promise<TitleEntry> {
    assertTitle(title)
    if (!VERSION_RE.test(version.id))
      throw new CdnError('CDN_ERR_BAD_REQUEST', `not a version id: ${version.id}`)
    const base = `titles/${title}/${version.id}/`
    const files = (await walk(staged)).filter((f) => f !== 'version.json')
    await mapBounded(files, this.o.uploadConcurrency, (f) => this.upload(join(staged, f), this.key(base + f)))
    // The manifest last: a version without it was never finished.
    await this.upload(join(staged, 'version.json'), this.key(`${base}version.json`))
    return swapWithRetry(this, title, (old) => withVersion(old, title, version, now))
  }

  private async upload(file: string, Key: string): Promise<void> {
    const size = (await stat(file)).size
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.loc.bucket,
        Key,
        Body: createReadStream(file),
        ContentType: contentTypeFor(file),
        ContentLength: size,
      },
      partSize: this.o.partSize,
      queueSize: 2,
      leavePartsOnError: false,
    })
    await upload.done().catch((err: unknown) => {
      throw storeError('uploading an object', err)
    })
  }

  /** A small JSON document under the store's root (job records), or undefined. */
  async readJson<T>(rel: string): Promise<T | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }),
      )
      return JSON.parse(await res.Body!.transformToString('utf8')) as T
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw storeError('reading a record', err)
    }
  }

  /**
   * Writes a small JSON document. With `create`, only if none exists (a claim): true if this
   * write created it. With 'etcd' a create is an etcd create (the claim lives there, not in
   * the bucket). Without either it is a read then a write, which only the single writer may
   * rely on.
   */
  async writeJson(rel: string, value: unknown, opts: { create?: boolean } = {}): Promise<boolean> {
    if (opts.create && this.etcd) return this.etcd.create(rel, JSON.stringify(value))
    const Key = this.key(rel)
    const put = (IfNoneMatch?: string) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key,
          Body: JSON.stringify(value),
          ContentType: 'application/json',
          ...(IfNoneMatch ? { IfNoneMatch } : {}),
        }),
      )
    try {
      if (opts.create && this.casMode === 'conditional') await put('*')
      else if (opts.create) {
        if ((await this.readJson(rel)) !== undefined) return false
        await put()
      } else await put()
      return true
    } catch (err) {
      if (opts.create && isConditionFailed(err)) return false
      throw isCdnErrorLike(err) ? err : storeError('writing a record', err)
    }
  }

  /** Keys (relative to the root) under a relative prefix, at most `max`, in key order. */
  async listKeys(relPrefix: string, max = 1000): Promise<string[]> {
    const out: string[] = []
    let token: string | undefined
    do {
      const res = await this.client
        .send(
          new ListObjectsV2Command({
            Bucket: this.loc.bucket,
            Prefix: this.key(relPrefix),
            ContinuationToken: token,
          }),
        )
        .catch((err: unknown) => {
          throw storeError('listing records', err)
        })
      for (const o of res.Contents ?? []) out.push(o.Key!.slice(this.loc.prefix.length))
      token = res.IsTruncated && out.length < max ? res.NextContinuationToken : undefined
    } while (token)
    return out.slice(0, max)
  }

  async deleteKey(rel: string): Promise<void> {
    await this.client
      .send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }))
      .catch((err: unknown) => {
        throw storeError('deleting a record', err)
      })
  }

  async deleteVersion(title: string, version: string): Promise<void> {
    if (!VERSION_RE.test(version)) throw new CdnError('CDN_ERR_BAD_REQUEST', `not a version id: ${version}`)
    const prefix = this.key(`titles/${assertTitle(title)}/${version}/`)
    const keys: string[] = []
    let token: string | undefined
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: prefix, ContinuationToken: token }),
      )
      for (const o of res.Contents ?? []) keys.push(o.Key!)
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
    // The manifest first: a half-deleted version is then an unfinished one.
    keys.sort((a, b) => Number(b.endsWith('/version.json')) - Number(a.endsWith('/version.json')))
    for (const Key of keys.filter((k) => k.endsWith('/version.json')))
      await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key }))
    await mapBounded(
      keys.filter((k) => !k.endsWith('/version.json')),
      8,
      (Key) => this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key })),
    )
    for (const k of keys) this.heads.delete(k)
  }

  async open(path: VodPath): Promise<StoredObject | undefined> {
    const { entry } = await this.cachedPointer(path.title)
    if (!entry) return undefined
    const parts = objectKey(path, entry)
    if (!parts) return undefined
    const Key = this.key(`titles/${path.title}/${parts.join('/')}`)
    const head = await this.head(Key)
    if (!head) return undefined
    return {
      ...head,
      name: parts[parts.length - 1]!,
      read: (start, end) => this.readRange(Key, head.etag, start, end),
    }
  }

  private async head(Key: string): Promise<Head | undefined> {
    const hit = this.heads.get(Key)
    if (hit) return hit
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key }))
      const head = {
        size: res.ContentLength ?? 0,
        etag: res.ETag!,
        lastModified: res.LastModified ?? new Date(0),
      }
      this.heads.set(Key, head)
      return head
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw storeError('reading object metadata', err)
    }
  }

  private async readRange(Key: string, etag: string, start: number, end: number): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.loc.bucket, Key, Range: `bytes=${start}-${end}`, IfMatch: etag }),
      )
      return res.Body as Readable
    } catch (err) {
      throw storeError('reading an object', err)
    }
  }

  private locked<T>(title: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(title, fn)
  }
}

function isCdnErrorLike(err: unknown): err is CdnError {
  return err instanceof CdnError
}

/** Relative file paths under `dir`, '/'-separated. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await visit(p)
      else if (e.isFile()) out.push(relative(dir, p).split(sep).join('/'))
    }
  }
  await visit(dir)
  return out.sort()
}

/** `fn` over `items`, at most `limit` at once, results in order. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
