/**
 * The catalogue of the object-store backend: the titles' pointers and the job records, and the
 * compare-and-swap that publishes a version, done the way the store's CasMode allows:
 * - 'conditional' (the store honours If-Match / If-None-Match, detected at init): a lost race
 *   answers 412 and the swap re-reads and merges (swapWithRetry), so no publish is ever lost;
 * - 'etcd' (asked for with --s3-cas etcd): the pointers live in etcd, not in the bucket, and a
 *   swap is a transaction on the pointer key's revision (etcd-pointers.ts): any number of
 *   origins may publish, as with conditional writes; job claims are etcd creates too;
 * - 'single-writer' (Swift's S3 API answers 501 to conditional PUTs): swaps are serialised in
 *   this process, and the rule is that only one process writes a bucket's pointers (the origin
 *   started without --follower; the others leave their jobs to it through the store).
 *
 * Nothing is cached here: the pointer cache of the serving path is s3-store.ts's.
 */
import { CdnError } from '../../src/errors.js'
import { assertTitle, TITLE_RE } from '../../src/http/paths.js'
import { KeyedQueue } from '../../src/keyed-queue.js'
import type { TitleEntry } from './content-store.js'
import type { EtcdPointers } from './etcd-pointers.js'
import { isConditionFailed, storeError } from './s3-client.js'
import type { PutCondition, S3Objects } from './s3-objects.js'
import type { CasMode, PointerRead } from './store.js'

export class S3Pointers {
  private readonly locks = new KeyedQueue()

  constructor(
    private readonly objects: S3Objects,
    private readonly etcd: EtcdPointers | undefined,
    /** The store's mode, known after its init. */
    private readonly casMode: () => CasMode,
  ) {}

  private pointerKey(title: string): string {
    return this.objects.key(`titles/${assertTitle(title)}/title.json`)
  }

  /** The pointer and its token (the object's ETag, or etcd's revision), read fresh. */
  async read(title: string): Promise<PointerRead> {
    if (!TITLE_RE.test(title)) return { entry: undefined, token: undefined }
    if (this.etcd) return this.etcd.read(title)
    const got = await this.objects.getText(this.pointerKey(title), `reading the pointer of ${title}`)
    if (!got) return { entry: undefined, token: undefined }
    try {
      return { entry: JSON.parse(got.text) as TitleEntry, token: got.etag }
    } catch (err) {
      throw new CdnError('CDN_ERR_STORE', `catalogue entry for ${title} is unreadable`, { cause: err })
    }
  }

  /**
   * Writes the pointer if its token is still `expected`: true if this write won. `readFresh` is
   * the single writer's read under its lock (the store's own readPointer).
   */
  async swap(
    title: string,
    expected: string | undefined,
    entry: TitleEntry,
    readFresh: (title: string) => Promise<PointerRead>,
  ): Promise<boolean> {
    const put = (cond: PutCondition) =>
      this.objects.putJson(this.pointerKey(title), `${JSON.stringify(entry, null, 2)}\n`, cond)
    try {
      if (this.etcd) return await this.etcd.swap(title, expected, entry)
      if (this.casMode() === 'conditional') {
        await put(expected === undefined ? { IfNoneMatch: '*' } : { IfMatch: expected })
        return true
      }
      // Single writer: the read, the comparison and the write are one step in this process.
      return await this.locks.run(title, async () => {
        if ((await readFresh(title)).token !== expected) return false
        await put({})
        return true
      })
    } catch (err) {
      if (this.casMode() === 'conditional' && isConditionFailed(err)) return false
      throw err instanceof CdnError ? err : storeError(`writing the pointer of ${title}`, err)
    }
  }

  /** A small JSON document under the store's root (job records), or undefined. */
  async readJson<T>(rel: string): Promise<T | undefined> {
    const got = await this.objects.getText(this.objects.key(rel), 'reading a record')
    if (!got) return undefined
    try {
      return JSON.parse(got.text) as T
    } catch (err) {
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
    const put = (cond?: PutCondition) =>
      this.objects.putJson(this.objects.key(rel), JSON.stringify(value), cond)
    try {
      if (opts.create && this.casMode() === 'conditional') await put({ IfNoneMatch: '*' })
      else if (opts.create) {
        if ((await this.readJson(rel)) !== undefined) return false
        await put()
      } else await put()
      return true
    } catch (err) {
      if (opts.create && isConditionFailed(err)) return false
      throw err instanceof CdnError ? err : storeError('writing a record', err)
    }
  }

  /** Deletes what writeJson(rel, ..., opts) wrote (a claim in etcd with 'etcd'); none is no error. */
  async deleteJson(rel: string, opts: { create?: boolean } = {}): Promise<void> {
    if (opts.create && this.etcd) return this.etcd.delete(rel)
    await this.objects.delete(this.objects.key(rel)).catch((err: unknown) => {
      throw storeError('deleting a record', err)
    })
  }
}
