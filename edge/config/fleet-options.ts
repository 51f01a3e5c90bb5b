/**
 * The edge's place in the fleet: prefill jobs, the popularity counter, and registration in the
 * fleet registry (what steering needs to place and load the edge). Part of `EDGE_SPEC`.
 */
import { LONG_DURATION_MAX, type OptionTable } from '../../src/config/options.js'
import { DEFAULT_REGISTRY_PREFIX } from '../../src/fleet-registry.js'

/** Prefill jobs and the popularity counter behind GET /admin/popularity. */
export const PREFILL_OPTIONS: OptionTable = {
  prefillConcurrency: {
    type: 'int',
    help: 'objects a prefill job fetches at once, unless the job says',
    default: 4,
    env: 'CDN_EDGE_PREFILL_CONCURRENCY',
    min: 1,
    max: 256,
  },
  prefillMaxConcurrency: {
    type: 'int',
    help: 'most objects a prefill job may ask to fetch at once',
    default: 16,
    env: 'CDN_EDGE_PREFILL_MAX_CONCURRENCY',
    min: 1,
    max: 256,
  },
  prefillTrickleRate: {
    type: 'size',
    help: "prefill byte rate outside a job's window, per second (0: wait for the window)",
    default: 0,
    env: 'CDN_EDGE_PREFILL_TRICKLE_RATE',
    min: 0,
  },
  prefillTimeZone: {
    type: 'string',
    help: "IANA time zone of prefill windows (default: the edge's local zone)",
    env: 'CDN_EDGE_PREFILL_TIME_ZONE',
    arg: 'ZONE',
  },
  prefillRetryAttempts: {
    type: 'int',
    help: 'attempts per object while the upstream is down, before a prefill job fails',
    default: 8,
    env: 'CDN_EDGE_PREFILL_RETRY_ATTEMPTS',
    min: 1,
    max: 100,
  },
  prefillRetryDelay: {
    type: 'duration',
    help: 'first backoff of a paused prefill (doubles per attempt)',
    default: 1000,
    env: 'CDN_EDGE_PREFILL_RETRY_DELAY',
    min: 1,
  },
  prefillRetryMaxDelay: {
    type: 'duration',
    help: 'longest backoff of a paused prefill',
    default: 30_000,
    env: 'CDN_EDGE_PREFILL_RETRY_MAX_DELAY',
    min: 1,
  },
  popularityHalfLife: {
    type: 'duration',
    help: 'half-life of the per-title request counts behind GET /admin/popularity',
    default: 6 * 3_600_000,
    env: 'CDN_EDGE_POPULARITY_HALF_LIFE',
    min: 1000,
    max: LONG_DURATION_MAX,
  },
  popularityMaxTitles: {
    type: 'int',
    help: 'titles the popularity counter tracks at most',
    default: 10_000,
    env: 'CDN_EDGE_POPULARITY_MAX_TITLES',
    min: 1,
    max: 1_000_000,
  },
}

/** Registration in the fleet registry, and what steering reads from it. */
export const REGISTRY_OPTIONS: OptionTable = {
  capacity: {
    type: 'size',
    help: 'egress capacity in bytes/s reported to steering (0 = unset)',
    default: 0,
    env: 'CDN_EDGE_CAPACITY',
    min: 0,
  },
  registryEtcd: {
    type: 'list',
    default: [],
    env: 'CDN_EDGE_REGISTRY_ETCD',
    arg: 'URL',
    help: 'etcd endpoints of the fleet registry (repeat or comma-separate): the edge registers itself there with a lease and leaves on stop',
  },
  registryPrefix: {
    type: 'string',
    default: DEFAULT_REGISTRY_PREFIX,
    env: 'CDN_EDGE_REGISTRY_PREFIX',
    help: 'key prefix of the fleet registry (the edge writes PREFIX + its id)',
  },
  registryTtl: {
    type: 'duration',
    default: 10_000,
    min: 2_000,
    env: 'CDN_EDGE_REGISTRY_TTL',
    help: 'registry lease TTL: a dead edge leaves the registry this long after its last heartbeat',
  },
  publicUrl: {
    type: 'string',
    env: 'CDN_EDGE_PUBLIC_URL',
    arg: 'URL',
    help: 'the URL players and steering reach this edge at, registered in the fleet registry (default: the address it listens on)',
  },
  site: { type: 'string', env: 'CDN_EDGE_SITE', help: 'site name, registered in the fleet registry' },
  lat: {
    type: 'number',
    min: -90,
    max: 90,
    env: 'CDN_EDGE_LAT',
    help: 'latitude, registered in the fleet registry',
  },
  lon: {
    type: 'number',
    min: -180,
    max: 180,
    env: 'CDN_EDGE_LON',
    help: 'longitude, registered in the fleet registry',
  },
  tier: {
    type: 'int',
    default: 1,
    min: 1,
    max: 2,
    env: 'CDN_EDGE_TIER',
    help: 'delivery tier registered: 1 serves players, 2 is a parent (never steered to)',
  },
}

/** The prefill, popularity and fleet-registry keys. */
export interface FleetConfig {
  prefillConcurrency: number
  prefillMaxConcurrency: number
  prefillTrickleRate: number
  prefillTimeZone: string | undefined
  prefillRetryAttempts: number
  prefillRetryDelay: number
  prefillRetryMaxDelay: number
  popularityHalfLife: number
  popularityMaxTitles: number
  capacity: number
  registryEtcd: string[]
  registryPrefix: string
  registryTtl: number
  publicUrl: string | undefined
  site: string | undefined
  lat: number | undefined
  lon: number | undefined
  tier: number
}
