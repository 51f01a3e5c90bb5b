/**
 * The contract between prefill and the cache it fills. Prefill owns planning, pacing,
 * persistence and reporting; the target owns bytes. On the edge the target is the tiered
 * store behind the single-flight fill path, so a prefill and a viewer never fetch one object
 * twice; in tests it can be any real implementation (e.g. an HTTP client to an origin).
 *
 * Errors: every method rejects with a CdnError. An upstream HTTP error status carries
 * `details.status` (e.g. 404); a connection failure, timeout or 5xx is `retryable`.
 *
 * The two shapes it shares with the edge are the edge's own: a fill answers with the
 * single-flight's FillResult, and protection is the disk tier's ProtectedShare.
 */
import type { ProtectedShare, ProtectTag } from '../cache/protected-share.js'
import type { FillResult } from '../upstream/fill.js'

export interface FillOptions {
  /** Pin the object in the protected share under this title. */
  readonly protect?: ProtectTag
  readonly signal?: AbortSignal
  /**
   * Paces the body as it arrives (a target that `paces`): told each chunk's length, answers how
   * many ms to hold the next one. So a capped fill reads its bytes at the cap instead of taking
   * each object at line rate in a burst that viewers' requests queue behind.
   */
  readonly pace?: (bytes: number) => number
}

export interface PrefillTarget {
  /** Whether the object at this path is held and fresh (no upstream request needed). */
  has(path: string): boolean | Promise<boolean>
  /** Size in bytes of the object without fetching its body (held metadata or an upstream HEAD). */
  size(path: string, options?: { signal?: AbortSignal }): Promise<number | undefined>
  /**
   * Ensures the object is held, fetching it through the shared miss path if needed. Resolves
   * only for a stored 200; `bytes` is the object's size, `how` says whether it was fetched.
   */
  fill(path: string, options?: FillOptions): Promise<FillResult>
  /** A playlist's text, through the same path (and cache) as fill. */
  fetchText(path: string, options?: FillOptions): Promise<string>
  /** Whether `fill` honours `pace` (else the job charges whole objects before they start). */
  readonly paces?: boolean
  /** What the target holds under protection; `fill` with `protect` pins what it fills. */
  readonly protectedShare: ProtectedShare
}
