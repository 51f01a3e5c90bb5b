/**
 * The cluster primary's store: the tiered store it owns, plus its workers. A purge or delete
 * is done here first (the disk index changes reach the workers' mirrors as events), then in
 * every worker's memory tier, and answers only when every worker has said it is done, so the
 * next request on any worker misses. A purge that some worker did not confirm (timed out,
 * failed, exited) is an error naming those workers by slot number (CDN_ERR_PURGE_INCOMPLETE,
 * 503): the operator retries rather than trusting a purge that may still be served. A purge
 * counts what it removed across the host once: the disk's keys and the workers' memory keys.
 */
import { CdnError } from '../../src/errors.js'
import type { CacheEntry, EntryMeta } from '../cache/entry.js'
import type {
  BodyStream,
  CacheStore,
  CacheWriter,
  GetResult,
  StoreStats,
  Validators,
} from '../cache/store.js'
import type { TieredStore } from '../cache/tiered-store.js'
import type { RequestFields } from '../cache/variants.js'
import type { Ask } from './protocol.js'
import type { Confirmed } from './worker-rpc.js'

export class HostStore implements CacheStore {
  constructor(
    private readonly inner: TieredStore,
    /**
     * Asks every worker and resolves when each has answered (or been given up on) with the
     * slot numbers of the workers that did not confirm, and the answers of those that did.
     */
    private readonly broadcast: (ask: Ask) => Promise<Confirmed>,
    /** Told of a delete some workers did not confirm (a delete has no operator to answer). */
    private readonly unconfirmedDelete: (key: string, workers: number[]) => void,
  ) {}

  getInMemory(key: string): CacheEntry | undefined {
    return this.inner.getInMemory(key)
  }

  get(key: string): Promise<GetResult | undefined> {
    return this.inner.get(key)
  }

  getToSend(key: string): Promise<GetResult | undefined> {
    return this.inner.getToSend(key)
  }

  stream(key: string, minLength: number, sendMinLength?: number): BodyStream | undefined {
    return this.inner.stream(key, minLength, sendMinLength)
  }

  /** The primary counts the requests its workers send it (their misses), not the workers' hits. */
  noteRequest(key: string): void {
    this.inner.noteRequest(key)
  }

  getResident(key: string): GetResult | undefined {
    return this.inner.getResident(key)
  }

  has(key: string): boolean {
    return this.inner.has(key)
  }

  variantOf(key: string, headers: RequestFields): string {
    return this.inner.variantOf(key, headers)
  }

  lookup(key: string): CacheEntry | undefined {
    return this.inner.lookup(key)
  }

  createWriter(meta: EntryMeta): CacheWriter {
    return this.inner.createWriter(meta)
  }

  updateMeta(key: string, meta: EntryMeta, revalidated?: Validators): Promise<CacheEntry | undefined> {
    return this.inner.updateMeta(key, meta, revalidated)
  }

  async delete(key: string): Promise<boolean> {
    const held = await this.inner.delete(key)
    const { missing } = await this.broadcast({ what: 'delete', key })
    if (missing.length) this.unconfirmedDelete(key, missing)
    return held
  }

  async purgeTitle(title: string): Promise<number> {
    const keys = new Set([...this.inner.titleIndex(title).values()].flatMap((set) => [...set]))
    await this.inner.purgeTitle(title)
    const { missing: workers, answers } = await this.broadcast({ what: 'purge', title })
    for (const a of answers) for (const k of a.keys ?? []) keys.add(k)
    const purged = keys.size
    if (workers.length)
      throw new CdnError(
        'CDN_ERR_PURGE_INCOMPLETE',
        `purge of ${title}: not confirmed by worker${workers.length > 1 ? 's' : ''} ${workers.join(', ')}; retry`,
        { details: { title, purged, workers } },
      )
    return purged
  }

  titles(): string[] {
    return this.inner.titles()
  }

  titleIndex(title: string): Map<string, Set<string>> {
    return this.inner.titleIndex(title)
  }

  stats(): StoreStats {
    return this.inner.stats()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
