/**
 * The origin's store contract, with two backends: the local directory (content-store.ts, the
 * embedded default) and S3-compatible object storage (s3-store.ts). Both pass one contract
 * test (test/origin/store-contract.test.ts).
 *
 * Layout, the same keys in both (under the directory, or under s3://BUCKET/PREFIX/):
 *   titles/{title}/title.json                 the title's pointer: versions, current version
 *   titles/{title}/{version}/...              one immutable version; version.json written last
 *
 * A version is published by writing its objects, then its manifest (version.json), then
 * switching the pointer with a compare-and-swap (`swapPointer`): a reader follows the pointer,
 * so it sees the old version or the new one, whole, never a mix.
 */
import type { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { CdnError } from '../../src/errors.js'
import type { VodPath } from '../../src/http/paths.js'
import type { TitleEntry, VersionEntry } from './content-store.js'
import type { Leftovers } from './leftovers.js'

/** One object behind a /vod path: its validators and size, and a reader for a byte range. */
export interface StoredObject {
  size: number
  /** A strong validator of the bytes, quoted. */
  etag: string
  lastModified: Date
  /** File name (for the Content-Type). */
  name: string
  /** Bytes start..end inclusive. */
  read(start: number, end: number): Promise<Readable | Buffer>
}

/** How the title pointer's compare-and-swap is done. */
export type CasMode =
  /** Conditional writes of the store itself (If-Match / If-None-Match on the pointer). */
  | 'conditional'
  /** The pointers live in etcd: a transaction on the pointer key's revision (etcd-pointers.ts). */
  | 'etcd'
  /** The store has none: the single-writer rule, one writing process, its swaps serialised. */
  | 'single-writer'
  /** One directory on one host: swaps hold the title's lock file, whichever process writes. */
  | 'local'

export interface PointerRead {
  entry: TitleEntry | undefined
  /** The pointer's version token for swapPointer (undefined: no pointer yet). */
  token: string | undefined
}

export interface OriginStore {
  readonly kind: 'local' | 's3'
  readonly casMode: CasMode
  /** What opening the store found of crashed processes' work in staging (leftovers.ts). */
  readonly leftovers: Leftovers
  /** What /status and the start log say about the store (never credentials). */
  describe(): { kind: string; location: string; casMode: CasMode }
  readTitle(title: string): Promise<TitleEntry | undefined>
  listTitles(): Promise<TitleEntry[]>
  /** The object behind a parsed /vod path, or undefined (the master: the current version's). */
  open(path: VodPath): Promise<StoredObject | undefined>
  /** A private local directory for one job's output (ffmpeg writes files). */
  createStaging(label: string): Promise<string>
  /** Local directory for generated sample sources. */
  sourcesDir(): string
  /**
   * Publishes a validated staging directory as `version` of `title`: objects, then the
   * manifest, then the pointer (swapped, retried on a lost race). Old versions stay servable.
   */
  publish(title: string, staged: string, version: VersionEntry, now: Date): Promise<TitleEntry>
  /** The pointer and its token, read fresh. */
  readPointer(title: string): Promise<PointerRead>
  /** Writes the pointer if its token is still `expected`: true if this write won. */
  swapPointer(title: string, expected: string | undefined, entry: TitleEntry): Promise<boolean>
  /** Deletes every object of one version (retire, after the pointer no longer names it). */
  deleteVersion(title: string, version: string): Promise<void>
  close(): Promise<void>
}

/**
 * Versions to retire from a pointer: all but the `keep` newest (the current one always kept).
 * Pure: the caller swaps the pointer and deletes after the grace period.
 */
export function versionsToRetire(entry: TitleEntry, keep: number): string[] {
  const newestFirst = [...entry.versions].sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  const kept = new Set(newestFirst.slice(0, Math.max(1, keep)).map((v) => v.id))
  kept.add(entry.current)
  return newestFirst.filter((v) => !kept.has(v.id)).map((v) => v.id)
}

/** The pointer after a publish: `version` added (or replaced) and made current. */
export function withVersion(
  old: TitleEntry | undefined,
  title: string,
  version: VersionEntry,
  now: Date,
): TitleEntry {
  return {
    ...(old ?? {}),
    id: title,
    current: version.id,
    updatedAt: now.toISOString(),
    versions: [...(old?.versions ?? []).filter((v) => v.id !== version.id), version],
  }
}

/**
 * Swaps until one write wins (a lost race re-reads and merges), at most `attempts` times. A lost
 * swap waits a random time, up to 5 ms doubled each loss (at most 200 ms), before it reads again:
 * writers retrying in lockstep would keep losing to each other (CI saw one lose 8 in a row with
 * four processes on one title).
 */
export async function swapWithRetry(
  store: Pick<OriginStore, 'readPointer' | 'swapPointer'>,
  title: string,
  change: (old: TitleEntry | undefined) => TitleEntry,
  attempts = 8,
): Promise<TitleEntry> {
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await delay(Math.random() * Math.min(200, 5 * 2 ** i))
    const { entry, token } = await store.readPointer(title)
    const next = change(entry)
    if (await store.swapPointer(title, token, next)) return next
  }
  throw new CdnError('CDN_ERR_CONFLICT', `the pointer of ${title} kept changing: ${attempts} swaps lost`)
}
