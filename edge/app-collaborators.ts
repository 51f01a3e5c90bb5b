/**
 * The request path's collaborators as the edge's config sets them: the single-flight every miss
 * coalesces in, the forward policy of what goes upstream, and the cache key's options.
 */
import type { FastifyBaseLogger } from 'fastify'
import { parseSigningKeys, type SigningKey } from '../src/http/signing.js'
import type { EdgeDeps } from './app-contract.js'
import type { KeyOptions } from './cache/key.js'
import type { EdgeConfig } from './config/spec.js'
import type { InflightBudget } from './inflight-budget.js'
import type { EdgeMetrics } from './metrics.js'
import type { MissLedger } from './miss/ledger.js'
import { ForwardPolicy } from './upstream/forward.js'
import { SingleFlight } from './upstream/single-flight.js'

/** The one place misses coalesce (edge/upstream/single-flight.ts), with the config's bounds. */
export function singleFlight(
  deps: EdgeDeps,
  metrics: EdgeMetrics,
  budget: InflightBudget,
  log: FastifyBaseLogger,
  forward: ForwardPolicy,
  misses: MissLedger,
  large: (key: string) => number,
): SingleFlight {
  const { config } = deps
  return new SingleFlight({
    upstream: deps.upstream,
    store: deps.store,
    clock: deps.clock,
    observer: metrics,
    maxObjectSize: config.maxObjectSize,
    maxInflight: config.maxInflight,
    waiterTimeout: config.waiterTimeout,
    heuristicMax: config.heuristicMax,
    compress: config.compress,
    notFoundTtl: config.notFoundTtl,
    hitForMiss: config.hitForMiss,
    errorTtl: config.errorTtl,
    budget,
    log: { warn: (obj, msg) => log.warn(obj, msg) },
    ownRequest: forward.own(),
    stored: (key) => misses.stored(key),
    large,
  })
}

/** What goes upstream of a client's request: Via, X-Forwarded-For, the deny and add lists. */
export function forwardPolicy(config: Readonly<EdgeConfig>, clusterPrimary: boolean): ForwardPolicy {
  return new ForwardPolicy({
    pseudonym: config.viaPseudonym ?? config.id,
    trustedProxies: config.trustedProxy ?? [],
    deny: config.forwardDeny ?? [],
    add: config.forwardAdd ?? [],
    relayed: clusterPrimary,
  })
}

/** What the edge serves and how it keys it (edge/cache/key.ts), from the config. */
export function edgeKeyOptions(config: Readonly<EdgeConfig>): KeyOptions {
  const keys = parseSigningKeys(config.signingKey) as SigningKey[]
  return {
    keepQueryParams: config.keepQueryParams,
    publicPaths: config.publicPath,
    signingKeys: keys.length ? keys : undefined,
  }
}
