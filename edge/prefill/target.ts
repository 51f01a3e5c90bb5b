/**
 * The contract between prefill and the cache it fills. Prefill owns planning, pacing,
 * persistence and reporting; the target owns bytes. On the edge the target is the tiered
 * store behind the single-flight fill path, so a prefill and a viewer never fetch one object
 * twice; in tests it can be any real implementation (e.g. an HTTP client to an origin).
 *
 * Errors: every method rejects with a CdnError. An upstream HTTP error status carries
 * `details.status` (e.g. 404); a connection failure, timeout or 5xx is `retryable`.
 */

/** Which prefill put an object in the protected share, and how much it matters. */
export interface ProtectTag {
  readonly title: string
  /** 0 is the most popular; a later prefill evicts the highest rank number first. */
  readonly rank: number
}

export interface FillOptions {
  /** Pin the object in the protected share under this title. */
  readonly protect?: ProtectTag
  readonly signal?: AbortSignal
}

export interface FillResult {
  /** Bytes of the object (as stored). */
  readonly bytes: number
  /** True when the object was already held and nothing was fetched. */
  readonly fromCache: boolean
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
}

export interface PrefillTarget {
  /** Whether the object at this path is held and fresh (no upstream request needed). */
  has(path: string): boolean | Promise<boolean>
  /** Size in bytes of the object without fetching its body (held metadata or an upstream HEAD). */
  size(path: string, options?: { signal?: AbortSignal }): Promise<number | undefined>
  /** Ensures the object is held, fetching it through the shared miss path if needed. */
  fill(path: string, options?: FillOptions): Promise<FillResult>
  /** A playlist's text, through the same path (and cache) as fill. */
  fetchText(path: string, options?: FillOptions): Promise<string>
  readonly protectedShare: ProtectedShare
  /** Releases a title's objects to ordinary LRU eviction (they stay cached until evicted). */
  unprotect(title: string): void | Promise<void>
}
