/**
 * Every miss explained: each request that goes upstream gets exactly one cause, counted here
 * (metrics.ts exports the counts, the access log names it), and each request a client was
 * steered to this edge for because its preferred edge was down or overloaded is counted by
 * that reason. Causes, first that applies:
 *
 *   health         steering sent the client here instead of its preferred edge (the redirect
 *                  says why in a path prefix, `/steered/down|overloaded/`, every request of the
 *                  session carries: src/http/steered.ts)
 *   prefetch-late  a prefetch of the object (edge/prefetch) was in flight: the player came first
 *   freshness      a stored copy was stale: revalidated or refetched
 *   capacity       held here before and gone since (evicted; or purged by an operator)
 *   variant        the same path is held under another key (a query parameter the key keeps,
 *                  or another Vary variant)
 *   content        never held here (as far as the ledger remembers)
 *
 * What was held is remembered as hashes of keys, in an LRU bounded by --miss-memory entries
 * (about 100 bytes each), fed by the single-flight as each object is committed: a key older
 * than that memory, or held since before a restart, is counted as content. The same bound
 * applies to the path → key map behind `variant`.
 */
import { LRUCache } from 'lru-cache'
import type { SteerReason } from '../../src/http/steered.js'

export const MISS_CAUSES = ['content', 'capacity', 'freshness', 'health', 'variant', 'prefetch-late'] as const
export type MissCause = (typeof MISS_CAUSES)[number]

export interface MissFacts {
  key: string
  path: string
  /** A stored copy was found stale (the request revalidates or refetches it). */
  stale: boolean
  /** Why steering sent the client here, when it says so. */
  steered: SteerReason | undefined
  /** A prefetch of this key is in flight. */
  prefetchLate: boolean
}

export class MissLedger {
  readonly misses: Record<MissCause, number>
  readonly steered: Record<SteerReason, number> = { down: 0, overloaded: 0 }
  /** Hashes of keys committed here. */
  private readonly held: LRUCache<number, true>
  /** Path hash → hash of the last key committed for that path. */
  private readonly paths: LRUCache<number, number>

  constructor(memory: number) {
    this.misses = Object.fromEntries(MISS_CAUSES.map((c) => [c, 0])) as Record<MissCause, number>
    const max = Math.max(1, memory)
    this.held = new LRUCache({ max })
    this.paths = new LRUCache({ max })
  }

  /** An object was committed to the cache under `key` (the single-flight's commit). */
  stored(key: string): void {
    const k = hash53(key)
    this.held.set(k, true)
    this.paths.set(hash53(pathOf(key)), k)
  }

  /** A request served here because steering's preferred edge could not take it. */
  steer(reason: SteerReason): void {
    this.steered[reason]++
  }

  /** The cause of a miss, counted. */
  classify(f: MissFacts): MissCause {
    const cause = this.causeOf(f)
    this.misses[cause]++
    return cause
  }

  private causeOf(f: MissFacts): MissCause {
    if (f.steered !== undefined) return 'health'
    if (f.prefetchLate) return 'prefetch-late'
    if (f.stale) return 'freshness'
    const k = hash53(f.key)
    if (this.held.has(k)) return 'capacity'
    const other = this.paths.get(hash53(f.path))
    if (other !== undefined && other !== k) return 'variant'
    return 'content'
  }
}

/** The path of a key: without its query, or a variant's `#v=` part (edge/cache/variants.ts). */
function pathOf(key: string): string {
  const q = key.indexOf('?')
  if (q !== -1) return key.slice(0, q)
  const v = key.indexOf('#')
  return v === -1 ? key : key.slice(0, v)
}

/** A 53-bit string hash (cyrb53): collisions between remembered keys are negligible at these bounds. */
export function hash53(s: string): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}
