/**
 * The edge's options table: the single source for `cdn edge --help`, flags, env vars
 * (CDN_EDGE_*) and the --config file, assembled from the groups beside this file (in the order
 * `--help` lists them). `EdgeConfig` is the frozen result that `buildEdgeApp` receives; tests
 * build one with `edgeConfig({...})` (validate.ts).
 */
import type { CommandSpec } from '../../src/config/options.js'
import { tlsOptionTable, type TlsOptions } from '../../src/config/tls-options.js'
import { DEMAND_OPTIONS, type DemandOptions } from '../prefetch/options.js'
import { CACHE_OPTIONS, type CacheConfig, DISK_IO_OPTIONS, FRESHNESS_OPTIONS } from './cache-options.js'
import { type FleetConfig, PREFILL_OPTIONS, REGISTRY_OPTIONS } from './fleet-options.js'
import { ACCESS_OPTIONS, CLIENT_OPTIONS, SERVER_OPTIONS, type ServerConfig } from './server-options.js'
import { UPSTREAM_CA_OPTIONS, UPSTREAM_OPTIONS, type UpstreamConfig } from './upstream-options.js'

export const EDGE_SPEC: CommandSpec = {
  name: 'cdn edge',
  summary: 'Run an edge: a memory LRU in front of a disk LRU in front of one or more upstreams.',
  usage: 'cdn edge --upstream URL [--upstream URL2] [options]',
  envPrefix: 'CDN_EDGE',
  options: {
    ...SERVER_OPTIONS,
    ...CACHE_OPTIONS,
    ...PREFILL_OPTIONS,
    ...ACCESS_OPTIONS,
    ...UPSTREAM_OPTIONS,
    ...FRESHNESS_OPTIONS,
    ...DISK_IO_OPTIONS,
    ...REGISTRY_OPTIONS,
    ...CLIENT_OPTIONS,
    ...tlsOptionTable('CDN_EDGE'),
    ...DEMAND_OPTIONS,
    ...UPSTREAM_CA_OPTIONS,
  },
}

export interface EdgeConfig
  extends ServerConfig, CacheConfig, UpstreamConfig, FleetConfig, TlsOptions, DemandOptions {}
