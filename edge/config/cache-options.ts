/**
 * The edge's cache options: tier sizes, variants, compression, admission and eviction, freshness
 * (heuristic, negative and error caching, client directives) and disk reads. Part of `EDGE_SPEC`.
 */
import { LONG_DURATION_MAX, type OptionTable } from '../../src/config/options.js'
import { ADMISSION_MODES, type AdmissionMode } from '../cache/admission.js'
import { EVICTION_MODES, type EvictionMode } from '../cache/demand-order.js'
import type { ClientFreshness } from '../cache/request-directives.js'
import { DEFAULT_LOOP_CHUNK } from '../cache/store.js'

/** The memory and disk tiers: sizes, variants, compression, admission, eviction. */
export const CACHE_OPTIONS: OptionTable = {
  cacheDir: {
    type: 'string',
    help: 'disk tier directory',
    default: './data/edge-cache',
    env: 'CDN_EDGE_CACHE_DIR',
    arg: 'DIR',
  },
  memorySize: {
    type: 'size',
    help: 'memory tier bound',
    default: 512e6,
    env: 'CDN_EDGE_MEMORY_SIZE',
    min: 0,
  },
  diskSize: { type: 'size', help: 'disk tier bound', default: 20e9, env: 'CDN_EDGE_DISK_SIZE', min: 0 },
  memoryObjectShare: {
    type: 'number',
    help: 'objects larger than this share of the memory tier stay on disk only',
    default: 0.1,
    env: 'CDN_EDGE_MEMORY_OBJECT_SHARE',
    min: 0,
    max: 1,
  },
  maxVariants: {
    type: 'int',
    help: 'variants kept per URL for an answer with Vary (one per combination of the request fields it names); past it the oldest variant goes',
    default: 8,
    env: 'CDN_EDGE_MAX_VARIANTS',
    min: 1,
  },
  compress: {
    type: 'boolean',
    help: 'serve playlists and JSON the upstream did not compress as brotli or gzip to clients that accept it (encoded once per object, kept in the memory tier)',
    default: true,
    env: 'CDN_EDGE_COMPRESS',
  },
  maxObjectSize: {
    type: 'size',
    help: 'largest object cached (and buffered for coalesced waiters)',
    default: 256e6,
    env: 'CDN_EDGE_MAX_OBJECT_SIZE',
    min: 1,
  },
  sliceSize: {
    type: 'size',
    help: 'cache every GET as slices of this size, each fetched with an upstream Range request, so a seek fetches only the slices it covers (0: whole objects, but those larger than --max-object-size: --large-slice-size)',
    default: 0,
    env: 'CDN_EDGE_SLICE_SIZE',
    min: 0,
  },
  largeSliceSize: {
    type: 'size',
    help: 'an object found larger than --max-object-size is cached from then on as slices of this size (at most --max-object-size; 0: such objects stream uncached)',
    default: 4 * 1024 * 1024,
    env: 'CDN_EDGE_LARGE_SLICE_SIZE',
    min: 0,
  },
  protectedShare: {
    type: 'number',
    help: 'share of the disk tier reserved for prefilled (protected) objects',
    default: 0.7,
    env: 'CDN_EDGE_PROTECTED_SHARE',
    min: 0,
    max: 1,
  },
  diskAdmission: {
    type: 'string',
    help: "which viewers' misses are written to disk: demand (when the disk has room, or when the demand model expects the object asked for at least as often as the one the disk would evict for it); all; frequency (on a second miss within the window: one-off requests stay in memory only); or tinylfu (every request counted, a miss admitted when the disk has room or when it was asked for more often than the object the disk would evict for it)",
    default: 'demand',
    choices: ADMISSION_MODES,
    env: 'CDN_EDGE_DISK_ADMISSION',
  },
  diskAdmissionWindow: {
    type: 'int',
    help: 'samples (misses for frequency, requests for tinylfu) the admission remembers before its counts are halved (0: ten times the objects the disk holds at 1 MB each)',
    default: 0,
    env: 'CDN_EDGE_DISK_ADMISSION_WINDOW',
    min: 0,
  },
  diskEviction: {
    type: 'string',
    help: "which ordinary object the disk tier evicts: demand (the least expected demand among 32 drawn at random: title popularity from first-segment requests, its rendition share, how many sessions reach the segment's position, and live playheads of the same rendition just behind it); or lru (least recently used)",
    default: 'demand',
    choices: EVICTION_MODES,
    env: 'CDN_EDGE_DISK_EVICTION',
  },
  diskDemandHalfLife: {
    type: 'duration',
    help: 'half-life of the request counts the demand model (--disk-eviction demand, --disk-admission demand: the defaults) keeps',
    default: 86_400_000,
    env: 'CDN_EDGE_DISK_DEMAND_HALF_LIFE',
    min: 1000,
    max: LONG_DURATION_MAX,
  },
  diskLowRendition: {
    type: 'int',
    help: 'ladder-aware eviction, with --disk-eviction lru: renditions up to this height (480 for 480p), playlists and init segments are evicted only once idle four times as long as the oldest higher rendition (0: plain LRU)',
    default: 0,
    env: 'CDN_EDGE_DISK_LOW_RENDITION',
    min: 0,
    max: 4320,
  },
}

