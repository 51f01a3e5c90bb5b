/**
 * The protected share of the disk tier: the bytes reserved for objects prefill pinned under a
 * title and rank, evicted only when the share itself is full (least popular title first; see
 * disk-index.ts). The disk tier owns it; prefill (edge/prefill) decides what goes in and out
 * and reads it to plan. Moves are index changes only: no I/O.
 */
import type { DiskIndex } from './disk-index.js'

/** Which prefill put an object in the protected share, and how much it matters. */
export interface ProtectTag {
  readonly title: string
  /** 0 is the most popular; a later prefill evicts the highest rank number first. */
  readonly rank: number
}

export interface ProtectedShare {
  /** Bytes of the disk tier reserved for prefilled titles. */
  readonly capacityBytes: number
  /** Bytes currently held under protection, all titles. */
  usedBytes(): number
  /** Bytes held under protection for one title (0 if none). */
  titleBytes(title: string): number
  /** Titles currently protected, with the rank they were filled at. */
  titles(): ReadonlyArray<{ title: string; rank: number; bytes: number }>
  /** Pins a held object under `tag` (moves it into the share). False if not held or too large. */
  protectKey(key: string, tag: ProtectTag): boolean
  /** Releases a title's objects to ordinary LRU eviction (they stay cached until evicted). */
  unprotectTitle(title: string): void
}

/** Without a disk tier nothing is protected and every title fits. */
export const NO_PROTECTED_SHARE: ProtectedShare = {
  capacityBytes: Number.MAX_SAFE_INTEGER,
  usedBytes: () => 0,
  titleBytes: () => 0,
  titles: () => [],
  protectKey: () => false,
  unprotectTitle: () => undefined,
}

/** The share a disk index keeps (an unranked title, restored from disk, ranks last). */
export function protectedShareOf(index: DiskIndex): ProtectedShare {
  return {
    capacityBytes: index.protectedMaxBytes,
    usedBytes: () => index.protectedBytes,
    titleBytes: (title) => index.protectedBytesOf(title),
    titles: () => index.protectedTitles().map((t) => ({ ...t, rank: t.rank ?? Number.MAX_SAFE_INTEGER })),
    protectKey: (key, tag) => index.protect(key, tag.title, tag.rank),
    unprotectTitle: (title) => {
      index.unprotectTitle(title)
    },
  }
}
