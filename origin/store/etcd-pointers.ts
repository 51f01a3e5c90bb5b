/**
 * The catalogue of an object store kept in etcd (CasMode 'etcd'), for stores without
 * conditional writes (Swift's S3 API answers 501 to them). etcd holds the truth: one key per
 * title, its value the pointer's JSON, under a namespace of the store's own
 *
 *   {etcdPrefix}{bucket}/{s3 prefix}titles/{title}            the pointer (TitleEntry JSON)
 *   {etcdPrefix}{bucket}/{s3 prefix}_cdn/jobs/{id}.claim       a job's claim (created once)
 *
 * The pointer's token is the key's mod_revision; a swap is one etcd transaction: put the new
 * entry if the key's mod_revision is still the one read (or, for a create, if the key does not
 * exist: create_revision 0), so of several origins swapping from one read exactly one wins,
 * and the others re-read and merge (swapWithRetry). Reads are linearizable (etcd's default):
 * once a swap has returned, every read sees it. The bucket holds the versions' objects and the
 * job records, never a copy of the pointer: a second copy could only lag behind.
 *
 * The etcd3 client is loaded on first use (src/fleet-registry.ts), so an origin in any other
 * mode never loads it.
 */
import type { Etcd3, Namespace } from 'etcd3'
import { CdnError } from '../../src/errors.js'
import { etcdClient } from '../../src/fleet-registry.js'
import { assertTitle, TITLE_RE } from '../../src/http/paths.js'
import type { TitleEntry } from './content-store.js'
import type { PointerRead } from './store.js'

export const DEFAULT_STORE_ETCD_PREFIX = '/cdn/store/'

/** What an etcd transaction compares before a swap; undefined: the token can never match. */
export type RevisionCompare = { target: 'Create'; value: 0 } | { target: 'Mod'; value: string }

/**
 * The compare of a swap from the token readPointer gave: no token (no pointer yet) is a create
 * (the key's create_revision is 0, i.e. it does not exist); a token is the mod_revision read.
 * Anything but a positive decimal revision was never handed out and never wins. Pure.
 */
export function revisionCompare(expected: string | undefined): RevisionCompare | undefined {
  if (expected === undefined) return { target: 'Create', value: 0 }
  return /^[1-9][0-9]{0,18}$/.test(expected) ? { target: 'Mod', value: expected } : undefined
}

export interface EtcdPointersOptions {
  endpoints: readonly string[]
  /** Key prefix of every store's catalogue (the store's bucket and prefix are appended). */
  prefix?: string
  /** The store's own part of the namespace: `{bucket}/{s3 prefix}`. */
  store: string
}

function catalogueError(what: string, err: unknown): CdnError {
  if (err instanceof CdnError) return err
  return new CdnError('CDN_ERR_STORE', `catalogue (etcd): ${what} failed`, { cause: err })
}

export class EtcdPointers {
  private readonly client: Etcd3
  private readonly ns: Namespace
  /** The namespace, for the start log and /status (no credentials in it). */
  readonly location: string

  constructor(o: EtcdPointersOptions) {
    if (!o.endpoints.length)
      throw new CdnError('CDN_ERR_CONFIG', '--s3-cas etcd needs the catalogue endpoints (--s3-etcd URL)')
    this.location = `${o.prefix ?? DEFAULT_STORE_ETCD_PREFIX}${o.store}`
    this.client = etcdClient(o.endpoints)
    this.ns = this.client.namespace(this.location)
  }

  private static key(title: string): string {
    return `titles/${assertTitle(title)}`
  }

  async read(title: string): Promise<PointerRead> {
    if (!TITLE_RE.test(title)) return { entry: undefined, token: undefined }
    const res = await this.ns
      .get(EtcdPointers.key(title))
      .exec()
      .catch((err: unknown) => {
        throw catalogueError(`reading the pointer of ${title}`, err)
      })
    const kv = res.kvs[0]
    if (!kv) return { entry: undefined, token: undefined }
    return { entry: parseEntry(title, kv.value.toString('utf8')), token: String(kv.mod_revision) }
  }

  /** Puts `entry` if the pointer's revision is still `expected`: true if this swap won. */
  async swap(title: string, expected: string | undefined, entry: TitleEntry): Promise<boolean> {
    const key = EtcdPointers.key(title)
    const cmp = revisionCompare(expected)
    if (!cmp) return false
    try {
      const res = await this.ns
        .if(key, cmp.target, '==', cmp.value)
        .then(this.ns.put(key).value(`${JSON.stringify(entry, null, 2)}\n`))
        .commit()
      return res.succeeded
    } catch (err) {
      throw catalogueError(`swapping the pointer of ${title}`, err)
    }
  }

  /** Every title's pointer, by id. */
  async list(): Promise<TitleEntry[]> {
    const all = await this.ns
      .getAll()
      .prefix('titles/')
      .strings()
      .catch((err: unknown) => {
        throw catalogueError('listing titles', err)
      })
    return Object.entries(all)
      .map(([k, v]) => [k.slice('titles/'.length), v] as const)
      .filter(([id]) => TITLE_RE.test(id))
      .map(([id, v]) => parseEntry(id, v))
      .sort((a, b) => a.id.localeCompare(b.id))
  }

  /** Creates `rel` if it does not exist (a job's claim): true if this call created it. */
  async create(rel: string, value: string): Promise<boolean> {
    try {
      const res = await this.ns.if(rel, 'Create', '==', 0).then(this.ns.put(rel).value(value)).commit()
      return res.succeeded
    } catch (err) {
      throw catalogueError('claiming a record', err)
    }
  }

  /** Deletes `rel` (a job's claim) if it exists. */
  async delete(rel: string): Promise<void> {
    await this.ns
      .delete()
      .key(rel)
      .exec()
      .catch((err: unknown) => {
        throw catalogueError('deleting a claim', err)
      })
  }

  close(): void {
    this.client.close()
  }
}

function parseEntry(title: string, text: string): TitleEntry {
  try {
    return JSON.parse(text) as TitleEntry
  } catch (err) {
    throw new CdnError('CDN_ERR_STORE', `catalogue entry for ${title} is unreadable`, { cause: err })
  }
}