/** How long what the upstream said is served, and what a client may ask. */
export const FRESHNESS_OPTIONS: OptionTable = {
  heuristicMax: {
    type: 'duration',
    help: 'cap on heuristic freshness (10% of age since Last-Modified)',
    default: 86_400_000,
    env: 'CDN_EDGE_HEURISTIC_MAX',
    min: 0,
    max: LONG_DURATION_MAX,
  },
  notFoundTtl: {
    type: 'duration',
    help: 'floor on how long a 404 or 410 from the upstream is served from cache (negative caching; an answer that says no-store or private is never stored)',
    default: 10_000,
    env: 'CDN_EDGE_NOT_FOUND_TTL',
    min: 0,
    max: LONG_DURATION_MAX,
  },
  hitForMiss: {
    type: 'duration',
    help: 'how long a URL whose answer was personal (private, no-store, Set-Cookie, Vary: *) is fetched for each request without collapsing: its next requests go upstream at once instead of queueing behind one fetch whose answer they cannot share (hit-for-miss, as Varnish); a shareable answer or a purge ends it (0: every miss collapses first)',
    default: 120_000,
    env: 'CDN_EDGE_HIT_FOR_MISS',
    min: 0,
  },
  errorTtl: {
    type: 'duration',
    help: 'cache 500/502/503/504 answers from the upstream for this long, to shield it (0: never stored)',
    default: 0,
    env: 'CDN_EDGE_ERROR_TTL',
    min: 0,
    max: LONG_DURATION_MAX,
  },
  clientFreshness: {
    type: 'string',
    help: "what a client's own no-cache, max-age=N, min-fresh=N (and Pragma: no-cache) do: ignore (serve the fresh stored copy, shielding the origin) or obey (revalidate it upstream); max-stale and only-if-cached are always obeyed",
    default: 'ignore',
    env: 'CDN_EDGE_CLIENT_FRESHNESS',
    choices: ['ignore', 'obey'],
  },
}

/** How disk hits are read. */
export const DISK_IO_OPTIONS: OptionTable = {
  diskFds: {
    type: 'int',
    help: 'open file handles kept for disk hits',
    default: 256,
    env: 'CDN_EDGE_DISK_FDS',
    min: 0,
    max: 65536,
  },
  diskSyncReadMax: {
    type: 'size',
    help: 'largest disk hit read on the event loop (one pread), and only when its file was read in the last 5 s; larger or colder reads, and the chunks of streamed bodies, go to the threadpool so a slow disk never stalls the event loop (0: every read on the threadpool)',
    default: 64 * 1024,
    env: 'CDN_EDGE_DISK_SYNC_READ_MAX',
    min: 0,
  },
  diskSendfile: {
    type: 'boolean',
    help: 'send disk hits of 256 KiB and more on plain-HTTP/1.1 connections with sendfile(2), from the page cache to the socket without a copy through the process (needs the addon npm run build compiles with a C compiler; TLS and HTTP/2 connections, and edges without the addon, read into a buffer and write)',
    default: true,
    env: 'CDN_EDGE_DISK_SENDFILE',
  },
  diskSendfileMaxChunk: {
    type: 'size',
    help: "most bytes of one sendfile(2) made on the event loop (a range whose pages are all in the page cache), as nginx's sendfile_max_chunk; a send that took all of them is followed by a turn of the loop. On loopback the client's receive path is charged to whoever sends: larger sends lower the edge's own CPU per hit and raise the machine's (docs/bench.md, \"Who pays for a loopback send\")",
    default: DEFAULT_LOOP_CHUNK,
    env: 'CDN_EDGE_DISK_SENDFILE_MAX_CHUNK',
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
  },
}

/** The cache keys: tiers, admission, eviction, freshness and disk reads. */
export interface CacheConfig {
  cacheDir: string
  memorySize: number
  diskSize: number
  memoryObjectShare: number
  maxVariants: number
  compress: boolean
  maxObjectSize: number
  sliceSize: number
  largeSliceSize: number
  protectedShare: number
  diskAdmission: AdmissionMode
  diskAdmissionWindow: number
  diskEviction: EvictionMode
  diskDemandHalfLife: number
  diskLowRendition: number
  heuristicMax: number
  notFoundTtl: number
  hitForMiss: number
  errorTtl: number
  clientFreshness: ClientFreshness
  diskFds: number
  diskSyncReadMax: number
  diskSendfile: boolean
  diskSendfileMaxChunk: number
}
