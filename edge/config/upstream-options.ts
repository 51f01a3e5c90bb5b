/**
 * The edge's upstream options: timeouts, connection pools, marking an upstream down, what is
 * forwarded (Via, X-Forwarded-For, denied and added fields), in-flight bounds and the CAs trusted
 * for https upstreams. Part of `EDGE_SPEC`.
 */
import type { OptionTable } from '../../src/config/options.js'

/** Fetching from the upstreams: timeouts, pools, health, forwarding, in-flight bounds. */
export const UPSTREAM_OPTIONS: OptionTable = {
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
    help: 'bound on concurrent upstream fetches, each counted once (a variant, a slice, a revalidation, a stream too large to keep); past it a miss gets 503',
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
}

/** The CAs trusted for https upstreams. */
export const UPSTREAM_CA_OPTIONS: OptionTable = {
  upstreamCa: {
    type: 'list',
    help: 'CA certificate PEM files trusted for https upstreams instead of the system CAs (e.g. a private CA for an own origin)',
    default: [],
    env: 'CDN_EDGE_UPSTREAM_CA',
    arg: 'FILE',
  },
}

/** The upstream keys: timeouts, pools, health, forwarding, in-flight bounds, trusted CAs. */
export interface UpstreamConfig {
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
  upstreamCa: string[]
}
