/**
 * The edge's options table: the single source for `cdn edge --help`, flags, env vars
 * (CDN_EDGE_*), the --config file and validation. `EdgeConfig` is the frozen result that
 * `buildEdgeApp` receives; tests build one with `edgeConfig({...})`.
 */
import { isIP } from 'node:net'
import { checkBaseUrl, type CommandSpec } from '../src/config/options.js'
import { tlsOptionTable, type TlsOptions, tlsProblems } from '../src/config/tls-options.js'
import { CdnError } from '../src/errors.js'
import { DEFAULT_REGISTRY_PREFIX } from '../src/fleet-registry.js'
import { parseSigningKeys } from '../src/http/signing.js'
import { canonicalTarget } from '../src/http/target.js'
import type { ClientFreshness } from './cache/request-directives.js'
import { DEMAND_OPTIONS, type DemandOptions } from './prefetch/options.js'
import { parseAddedHeader, parseCidr } from './upstream/forward.js'
import { ADMISSION_MODES, type AdmissionMode } from './cache/admission.js'

export const EDGE_SPEC: CommandSpec = {
  name: 'cdn edge',
  summary: 'Run an edge: a memory LRU in front of a disk LRU in front of one or more upstreams.',
  usage: 'cdn edge --upstream URL [--upstream URL2] [options]',
  options: {
    port: {
      type: 'int',
      help: 'TCP port to listen on',
      default: 8081,
      env: 'CDN_EDGE_PORT',
      min: 0,
      max: 65535,
    },
    host: { type: 'string', help: 'address to bind', default: '127.0.0.1', env: 'CDN_EDGE_HOST' },
    id: { type: 'string', help: 'edge id reported in /status', default: 'edge', env: 'CDN_EDGE_ID' },
    workers: {
      type: 'int',
      help: 'processes serving clients (0: one per CPU); above 1, a primary process owns the disk tier, upstream fetches, prefill and admin, and the memory tier is split between the workers',
      default: 1,
      env: 'CDN_EDGE_WORKERS',
      min: 0,
      max: 64,
    },
    upstream: {
      type: 'list',
      help: 'origin or parent edge base URL, tried in order (repeat for failover)',
      env: 'CDN_EDGE_UPSTREAM',
      required: true,
      arg: 'URL',
    },
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
      help: "which viewers' misses are written to disk: all, or frequency (on a second miss within the window: one-off requests stay in memory only)",
      default: 'all',
      choices: ADMISSION_MODES,
      env: 'CDN_EDGE_DISK_ADMISSION',
    },
    diskAdmissionWindow: {
      type: 'int',
      help: 'misses the frequency admission remembers before its counts are halved (0: ten times the objects the disk holds at 1 MB each)',
      default: 0,
      env: 'CDN_EDGE_DISK_ADMISSION_WINDOW',
      min: 0,
    },
    diskLowRendition: {
      type: 'int',
      help: 'ladder-aware eviction: renditions up to this height (480 for 480p), playlists and init segments are evicted only once idle four times as long as the oldest higher rendition (0: plain LRU)',
      default: 0,
      env: 'CDN_EDGE_DISK_LOW_RENDITION',
      min: 0,
      max: 4320,
    },
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
    },
    popularityMaxTitles: {
      type: 'int',
      help: 'titles the popularity counter tracks at most',
      default: 10_000,
      env: 'CDN_EDGE_POPULARITY_MAX_TITLES',
      min: 1,
      max: 1_000_000,
    },
    adminToken: {
      type: 'string',
      help: 'bearer token for /admin endpoints',
      env: 'CDN_EDGE_ADMIN_TOKEN',
      arg: 'TOKEN',
    },
    signingKey: {
      type: 'list',
      help: 'keys that verify signed URLs, KID:SECRET (repeat or comma-separate; a bare SECRET has id 0): unsigned or badly signed content is refused with 403',
      default: [],
      env: 'CDN_EDGE_SIGNING_KEY',
      arg: 'KID:SECRET',
    },
    publicPath: {
      type: 'list',
      help: 'path prefixes served besides /vod/{title}/..., unsigned (e.g. /titles; / serves every path); other paths are 404 without an upstream request',
      default: [],
      env: 'CDN_EDGE_PUBLIC_PATH',
      arg: 'PATH',
    },
    keepQueryParams: {
      type: 'list',
      help: 'query parameters kept in the cache key and the upstream request (* keeps all); others are dropped',
      default: [],
      env: 'CDN_EDGE_KEEP_QUERY_PARAMS',
      arg: 'NAME',
    },
    connectTimeout: {
      type: 'duration',
      help: 'upstream connect timeout',
      default: 2000,
      env: 'CDN_EDGE_CONNECT_TIMEOUT',
      min: 1,
    },
    headersTimeout: {
      type: 'duration',
      help: 'upstream time to headers',
      default: 10_000,
      env: 'CDN_EDGE_HEADERS_TIMEOUT',
      min: 1,
    },
    bodyTimeout: {
      type: 'duration',
      help: 'upstream idle time between body bytes',
      default: 10_000,
      env: 'CDN_EDGE_BODY_TIMEOUT',
      min: 1,
    },
    waiterTimeout: {
      type: 'duration',
      help: 'longest a client waits for the upstream response headers',
      default: 15_000,
      env: 'CDN_EDGE_WAITER_TIMEOUT',
      min: 1,
    },
    upstreamConnections: {
      type: 'int',
      help: 'connections per upstream pool',
      default: 64,
      env: 'CDN_EDGE_UPSTREAM_CONNECTIONS',
      min: 1,
      max: 4096,
    },
    upstreamMaxFails: {
      type: 'int',
      help: 'consecutive failures (refused, reset, timed out, 502/503/504) that mark an upstream down: it is skipped at once, stale-if-error answers are served without waiting, and a background probe finds out when it is back (0: never)',
      default: 1,
      env: 'CDN_EDGE_UPSTREAM_MAX_FAILS',
      min: 0,
    },
    upstreamProbeInterval: {
      type: 'duration',
      help: 'how often a down upstream is probed',
      default: 1000,
      env: 'CDN_EDGE_UPSTREAM_PROBE_INTERVAL',
      min: 10,
    },
    upstreamProbePath: {
      type: 'string',
      help: 'path of the probe request sent to a down upstream (any answer below 500 means it is back)',
      default: '/healthz',
      env: 'CDN_EDGE_UPSTREAM_PROBE_PATH',
      arg: 'PATH',
    },
    viaPseudonym: {
      type: 'string',
      help: 'name this edge appends to the Via of every upstream request and in its Cache-Status entries (an HTTP token, never an address; default: --id)',
      env: 'CDN_EDGE_VIA_PSEUDONYM',
      arg: 'NAME',
    },
    trustedProxy: {
      type: 'list',
      help: "addresses or CIDRs of proxies in front of this edge (e.g. a parent's children, a load balancer) whose X-Forwarded-For is extended; from any other peer it is replaced by the peer's address (repeat or comma-separate)",
      default: [],
      env: 'CDN_EDGE_TRUSTED_PROXY',
      arg: 'CIDR',
    },
    forwardDeny: {
      type: 'list',
      help: 'request header fields never sent upstream (repeat or comma-separate; an empty value forwards Cookie too)',
      default: ['cookie'],
      env: 'CDN_EDGE_FORWARD_DENY',
      arg: 'NAME',
    },
    forwardAdd: {
      type: 'list',
      help: "header fields set on every upstream request, 'NAME: VALUE' (e.g. an origin's credential; a value with a comma needs the config file); never logged",
      default: [],
      env: 'CDN_EDGE_FORWARD_ADD',
      arg: "'NAME: VALUE'",
    },
    maxInflight: {
      type: 'int',
      help: 'bound on concurrent distinct upstream fetches',
      default: 1024,
      env: 'CDN_EDGE_MAX_INFLIGHT',
      min: 1,
    },
    inflightBudget: {
      type: 'size',
      help: 'bound on the bytes held for transfers in flight (miss buffers, disk reads, relayed and streamed windows), per process; past it new transfers wait, then get 503',
      default: 256e6,
      env: 'CDN_EDGE_INFLIGHT_BUDGET',
      min: 1,
    },
    heuristicMax: {
      type: 'duration',
      help: 'cap on heuristic freshness (10% of age since Last-Modified)',
      default: 86_400_000,
      env: 'CDN_EDGE_HEURISTIC_MAX',
      min: 0,
    },
    notFoundTtl: {
      type: 'duration',
      help: 'floor on how long a 404 or 410 from the upstream is served from cache (negative caching; an answer that says no-store or private is never stored)',
      default: 10_000,
      env: 'CDN_EDGE_NOT_FOUND_TTL',
      min: 0,
    },
    errorTtl: {
      type: 'duration',
      help: 'cache 500/502/503/504 answers from the upstream for this long, to shield it (0: never stored)',
      default: 0,
      env: 'CDN_EDGE_ERROR_TTL',
      min: 0,
    },
    clientFreshness: {
      type: 'string',
      help: "what a client's own no-cache, max-age=N, min-fresh=N (and Pragma: no-cache) do: ignore (serve the fresh stored copy, shielding the origin) or obey (revalidate it upstream); max-stale and only-if-cached are always obeyed",
      default: 'ignore',
      env: 'CDN_EDGE_CLIENT_FRESHNESS',
      choices: ['ignore', 'obey'],
    },
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
    logLevel: {
      type: 'string',
      help: 'log level',
      default: 'info',
      env: 'CDN_EDGE_LOG_LEVEL',
      choices: ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'],
    },
    passThrough: {
      type: 'list',
      help: 'methods besides GET/HEAD relayed to the first upstream uncached (e.g. POST); others get 405',
      default: [],
      env: 'CDN_EDGE_PASS_THROUGH',
      arg: 'METHOD',
    },
    accessLog: {
      type: 'boolean',
      help: 'log every request (hits included)',
      default: false,
      env: 'CDN_EDGE_ACCESS_LOG',
    },
    rawHits: {
      type: 'boolean',
      help: "answer plain fresh memory hits from the socket's bytes, before node's http parser (false: every request through node's http)",
      default: true,
      env: 'CDN_EDGE_RAW_HITS',
    },
    clientHeadersTimeout: {
      type: 'duration',
      help: 'longest a client may take to send a request head, from its first byte (then 408 and close)',
      default: 10_000,
      env: 'CDN_EDGE_CLIENT_HEADERS_TIMEOUT',
      min: 1,
    },
    clientRequestTimeout: {
      type: 'duration',
      help: 'longest a client may take to send a whole request, head and body (then 408 and close)',
      default: 30_000,
      env: 'CDN_EDGE_CLIENT_REQUEST_TIMEOUT',
      min: 1,
    },
    keepAliveTimeout: {
      type: 'duration',
      help: 'idle time a client connection is kept open between requests',
      default: 5000,
      env: 'CDN_EDGE_KEEP_ALIVE_TIMEOUT',
      min: 1,
    },
    clientWriteTimeout: {
      type: 'duration',
      help: 'longest an answer may make no progress because the client does not read (then the connection is closed)',
      default: 30_000,
      env: 'CDN_EDGE_CLIENT_WRITE_TIMEOUT',
      min: 1,
    },
    maxConnections: {
      type: 'int',
      help: 'concurrent client connections (per worker with --workers); past it a new connection gets 503 with Retry-After and is closed',
      default: 10_000,
      env: 'CDN_EDGE_MAX_CONNECTIONS',
      min: 1,
      max: 1_000_000,
    },
    ...tlsOptionTable('CDN_EDGE'),
    ...DEMAND_OPTIONS,
    upstreamCa: {
      type: 'list',
      help: 'CA certificate PEM files trusted for https upstreams instead of the system CAs (e.g. a private CA for an own origin)',
      default: [],
      env: 'CDN_EDGE_UPSTREAM_CA',
      arg: 'FILE',
    },
  },
}

