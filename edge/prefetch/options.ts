/**
 * The edge's options for reading what players say (CMCD) and acting on it: next-segment
 * prefetch (prefetcher.ts) and the memory behind miss causes (edge/miss/ledger.ts). Kept out
 * of edge/config/spec.ts, whose table spreads these rows in.
 */
import type { OptionTable } from '../../src/config/options.js'

export interface DemandOptions {
  prefetchConcurrency: number
  prefetchMaxBytes: number
  missMemory: number
}

export const DEMAND_OPTIONS: OptionTable = {
  prefetchConcurrency: {
    type: 'int',
    help: 'next-segment prefetches (named by CMCD nor, or the next segment of the media playlist held) in flight at once; 0 turns prefetch off',
    default: 4,
    env: 'CDN_EDGE_PREFETCH_CONCURRENCY',
    min: 0,
    max: 1024,
  },
  prefetchMaxBytes: {
    type: 'size',
    help: 'bytes of prefetched objects not yet asked for, past which no prefetch starts (what prefetch may waste)',
    default: 64e6,
    env: 'CDN_EDGE_PREFETCH_MAX_BYTES',
    min: 0,
  },
  missMemory: {
    type: 'int',
    help: 'keys remembered as held here, to tell a miss of an evicted object (capacity) from one never held (content); about 100 bytes each',
    default: 100_000,
    env: 'CDN_EDGE_MISS_MEMORY',
    min: 1,
    max: 100_000_000,
  },
}
