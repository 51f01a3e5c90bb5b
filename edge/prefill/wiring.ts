/**
 * Prefill on a running edge: the EdgeFillPort over the edge's store, single-flight and upstream
 * (edge-target.ts depends only on the port), and the EdgePrefill the edge's config describes.
 * edge/app.ts calls `buildEdgePrefill` once; the port's `fill` is also the edge's in-process
 * `app.edge.fill()`.
 */
import type { Clock } from '../../src/clock.js'
import { freshState } from '../cache/freshness.js'
import { cacheTarget, type KeyOptions } from '../cache/key.js'
import { NO_PROTECTED_SHARE, type ProtectedShare } from '../cache/protected-share.js'
import type { CacheStore } from '../cache/store.js'
import type { EdgeConfig } from '../config/spec.js'
import type { EdgeMetrics } from '../metrics.js'
import type { Upstream } from '../upstream/client.js'
import type { SingleFlight } from '../upstream/single-flight.js'
import { EdgePrefill, type EdgePrefillOptions } from './edge-prefill.js'
import type { EdgeFillPort } from './edge-target.js'
import { createPrefillMetrics } from './metrics.js'

export interface PrefillWiring {
  config: Readonly<EdgeConfig>
  store: CacheStore
  flights: SingleFlight
  upstream: Upstream
  clock: Clock
  keyOptions: KeyOptions
  /** The edge's registry: prefill's metrics are served on the edge's /metrics. */
  registry: EdgeMetrics['registry']
  /** The disk tier's protected share; without one nothing is protected. */
  protection: ProtectedShare | undefined
  log: EdgePrefillOptions['log']
}

/** The edge's fill path for prefill: request paths through the edge's key rules and single-flight. */
export function edgeFillPort(w: PrefillWiring): EdgeFillPort {
  const { store, flights, upstream, clock } = w
  // Prefill's own paths are never signed: it names objects, it does not play them.
  const keyOptions = { ...w.keyOptions, signingKeys: undefined }
  const target = (path: string) => cacheTarget(path, keyOptions, Math.floor(clock.now() / 1000))
  return {
    keyOf: (path) => target(path).key,
    fill: (path, opts) => flights.fill(target(path), opts),
    holds: (key) => {
      const e = store.lookup?.(key)
      return e ? freshState(e.fresh, clock.now()) === 'fresh' : store.has(key)
    },
    heldBytes: (key) => store.lookup?.(key)?.meta.bodyLength,
    readHeld: async (key) => (await store.get(key))?.entry.body,
    head: async (path) => {
      const res = await upstream.fetch(target(path).key, {}, 'HEAD')
      res.body.resume()
      const length = Number(res.headers['content-length'])
      return { status: res.status, length: Number.isFinite(length) ? length : undefined }
    },
    protection: w.protection ?? NO_PROTECTED_SHARE,
    onPurge: (fn) => flights.onPurge(fn),
    onStored: (fn) => flights.onStored(fn),
  }
}

/** Prefill (jobs, popularity, titles held complete) on the edge's fill path and config. */
export function buildEdgePrefill(w: PrefillWiring): { prefill: EdgePrefill; port: EdgeFillPort } {
  const { config } = w
  const port = edgeFillPort(w)
  const prefill = new EdgePrefill({
    port,
    cacheDir: config.cacheDir,
    clock: w.clock,
    adminToken: config.adminToken,
    concurrency: config.prefillConcurrency,
    maxConcurrency: config.prefillMaxConcurrency,
    trickleBytesPerSecond: config.prefillTrickleRate,
    ...(config.prefillTimeZone ? { timeZone: config.prefillTimeZone } : {}),
    popularityHalfLifeMs: config.popularityHalfLife,
    popularityMaxTitles: config.popularityMaxTitles,
    metrics: createPrefillMetrics(w.registry),
    retry: {
      attempts: config.prefillRetryAttempts,
      initialDelayMs: config.prefillRetryDelay,
      maxDelayMs: config.prefillRetryMaxDelay,
    },
    ...(w.log ? { log: w.log } : {}),
  })
  return { prefill, port }
}
