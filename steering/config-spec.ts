/**
 * Steering's options table (flags, env vars, --config file, --help), each key documented beside
 * its default, and the options as parsed from it. config.ts makes the typed config from them.
 */
import { MAX_PATHWAYS } from './content-steering.js'
import { tlsOptionTable } from '../src/config/tls-options.js'
import { type CommandSpec, LONG_DURATION_MAX } from '../src/config/options.js'
import { DEFAULT_REGISTRY_PREFIX } from '../src/fleet-registry.js'
import { DEFAULT_SELECT_OPTIONS } from './select.js'

export const STEERING_SPEC: CommandSpec = {
  name: 'cdn steering',
  summary: 'Run steering: send each player to the nearest healthy edge that has its title.',
  usage: 'cdn steering --fleet FLEET.json [--zones ZONES.json] [options]',
  envPrefix: 'CDN_STEERING',
  options: {
    port: {
      type: 'int',
      default: 8000,
      min: 0,
      max: 65535,
      env: 'CDN_STEERING_PORT',
      help: 'port to listen on',
    },
    host: {
      type: 'string',
      default: '127.0.0.1',
      env: 'CDN_STEERING_HOST',
      arg: 'ADDR',
      help: 'address to bind',
    },
    fleet: {
      type: 'string',
      required: true,
      env: 'CDN_STEERING_FLEET',
      arg: 'FILE',
      help: 'fleet file: { "edges": [{ id, url, site, lat, lon, capacityBytesPerSec, cluster?, weight? }] }',
    },
    zones: {
      type: 'string',
      env: 'CDN_STEERING_ZONES',
      arg: 'FILE',
      help: 'coverage-zone file: { "regions": {...}, "zones": [{ cidr, region | lat, lon }] }',
    },
    trustedProxy: {
      type: 'list',
      default: [],
      env: 'CDN_STEERING_TRUSTED_PROXY',
      arg: 'CIDR',
      help: 'proxies whose X-Forwarded-For is believed (repeat or comma-separate)',
    },
    signingKey: {
      type: 'list',
      env: 'CDN_SIGNING_KEY',
      arg: 'KID:SECRET',
      help: 'keys for signed /t/{kid},{expiry},.../vod/... URLs, KID:SECRET (repeat or comma-separate; a bare SECRET has id 0): the first signs; edges need every key still in use',
    },
    tokenIpv4Prefix: {
      type: 'int',
      default: 0,
      min: 0,
      max: 32,
      env: 'CDN_STEERING_TOKEN_IPV4_PREFIX',
      help: "bind signed URLs to the client's IPv4 network of this many bits (0: not bound)",
    },
    tokenIpv6Prefix: {
      type: 'int',
      default: 0,
      min: 0,
      max: 128,
      env: 'CDN_STEERING_TOKEN_IPV6_PREFIX',
      help: "bind signed URLs to the client's IPv6 network of this many bits (0: not bound)",
    },
    tokenTtl: {
      type: 'duration',
      default: 6 * 3600_000,
      min: 1000,
      max: LONG_DURATION_MAX,
      env: 'CDN_STEERING_TOKEN_TTL',
      help: 'lifetime of a signed URL (cover the longest playback)',
    },
    checkInterval: {
      type: 'duration',
      default: 2000,
      min: 10,
      env: 'CDN_STEERING_CHECK_INTERVAL',
      help: 'time between health rounds',
    },
    checkTimeout: {
      type: 'duration',
      default: 1000,
      min: 10,
      env: 'CDN_STEERING_CHECK_TIMEOUT',
      help: 'a /status slower than this counts as a failure',
    },
    failAfter: {
      type: 'int',
      default: 2,
      min: 1,
      max: 100,
      help: 'consecutive failures that take an edge out',
    },
    recoverAfter: {
      type: 'int',
      default: 2,
      min: 1,
      max: 100,
      help: 'consecutive successes that bring it back',
    },
    loadHigh: {
      type: 'number',
      default: 0.85,
      min: 0.01,
      max: 10,
      help: 'egress/capacity above which an edge takes no new clients',
    },
    loadLow: {
      type: 'number',
      default: 0.7,
      min: 0,
      max: 10,
      help: 'egress/capacity below which it takes them again',
    },
    queueDelayHigh: {
      type: 'duration',
      default: 0,
      min: 0,
      env: 'CDN_STEERING_QUEUE_DELAY_HIGH',
      help: "queueing delay on an edge's uplink (the median of its last 3 /status round trips above the smallest seen) above which it takes no new clients, back below half (0: not used)",
    },
    defaultLocation: {
      type: 'string',
      default: '0,0',
      arg: 'LAT,LON',
      env: 'CDN_STEERING_DEFAULT_LOCATION',
      help: 'where a client in no zone is taken to be',
    },
    bandKm: {
      type: 'number',
      default: DEFAULT_SELECT_OPTIONS.bandKm,
      min: 0,
      help: 'edges this close to the nearest one share titles by rendezvous hashing',
    },
    boundedLoadFactor: {
      type: 'number',
      default: DEFAULT_SELECT_OPTIONS.boundedLoadFactor,
      min: 1,
      max: 10,
      help: 'an edge above this multiple of its group mean load spills titles to the next edge',
    },
    boundedLoadFloor: {
      type: 'number',
      default: DEFAULT_SELECT_OPTIONS.boundedLoadFloor,
      min: 0,
      max: 10,
      help: 'no spilling below this load',
    },
    maxResults: { type: 'int', default: 5, min: 1, max: 100, help: 'edges in a /steer answer' },
    steerTtl: { type: 'duration', default: 30_000, min: 1000, help: 'ttl a /steer answer tells players' },
    pathways: {
      type: 'int',
      default: 3,
      min: 1,
      max: MAX_PATHWAYS,
      help: 'content steering: candidate edges (Pathways) per master playlist',
    },
    csTtl: {
      type: 'duration',
      default: 10_000,
      min: 1000,
      help: 'content steering: TTL of the steering manifest',
    },
    csMasterTimeout: {
      type: 'duration',
      default: 0,
      min: 0,
      env: 'CDN_STEERING_CS_MASTER_TIMEOUT',
      help: 'content steering: the longest one edge may take to send a whole master playlist before the next candidate is asked (0: twice --check-timeout)',
    },
    checkConcurrency: {
      type: 'int',
      default: 64,
      min: 1,
      max: 1024,
      help: 'health checks in flight at once',
    },
    registryEtcd: {
      type: 'list',
      default: [],
      env: 'CDN_STEERING_REGISTRY_ETCD',
      arg: 'URL',
      help: "etcd endpoints of the fleet registry (repeat or comma-separate): registered edges join the fleet file's, live",
    },
    registryPrefix: {
      type: 'string',
      default: DEFAULT_REGISTRY_PREFIX,
      env: 'CDN_STEERING_REGISTRY_PREFIX',
      help: 'key prefix of the fleet registry',
    },
    registryMaxEdges: {
      type: 'int',
      default: 20_000,
      min: 1,
      max: 1_000_000,
      help: 'most registered edges held (more are refused, logged and counted in /metrics until one leaves room)',
    },
    registryCheckInterval: {
      type: 'duration',
      default: 30_000,
      min: 100,
      help: 'how often the registry watch is checked against etcd (a watch that missed a change is read again)',
    },
    metricsToken: {
      type: 'string',
      env: 'CDN_STEERING_METRICS_TOKEN',
      envAliases: ['CDN_METRICS_TOKEN'],
      arg: 'TOKEN',
      help: 'bearer token /metrics asks for (at least 8 characters); without it /metrics is open (/healthz always is)',
    },
    logLevel: {
      type: 'string',
      default: 'info',
      choices: ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'],
      env: 'CDN_STEERING_LOG_LEVEL',
      envAliases: ['CDN_LOG_LEVEL'],
      help: 'log level',
    },
    ...tlsOptionTable('CDN_STEERING'),
    edgeCa: {
      type: 'list',
      help: 'CA certificate PEM files trusted when checking https edges (and upstreams) instead of the system CAs',
      default: [],
      env: 'CDN_STEERING_EDGE_CA',
      arg: 'FILE',
    },
  },
}

/** The raw, parsed options (as parseCommand returns them for STEERING_SPEC). */
export interface SteeringOptions {
  port: number
  host: string
  fleet: string
  zones?: string
  trustedProxy: string[]
  signingKey?: string[] | string
  tokenIpv4Prefix: number
  tokenIpv6Prefix: number
  tokenTtl: number
  checkInterval: number
  checkTimeout: number
  failAfter: number
  recoverAfter: number
  loadHigh: number
  loadLow: number
  queueDelayHigh: number
  defaultLocation: string
  bandKm: number
  boundedLoadFactor: number
  boundedLoadFloor: number
  maxResults: number
  steerTtl: number
  pathways: number
  csTtl: number
  csMasterTimeout: number
  checkConcurrency: number
  registryEtcd: string[]
  registryPrefix: string
  registryMaxEdges: number
  registryCheckInterval: number
  metricsToken?: string | undefined
  logLevel: string
  tlsCert?: string[]
  tlsKey?: string[]
  httpPort?: number | undefined
  httpRedirect?: boolean
  tlsReloadInterval?: number
  tlsTicketRotation?: number
  hsts?: number
  edgeCa?: string[]
}