export interface EdgeConfig extends TlsOptions, DemandOptions {
  port: number
  host: string
  id: string
  workers: number
  upstream: string[]
  cacheDir: string
  memorySize: number
  diskSize: number
  memoryObjectShare: number
  maxVariants: number
  compress: boolean
  maxObjectSize: number
  protectedShare: number
  diskAdmission: AdmissionMode
  diskAdmissionWindow: number
  diskLowRendition: number
  prefillConcurrency: number
  prefillMaxConcurrency: number
  prefillTrickleRate: number
  prefillTimeZone: string | undefined
  prefillRetryAttempts: number
  prefillRetryDelay: number
  prefillRetryMaxDelay: number
  popularityHalfLife: number
  popularityMaxTitles: number
  adminToken: string | undefined
  signingKey: string[]
  publicPath: string[]
  keepQueryParams: string[]
  connectTimeout: number
  headersTimeout: number
  bodyTimeout: number
  waiterTimeout: number
  upstreamConnections: number
  upstreamMaxFails: number
  upstreamProbeInterval: number
  upstreamProbePath: string
  viaPseudonym: string | undefined
  trustedProxy: string[]
  forwardDeny: string[]
  forwardAdd: string[]
  maxInflight: number
  inflightBudget: number
  heuristicMax: number
  notFoundTtl: number
  errorTtl: number
  clientFreshness: ClientFreshness
  diskFds: number
  diskSyncReadMax: number
  capacity: number
  registryEtcd: string[]
  registryPrefix: string
  registryTtl: number
  publicUrl: string | undefined
  site: string | undefined
  lat: number | undefined
  lon: number | undefined
  tier: number
  logLevel: string
  passThrough: string[]
  accessLog: boolean
  rawHits: boolean
  clientHeadersTimeout: number
  clientRequestTimeout: number
  keepAliveTimeout: number
  clientWriteTimeout: number
  maxConnections: number
  upstreamCa: string[]
}

