/**
 * The object-store backend of the OriginStore contract (store.ts): S3-compatible storage, the
 * same key layout as the local directory under s3://BUCKET/PREFIX/. Several origins can serve
 * one bucket: nothing but short caches lives in the process. This module owns the store's
 * lifecycle and options, the serving path and its caches, and puts the pieces together:
 * - publish: the version's objects (s3-versions.ts), then the title's pointer swapped
 *   (swapWithRetry over s3-pointers.ts, whose header says how each CasMode swaps);
 * - reads: a /vod request reads the title's pointer (cached `pointerTtlMs`; a swap made here
 *   clears it), then the object's metadata (cached: versions are immutable), then the byte range
 *   asked for, passed to the store as a Range (never read whole);
 * - the S3 operations themselves: s3-objects.ts, on the client of s3-client.ts.
 */
import { mkdir } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { S3Client } from '@aws-sdk/client-s3'
import { LRUCache } from 'lru-cache'
import { type Clock, systemClock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { ownedName } from '../../src/fs/owner.js'
import type { VodPath } from '../../src/http/paths.js'
import { assertTitle, TITLE_RE, VERSION_RE } from '../../src/http/paths.js'
import { objectKey, type TitleEntry, type VersionEntry } from './content-store.js'
import type { EtcdPointers } from './etcd-pointers.js'
import { type Leftovers, NO_LEFTOVERS, sweepWorkDir } from './leftovers.js'
import { mapBounded } from './map-bounded.js'
import { detectCasMode, ensureBucket, type S3Location, storeError } from './s3-client.js'
import { type Head, S3Objects } from './s3-objects.js'
import { S3Pointers } from './s3-pointers.js'
import { deleteVersionObjects, uploadVersion } from './s3-versions.js'
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

export class S3Store implements OriginStore {
  readonly kind = 's3'
  casMode: CasMode = 'single-writer'
  leftovers: Leftovers = NO_LEFTOVERS
  private readonly objects: S3Objects
  private readonly catalogue: S3Pointers
  private readonly o: Required<Omit<S3StoreOptions, 'client' | 'location' | 'etcd'>>
  private readonly etcd: EtcdPointers | undefined
  private readonly pointers: LRUCache<string, PointerRead>
  private readonly heads: LRUCache<string, Head>

  constructor(opts: S3StoreOptions) {
    this.objects = new S3Objects(opts.client, opts.location)
    this.etcd = opts.etcd
    if ((opts.casMode === 'etcd') !== (opts.etcd !== undefined))
      throw new CdnError('CDN_ERR_CONFIG', '--s3-etcd and --s3-cas etcd go together')
    this.catalogue = new S3Pointers(this.objects, opts.etcd, () => this.casMode)
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

  private get loc(): S3Location {
    return this.objects.loc
  }

  async init(): Promise<this> {
    await mkdir(join(this.o.workDir, 'staging'), { recursive: true })
    this.leftovers = await sweepWorkDir(this.o.workDir, this.o.clock.now())
    if (this.o.createBucket) await ensureBucket(this.objects.client, this.loc.bucket)
    this.casMode =
      this.o.casMode === 'auto' ? await detectCasMode(this.objects.client, this.loc) : this.o.casMode
    return this
  }

  describe(): ReturnType<OriginStore['describe']> {
    return { kind: this.kind, location: `s3://${this.loc.bucket}/${this.loc.prefix}`, casMode: this.casMode }
  }

  async close(): Promise<void> {
    this.objects.client.destroy()
    this.etcd?.close()
  }

  sourcesDir(): string {
    return join(this.o.workDir, 'sources')
  }

  async createStaging(label: string): Promise<string> {
    const dir = join(this.o.workDir, 'staging', ownedName(`${label}-${randomBytes(4).toString('hex')}`))
    await mkdir(dir, { recursive: true })
    return dir
  }

  /** Full key of a path relative to the store's root. */
  key(rel: string): string {
    return this.objects.key(rel)
  }

  readPointer(title: string): Promise<PointerRead> {
    return this.catalogue.read(title)
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
    const titles = this.key('titles/')
    try {
      for await (const page of this.objects.pages(titles, '/'))
        for (const p of page.CommonPrefixes ?? []) {
          const name = p.Prefix!.slice(titles.length).replace(/\/$/, '')
          if (TITLE_RE.test(name)) names.push(name)
        }
    } catch (err) {
      throw storeError('listing titles', err)
    }
    const entries = await mapBounded(names, 16, (n) => this.readTitle(n))
    return entries.filter((e): e is TitleEntry => e !== undefined).sort((a, b) => a.id.localeCompare(b.id))
  }

  async swapPointer(title: string, expected: string | undefined, entry: TitleEntry): Promise<boolean> {
    try {
      return await this.catalogue.swap(title, expected, entry, (t) => this.readPointer(t))
    } finally {
      this.pointers.delete(title)
    }
  }

  async publish(title: string, staged: string, version: VersionEntry, now: Date): Promise<TitleEntry> {
    assertTitle(title)
    if (!VERSION_RE.test(version.id))
      throw new CdnError('CDN_ERR_BAD_REQUEST', `not a version id: ${version.id}`)
    await uploadVersion(this.objects, staged, `titles/${title}/${version.id}/`, {
      partSize: this.o.partSize,
      concurrency: this.o.uploadConcurrency,
    })
    return swapWithRetry(this, title, (old) => withVersion(old, title, version, now))
  }

  /** A small JSON document under the store's root (job records), or undefined. */
  readJson<T>(rel: string): Promise<T | undefined> {
    return this.catalogue.readJson<T>(rel)
  }

  /** Writes a small JSON document; with `create`, only if none exists (a claim): s3-pointers.ts. */
  writeJson(rel: string, value: unknown, opts: { create?: boolean } = {}): Promise<boolean> {
    return this.catalogue.writeJson(rel, value, opts)
  }

  /**
   * Keys (relative to the root) under a relative prefix, at most `max`, in key order: the first
   * ones, or with `last` the last ones (every page is read, `max` kept at most).
   */
  async listKeys(relPrefix: string, max = 1000, opts: { last?: boolean } = {}): Promise<string[]> {
    const out: string[] = []
    try {
      for await (const page of this.objects.pages(this.key(relPrefix))) {
        for (const o of page.Contents ?? []) out.push(o.Key!.slice(this.loc.prefix.length))
        if (opts.last) out.splice(0, Math.max(0, out.length - max))
        else if (out.length >= max) break
      }
    } catch (err) {
      throw storeError('listing records', err)
    }
    return out.slice(0, max)
  }

  /** The keys (relative to the root) under a relative prefix in key order, a listing page at a time. */
  async *keyPages(relPrefix: string): AsyncGenerator<string[]> {
    try {
      for await (const page of this.objects.pages(this.key(relPrefix)))
        yield (page.Contents ?? []).map((o) => o.Key!.slice(this.loc.prefix.length))
    } catch (err) {
      throw storeError('listing records', err)
    }
  }

  /** Deletes what writeJson(rel, ..., opts) wrote, if anything: s3-pointers.ts. */
  deleteJson(rel: string, opts: { create?: boolean } = {}): Promise<void> {
    return this.catalogue.deleteJson(rel, opts)
  }

  async deleteVersion(title: string, version: string): Promise<void> {
    if (!VERSION_RE.test(version)) throw new CdnError('CDN_ERR_BAD_REQUEST', `not a version id: ${version}`)
    const keys = await deleteVersionObjects(
      this.objects,
      this.key(`titles/${assertTitle(title)}/${version}/`),
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
      read: (start, end) =>
        this.objects.readRange(Key, head.etag, start, end).catch((err: unknown) => {
          this.heads.delete(Key)
          throw err
        }),
    }
  }

  private async head(Key: string): Promise<Head | undefined> {
    const hit = this.heads.get(Key)
    if (hit) return hit
    const head = await this.objects.head(Key)
    if (head) this.heads.set(Key, head)
    return head
  }
}
