/**
 * A content request's cache target (key.ts), memoised per URL for the hit paths, and the Host
 * header last found valid: the per-request work a hit does before its lookup. Owned by the
 * content handler (serve.ts).
 */
import { type CacheTarget, cacheTarget, type KeyOptions, validHost } from '../cache/key.js'

const TARGET_MEMO_MAX = 10_000

export class HitTargets {
  /** url → target, for the fast path; only without signing keys (tokens expire). */
  private readonly memo = new Map<string, CacheTarget>()
  /** Host header last found valid: players send the same one on every request. */
  private lastHost: string | undefined

  constructor(
    private readonly keyOptions: KeyOptions,
    /** Paths the node answers itself (never looked up in the cache). */
    private readonly ownPath: (url: string) => boolean,
  ) {}

  /** `client`: the peer's address, for network-bound tokens (none on the raw path: such a token is not a raw hit). */
  target(url: string, nowMs: number, client?: string): CacheTarget {
    if (this.keyOptions.signingKeys !== undefined)
      return cacheTarget(url, this.keyOptions, Math.floor(nowMs / 1000), client)
    let t = this.memo.get(url)
    if (t === undefined) {
      t = cacheTarget(url, this.keyOptions, Math.floor(nowMs / 1000))
      if (this.memo.size >= TARGET_MEMO_MAX) this.memo.clear()
      this.memo.set(url, t)
    }
    return t
  }

  hostOk(host: string | undefined): boolean {
    if (host === this.lastHost) return true
    if (!validHost(host)) return false
    this.lastHost = host
    return true
  }

  /** The target of a content request for the hit paths; undefined for own paths and bad targets (the full path answers those). */
  hitTarget(url: string, nowMs: number, client?: string): CacheTarget | undefined {
    // A memoised target was checked once already (own paths never reach the memo).
    const memoised = this.keyOptions.signingKeys === undefined ? this.memo.get(url) : undefined
    if (memoised !== undefined) return memoised
    if (this.ownPath(url)) return undefined
    try {
      return this.target(url, nowMs, client)
    } catch {
      return undefined
    }
  }
}
