/**
 * Which requests are answered from slices (edge/cache/slices.ts), and the parts their answers
 * use (sliced-response.ts). With --slice-size every GET/HEAD of a URL not held whole is sliced;
 * otherwise a URL is sliced once a fetch found it larger than --max-object-size (in slices of
 * --large-slice-size), remembered for a bounded number of URLs. A URL whose upstream ignored
 * Range (answered 200) is forgotten again: it streams whole, as before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { LRUCache } from 'lru-cache'
import type { Clock } from '../../src/clock.js'
import type { EntryOptions } from '../cache/entry.js'
import type { CacheTarget } from '../cache/key.js'
import { heldSlices } from '../cache/slices.js'
import type { CacheStore } from '../cache/store.js'
import type { UpstreamRequest } from '../upstream/forward.js'
import type { SingleFlight } from '../upstream/single-flight.js'
import type { Answers } from './answers.js'
import { SlicedResponse } from './sliced-response.js'

/** How a slice was had, for /metrics (edge/metrics.ts). */
export type SliceResult = 'hit' | 'fetched' | 'joined' | 'revalidated' | 'version-changed' | 'range-ignored'

export interface SliceObserver {
  slice(result: SliceResult): void
}

export interface SlicerOptions {
  /** --slice-size: every object sliced (0: only those found large). */
  sliceSize: number
  /** --large-slice-size: the slices of an object found larger than the keep limit (0: none). */
  largeSliceSize: number
  /** --max-object-size: the keep limit (a slice is never larger). */
  maxObjectSize: number
  /** --max-inflight: bounds the URLs remembered as large (ten times it). */
  maxInflight: number
}

/** What a sliced answer uses. */
export interface SlicerParts {
  readonly store: CacheStore
  readonly flights: SingleFlight
  readonly answers: Answers
  readonly clock: Clock
  readonly entryOptions: EntryOptions
  readonly observer?: SliceObserver
  readonly log?: { warn(obj: Record<string, unknown>, msg: string): void }
  /** Drops every slice held for a URL (but the slice key `except`). */
  drop(key: string, title: string | undefined, except?: string): Promise<number>
  /** The upstream answered a slice's Range with the whole object. */
  rangeIgnored(key: string): void
}

export class Slicer {
  /** URLs found larger than the keep limit: their next requests are sliced. */
  private readonly large: LRUCache<string, true>
  /** URLs whose upstream answered a slice's Range with the whole object: never sliced again. */
  private readonly whole: LRUCache<string, true>
  readonly parts: SlicerParts

  constructor(
    parts: Omit<SlicerParts, 'drop' | 'rangeIgnored'>,
    private readonly options: SlicerOptions,
  ) {
    this.large = new LRUCache({ max: Math.max(1, options.maxInflight * 10) })
    this.whole = new LRUCache({ max: Math.max(1, options.maxInflight * 10) })
    this.parts = {
      ...parts,
      drop: (key, title, except) => this.drop(key, title, except),
      rangeIgnored: (key) => {
        this.large.delete(key)
        this.whole.set(key, true)
      },
    }
  }

  /**
   * A fetch found the URL `key` larger than the keep limit (single-flight's `large`): its next
   * requests are sliced, and the stream is stored in the slices they use (their size; 0: none).
   */
  foundLarge(key: string): number {
    if (this.options.sliceSize > 0 || this.options.largeSliceSize === 0) return 0
    // Its slices could not be fetched: it streams whole and uncached, as before slicing.
    if (this.whole.size > 0 && this.whole.has(key)) return 0
    this.large.set(key, true)
    return Math.min(this.options.largeSliceSize, this.options.maxObjectSize)
  }

  /** The slice size a request for `key` is answered in; 0 when it is not sliced. */
  sizeFor(key: string, req: IncomingMessage): number {
    if (req.method !== 'GET' && req.method !== 'HEAD') return 0
    if (this.options.sliceSize > 0) return this.options.sliceSize
    if (this.large.size === 0 || !this.large.has(key)) return 0
    return Math.min(this.options.largeSliceSize, this.options.maxObjectSize)
  }

  /**
   * Answers `req` from slices of `size` bytes. A request with the client's credentials is not
   * sliced (its answer is its own: RFC 9111 §3.5): false, and the caller serves it whole.
   */
  serve(
    req: IncomingMessage,
    res: ServerResponse,
    target: CacheTarget,
    upstream: UpstreamRequest,
    size: number,
    started: number,
  ): boolean {
    if (upstream.authorized) return false
    void new SlicedResponse(this.parts, req, res, target, upstream, size, started).run()
    return true
  }

  /** Drops every slice held for a URL (invalidation; an object that changed between slices). */
  async drop(key: string, title: string | undefined, except?: string): Promise<number> {
    // All at once: each delete leaves the index at its call and resolves once its file is gone,
    // so no slice stays servable while the ones before it are unlinked.
    const keys = [...heldSlices(this.parts.store, key, title)].filter((k) => k !== except)
    const dropped = await Promise.all(keys.map((k) => this.parts.store.delete(k)))
    return dropped.filter(Boolean).length
  }
}
