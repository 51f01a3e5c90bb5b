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
  /**
   * A cluster worker (edge/cluster): its disk tier follows the primary's (read-only) and every
   * upstream request goes to the primary's socket.
   */
  follower?: { socketPath: string }
  /** Changes to the app's dependencies once the tiers exist (a cluster primary wraps the store). */
  decorate?: (parts: { store: TieredStore; disk: DiskStore }) => Partial<EdgeDeps>
}

export async function createEdge(
  config: Readonly<EdgeConfig>,
  opts: CreateEdgeOptions = {},
): Promise<EdgeApp> {
  const heuristicMaxMs = config.heuristicMax
  const memory = new MemoryStore({
    maxBytes: config.memorySize,
    maxEntryShare: config.memoryObjectShare,
    heuristicMaxMs,
  })
  const disk = await DiskStore.open({
    dir: config.cacheDir,
    maxBytes: config.diskSize,
    protectedShare: config.protectedShare,
    maxFds: config.diskFds,
    heuristicMaxMs,
    clock: opts.clock ?? systemClock,
    ...(opts.follower ? { follower: true } : {}),
  })
  const upstream = new UpstreamClient({
    urls: opts.follower ? ['http://localhost'] : config.upstream,
    ...(opts.follower ? { socketPath: opts.follower.socketPath } : {}),
    connectTimeout: config.connectTimeout,
    headersTimeout: config.headersTimeout,
    bodyTimeout: config.bodyTimeout,
    connections: config.upstreamConnections,
  })
  const store = new TieredStore(memory, disk)
  const app = await buildEdgeApp({
    config,
    store,
    upstream,
    clock: opts.clock ?? systemClock,
    diskErrorsByCode: () => disk.errorsByCode,
    protection: disk.protectedShare(),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...opts.decorate?.({ store, disk }),
  })
  disk.errorLog.attach(app.log)
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
