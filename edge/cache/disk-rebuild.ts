/**
 * Rebuilding the disk tier's index at start (disk-store.ts): by reading every file when there is
 * no usable snapshot (disk-scan.ts); else from the snapshot's records of the buckets it vouches
 * for (disk-snapshot.ts) and a scan of the others (changed since, or new). When those are more
 * than a few (`scanBeforeReady`: a crash long after the last snapshot), the tier serves at once
 * while they are scanned in the background (`validated`): until its bucket is scanned, an object
 * of one is a miss (fetched and written anew), never a record the snapshot had; a key the index
 * holds by the time its bucket is scanned keeps that record (written since: newer), and a key
 * purged since the scan began is not indexed and its file goes (the purge found no record to
 * unlink). Scanned records are indexed oldest first (by mtime), after the snapshot's (which keep
 * their LRU order).
 */
import type { DiskIndex } from './disk-index.js'
import type { DiskRecord } from './disk-record.js'
import { type Found, scanObjects } from './disk-scan.js'
import { restore } from './disk-snapshot.js'
import type { EntryOptions } from './entry.js'

/** Buckets a start scans before it serves; more are scanned while it serves. */
export const SCAN_BEFORE_READY = 256

/** What the rebuild works on: the store's index, its unlink and its purge generations. */
export interface RebuildTarget {
  readonly index: DiskIndex
  unlink(rec: DiskRecord): void
  ticket(): number
  purgedSince(ticket: number, key: string, title: string | undefined): boolean
  /** The store is closing: the background scan stops. */
  closing(): boolean
  /** Test hook: a bucket of the background scan is read (these keys) and not yet indexed. */
  validating?(keys: string[]): Promise<void>
}

export interface Rebuilt {
  /** Buckets taken from the snapshot and scanned (-1: no snapshot, all scanned). */
  restored: { trusted: number; scanned: number }
  /** The background scan, when there is one: resolves true once it completed, false if stopped. */
  validated: Promise<boolean> | undefined
}

export async function rebuild(
  dir: string,
  opts: EntryOptions & { scanBeforeReady?: number },
  target: RebuildTarget,
  onError: (err: unknown) => void,
): Promise<Rebuilt> {
  const { index } = target
  const adopt = (found: Found[], ticket: number | undefined): void => {
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { rec } of found) {
      if (ticket !== undefined && index.get(rec.key)) continue
      if (ticket !== undefined && target.purgedSince(ticket, rec.key, rec.title)) target.unlink(rec)
      else if (!index.add(rec)) target.unlink(rec)
    }
  }
  const restored = await restore(dir, opts, onError)
  if (!restored) {
    adopt(await scanObjects(dir, opts, onError), undefined)
    return { restored: { trusted: 0, scanned: -1 }, validated: undefined }
  }
  const figures = { trusted: restored.bucketsTrusted, scanned: restored.toScan.length }
  for (const rec of restored.trusted) if (!index.add(rec)) target.unlink(rec)
  if (restored.toScan.length <= (opts.scanBeforeReady ?? SCAN_BEFORE_READY)) {
    if (restored.toScan.length) adopt(await scanObjects(dir, opts, onError, restored.toScan), undefined)
    return { restored: figures, validated: undefined }
  }
  const ticket = target.ticket()
  const validated = scanObjects(dir, opts, onError, restored.toScan, {
    bucket: async (found) => {
      await target.validating?.(found.map((f) => f.rec.key))
      adopt(found, ticket)
    },
    stopped: () => target.closing(),
  }).then(() => !target.closing())
  return { restored: figures, validated }
}
