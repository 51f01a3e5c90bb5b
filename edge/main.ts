/**
 * Builds the edge's dependencies from a validated config, then listens. `cdn edge` and the
 * test helper both come through here; closing the app closes the upstream pools and stores.
 */
import { type Clock, systemClock } from '../src/clock.js'
import { buildEdgeApp, type EdgeApp, type EdgeDeps } from './app.js'
import { DiskStore } from './cache/disk-store.js'
import { MemoryStore } from './cache/memory-store.js'
import { TieredStore } from './cache/tiered-store.js'
import type { EdgeConfig } from './config.js'
import { UpstreamClient } from './upstream/client.js'

export interface RunningEdge {
  app: EdgeApp
  url: string
}

export interface CreateEdgeOptions {
  clock?: Clock
  logger?: boolean | Record<string, unknown>
  /** Changes to the app's dependencies once the tiers exist (a cluster primary wraps the store). */
  decorate?: (parts: { store: TieredStore; disk: DiskStore }) => Partial<EdgeDeps>
}

/** The memory tier a config asks for. */
export function memoryTier(config: Readonly<EdgeConfig>): MemoryStore {
  return new MemoryStore({
    maxBytes: config.memorySize,
    maxEntryShare: config.memoryObjectShare,
    heuristicMaxMs: config.heuristicMax,
  })
}

/** The upstream client a config asks for; `socketPath` sends every request to a local socket. */
export function upstreamClient(config: Readonly<EdgeConfig>, socketPath?: string): UpstreamClient {
  return new UpstreamClient({
    urls: socketPath ? ['http://localhost'] : config.upstream,
    ...(socketPath ? { socketPath } : {}),
    connectTimeout: config.connectTimeout,
    headersTimeout: config.headersTimeout,
    bodyTimeout: config.bodyTimeout,
    connections: config.upstreamConnections,
    // A worker's upstream is its own primary on a local socket: never marked down.
    maxFails: socketPath ? 0 : config.upstreamMaxFails,
    probeInterval: config.upstreamProbeInterval,
    probePath: config.upstreamProbePath,
    probeTimeout: Math.min(config.headersTimeout, Math.max(config.upstreamProbeInterval, 1000)),
  })
}

/** A whole edge: memory and disk tiers, upstream, and prefill started (jobs resumed). */
export async function createEdge(
  config: Readonly<EdgeConfig>,
  opts: CreateEdgeOptions = {},
): Promise<EdgeApp> {
  const clock = opts.clock ?? systemClock
  const disk = await DiskStore.open({
    dir: config.cacheDir,
    maxBytes: config.diskSize,
    protectedShare: config.protectedShare,
    maxFds: config.diskFds,
    heuristicMaxMs: config.heuristicMax,
    clock,
  })
  const store = new TieredStore(memoryTier(config), disk)
  const app = await buildEdgeApp({
    config,
    store,
    upstream: upstreamClient(config),
    clock,
    diskErrorsByCode: () => disk.errorsByCode,
    protection: disk.protectedShare(),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...opts.decorate?.({ store, disk }),
  })
  disk.attachLog(app.log)
  await app.edge.prefill.start()
  return app
}

export async function startEdge(
  config: Readonly<EdgeConfig>,
  opts: CreateEdgeOptions = {},
): Promise<RunningEdge> {
  const app = await createEdge(config, opts)
  const address = await app.listen({ port: config.port, host: config.host })
  return { app, url: address.replace('[::1]', 'localhost') }
}
