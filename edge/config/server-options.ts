/**
 * The edge's server options: listening, identity, access (admin and metrics tokens, signed URLs,
 * public paths, query parameters) and the client connection limits. Part of `EDGE_SPEC` (spec.ts).
 */
import type { OptionTable } from '../../src/config/options.js'

/** Where the edge listens, what it is called, how many processes serve and whom it fetches from. */
export const SERVER_OPTIONS: OptionTable = {
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
}

/** Who may use the edge and which URLs it serves. */
export const ACCESS_OPTIONS: OptionTable = {
  adminToken: {
    type: 'string',
    help: 'bearer token for /admin endpoints',
    env: 'CDN_EDGE_ADMIN_TOKEN',
    arg: 'TOKEN',
  },
  metricsToken: {
    type: 'string',
    help: 'bearer token /metrics asks for (at least 8 characters; its labels name the upstreams); without it /metrics is open',
    env: 'CDN_EDGE_METRICS_TOKEN',
    envAliases: ['CDN_METRICS_TOKEN'],
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
}

/** Logging, relayed methods and the bounds on client connections. */
export const CLIENT_OPTIONS: OptionTable = {
  logLevel: {
    type: 'string',
    help: 'log level',
    default: 'info',
    env: 'CDN_EDGE_LOG_LEVEL',
    envAliases: ['CDN_LOG_LEVEL'],
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
  drainDelay: {
    type: 'duration',
    help: 'on SIGTERM, how long the edge keeps serving while it drains (leaves the registry, /readyz answers 503, /status says draining) before it closes; 0: it closes at once',
    default: 0,
    env: 'CDN_EDGE_DRAIN_DELAY',
    min: 0,
  },
  maxConnections: {
    type: 'int',
    help: 'concurrent client connections (per worker with --workers); past it a new connection gets 503 with Retry-After and is closed',
    default: 10_000,
    env: 'CDN_EDGE_MAX_CONNECTIONS',
    min: 1,
    max: 1_000_000,
  },
}

/** The server's own keys: where it listens, who may use it, how clients are held. */
export interface ServerConfig {
  port: number
  host: string
  id: string
  workers: number
  upstream: string[]
  adminToken: string | undefined
  metricsToken: string | undefined
  signingKey: string[]
  publicPath: string[]
  keepQueryParams: string[]
  logLevel: string
  passThrough: string[]
  accessLog: boolean
  rawHits: boolean
  clientHeadersTimeout: number
  clientRequestTimeout: number
  keepAliveTimeout: number
  clientWriteTimeout: number
  drainDelay: number
  maxConnections: number
}