/** Methods an operator may relay uncached (GET/HEAD are always served from the cache). */
export const PASS_THROUGH_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Defaults from the table, overridden by `over`; checks what the table cannot. */
export function edgeConfig(over: Partial<EdgeConfig> & { upstream: string[] }): Readonly<EdgeConfig> {
  const out: Record<string, unknown> = {}
  for (const [k, spec] of Object.entries(EDGE_SPEC.options)) out[k] = spec.default
  Object.assign(out, over)
  return validateEdgeConfig(out as unknown as EdgeConfig)
}

/**
 * An upstream is an origin: scheme, host and port. The edge asks it for the client's own path
 * (the cache key is that path), so a path prefix would be dropped; it is refused instead.
 */
export function upstreamProblem(url: string): string | undefined {
  const why = checkBaseUrl(url)
  if (why) return why
  const path = new URL(url).pathname
  if (path.replace(/\/+$/, '') !== '')
    return `an upstream is scheme://host[:port] without a path (it is asked for the client's own path); drop "${path}"`
  return undefined
}

export function validateEdgeConfig(c: EdgeConfig): Readonly<EdgeConfig> {
  const problems: string[] = []
  if (!c.upstream?.length) problems.push('--upstream: at least one upstream URL is required')
  for (const u of c.upstream ?? []) {
    const why = upstreamProblem(u)
    if (why) problems.push(`--upstream: ${why} (got ${JSON.stringify(u)})`)
  }
  problems.push(...registrationProblems(c))
  if (c.adminToken !== undefined && c.adminToken.length < 8)
    problems.push('--admin-token: must be at least 8 characters')
  for (const m of c.passThrough ?? [])
    if (!PASS_THROUGH_METHODS.has(m))
      problems.push(
        `--pass-through: ${JSON.stringify(m)} is not one of ${[...PASS_THROUGH_METHODS].join(', ')}`,
      )
  const keys = parseSigningKeys(signingKeyList(c.signingKey))
  if (typeof keys[0] === 'string') for (const p of keys) problems.push(`--signing-key: ${String(p)}`)
  for (const p of c.publicPath ?? [])
    if (!canonicalPrefix(p)) problems.push(`--public-path: ${JSON.stringify(p)} is not a canonical path`)
  for (const n of c.keepQueryParams ?? [])
    if (!/^[A-Za-z0-9._~*-]+$/.test(n))
      problems.push(`--keep-query-params: ${JSON.stringify(n)} is not a plain parameter name`)
  problems.push(...forwardProblems(c))
  if (c.prefillConcurrency > c.prefillMaxConcurrency)
    problems.push('--prefill-concurrency: must be at most --prefill-max-concurrency')
  if (c.prefillTimeZone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: c.prefillTimeZone })
    } catch {
      problems.push(`--prefill-time-zone: unknown IANA time zone (got ${JSON.stringify(c.prefillTimeZone)})`)
    }
  }
  if (c.waiterTimeout < c.connectTimeout)
    problems.push('--waiter-timeout: must be at least --connect-timeout')
  if (c.clientHeadersTimeout > c.clientRequestTimeout)
    problems.push('--client-headers-timeout: must be at most --client-request-timeout')
  problems.push(...tlsProblems(c))
  if (problems.length)
    throw new CdnError('CDN_ERR_CONFIG', `cdn edge: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
  return Object.freeze({
    ...c,
    signingKey: signingKeyList(c.signingKey),
    upstream: c.upstream.map((u) => u.replace(/\/+$/, '')),
  })
}

/** The forwarding options (edge/upstream/forward.ts); an added value is never echoed (a secret). */
function forwardProblems(c: EdgeConfig): string[] {
  const problems: string[] = []
  const via = c.viaPseudonym
  if (via !== undefined && (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(via) || isIP(via) !== 0))
    problems.push(`--via-pseudonym: an HTTP token that is not an address (got ${JSON.stringify(via)})`)
  if (via === undefined && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(c.id ?? ''))
    problems.push('--via-pseudonym: required when --id is not an HTTP token')
  for (const p of c.trustedProxy ?? []) {
    const cidr = parseCidr(p)
    if (typeof cidr === 'string') problems.push(`--trusted-proxy: ${cidr}`)
  }
  for (const n of c.forwardDeny ?? [])
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n))
      problems.push(`--forward-deny: ${JSON.stringify(n)} is not a header field name`)
  for (const a of c.forwardAdd ?? []) {
    const h = parseAddedHeader(a)
    if (typeof h === 'string') problems.push(`--forward-add: ${h}`)
  }
  return problems
}

/** A config file or a test may give one key as a string. */
function signingKeyList(v: string[] | string | undefined): string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v
}

/** A public path must be what canonicalisation would make of it (else it could never match). */
function canonicalPrefix(p: string): boolean {
  try {
    return !p.includes('?') && canonicalTarget(p).path === p
  } catch {
    return false
  }
}

/** Registering in the fleet registry needs what steering needs to place and load the edge. */
function registrationProblems(c: EdgeConfig): string[] {
  if (!c.registryEtcd?.length) return []
  const problems: string[] = []
  for (const key of ['site', 'lat', 'lon'] as const)
    if (c[key] === undefined) problems.push(`--${kebab(key)}: required with --registry-etcd`)
  if (!c.capacity) problems.push('--capacity: required (above 0) with --registry-etcd')
  if (c.publicUrl !== undefined && !/^https?:\/\/[^?#]+$/.test(c.publicUrl))
    problems.push(
      `--public-url: an http(s) URL without query or fragment (got ${JSON.stringify(c.publicUrl)})`,
    )
  for (const u of c.registryEtcd)
    if (!/^https?:\/\/[^/?#]+\/?$/.test(u))
      problems.push(`--registry-etcd: expected http://host:port (got ${JSON.stringify(u)})`)
  return problems
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
