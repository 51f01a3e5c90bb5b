/**
 * Builds the edge's dependencies from a validated config, then listens. `cdn edge` and the
 * test helper both come through here; closing the app closes the upstream pools and stores.
 */
import type { FastifyBaseLogger } from 'fastify'
import { type Clock, systemClock } from '../src/clock.js'
import { certFilesOf, readCaFiles, TlsCertificates } from '../src/http/tls-certificates.js'
import { listenServer } from '../src/http/tls-server.js'
import { buildEdgeApp } from './app.js'
import type { EdgeApp, EdgeDeps } from './app-contract.js'
import { type DiskAdmission, diskAdmission } from './cache/admission.js'
import { DemandModel, keysFor } from './cache/demand.js'
import { DemandAdmission } from './cache/demand-order.js'
import { DiskStore } from './cache/disk-store.js'
import { MemoryStore } from './cache/memory-store.js'
import { TieredStore } from './cache/tiered-store.js'
import type { EdgeConfig } from './config/spec.js'
import { UpstreamClient } from './upstream/client.js'
import { sendfile } from './native/sendfile.js'

export interface RunningEdge {
  app: EdgeApp
  url: string
  /** With --http-port: the plain-HTTP listener's URL (serving, or redirecting to `url`). */
  httpUrl?: string
}

export interface CreateEdgeOptions {
  clock?: Clock
  logger?: boolean | Record<string, unknown>
  /** Changes to the app's dependencies once the tiers exist (a cluster primary wraps the store). */
  decorate?: (parts: { store: TieredStore; disk: DiskStore }) => Partial<EdgeDeps>
}

/**
 * The certificates of --tls-cert (none: plain HTTP), their reloads reported to `log` once it
 * exists. `own`: this process watches the files and rotates its ticket keys (a cluster's
 * workers are told both by their primary instead).
 */
export function edgeCertificates(
  config: Readonly<EdgeConfig>,
  own: boolean,
  opts: { ticketKeys?: Buffer; reloaded?: () => void } = {},
): { tls: TlsCertificates; attachLog: (log: FastifyBaseLogger) => void } | undefined {
  if (!config.tlsCert.length) return undefined
  let log: FastifyBaseLogger | undefined
  const tls = new TlsCertificates(
    certFilesOf(config),
    {
      onReload: (r) => {
        if (r.ok) {
          log?.info({ names: r.names }, 'TLS certificates reloaded')
          opts.reloaded?.()
        } else
          log?.warn(
            { code: r.code, problem: r.message },
            'TLS certificates not reloaded; the ones in use stay',
          )
      },
    },
    opts.ticketKeys,
  )
  if (own) {
    tls.watch(config.tlsReloadInterval)
    tls.rotateTickets(config.tlsTicketRotation)
  }
  return { tls, attachLog: (l) => (log = l) }
}

/** The memory tier a config asks for. */
export function memoryTier(config: Readonly<EdgeConfig>): MemoryStore {
  return new MemoryStore({
    maxBytes: config.memorySize,
    maxEntryShare: config.memoryObjectShare,
    maxVariants: config.maxVariants,
    heuristicMaxMs: config.heuristicMax,
    compress: config.compress,
  })
}

/**
 * The demand model (edge/cache/demand.ts) when `--disk-eviction demand` or `--disk-admission
 * demand` asks for one (and there is a disk tier): given to the disk index and the admission.
 */
export function demandFor(config: Readonly<EdgeConfig>, clock: Clock = systemClock): DemandModel | undefined {
  if (config.diskSize <= 0 || (config.diskEviction !== 'demand' && config.diskAdmission !== 'demand'))
    return undefined
  return new DemandModel({
    clock,
    halfLifeMs: config.diskDemandHalfLife,
    maxTitles: config.popularityMaxTitles,
    maxKeys: keysFor(config.diskSize),
  })
}

/**
 * The disk tier's admission a config asks for (`--disk-admission`; undefined: every miss goes
 * to disk): what the edge gives its tiered store and what the hit-ratio replay measures. With a
 * demand model it is the model's admission, which records every request into the model and
 * decides itself (`demand`) or asks the configured one.
 */
export function admissionFor(config: Readonly<EdgeConfig>, demand?: DemandModel): DiskAdmission | undefined {
  const own = diskAdmission(config.diskAdmission, config.diskSize, config.diskAdmissionWindow)
  return demand ? new DemandAdmission(demand, own, config.diskAdmission === 'demand') : own
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
    // A cluster worker's upstream is its primary's private socket, in the clear.
    ...(socketPath ? {} : { ca: readCaFiles(config.upstreamCa ?? [], '--upstream-ca') }),
  })
}

/** A whole edge: memory and disk tiers, upstream, and prefill started (jobs resumed). */
export async function createEdge(
  config: Readonly<EdgeConfig>,
  opts: CreateEdgeOptions = {},
): Promise<EdgeApp> {
  const clock = opts.clock ?? systemClock
  const demand = demandFor(config, clock)
  const disk = await DiskStore.open({
    dir: config.cacheDir,
    maxBytes: config.diskSize,
    protectedShare: config.protectedShare,
    lowRendition: config.diskLowRendition,
    ...(demand && config.diskEviction === 'demand' ? { demand } : {}),
    maxFds: config.diskFds,
    syncReadMax: config.diskSyncReadMax,
    ...(config.diskSendfile && sendfile ? { sendfile } : {}),
    loopChunk: config.diskSendfileMaxChunk,
    maxVariants: config.maxVariants,
    heuristicMaxMs: config.heuristicMax,
    compress: config.compress,
    clock,
  })
  const store = new TieredStore(memoryTier(config), disk, admissionFor(config, demand))
  const certs = edgeCertificates(config, true)
  const app = await buildEdgeApp({
    config,
    store,
    upstream: upstreamClient(config),
    clock,
    diskErrorsByCode: () => disk.errorsByCode,
    protection: disk.protectedShare(),
    ...(certs ? { tls: certs.tls } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...opts.decorate?.({ store, disk }),
  })
  disk.attachLog(app.log)
  if (certs) {
    certs.attachLog(app.log)
    app.addHook('onClose', async () => certs.tls.close())
  }
  await app.edge.prefill.start()
  return app
}

export async function startEdge(
  config: Readonly<EdgeConfig>,
  opts: CreateEdgeOptions = {},
): Promise<RunningEdge> {
  const app = await createEdge(config, opts)
  const address = await app.listen({ port: config.port, host: config.host })
  // fastify names its address http: whatever the server it was given speaks.
  const url = address.replace('[::1]', 'localhost').replace(/^http:/, app.edge.tls ? 'https:' : 'http:')
  const plain = app.edge.plain
  if (!plain) return { app, url }
  const port = await listenServer(plain, config.httpPort ?? 0, config.host)
  return { app, url, httpUrl: `http://${hostPart(config.host)}:${port}` }
}

function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
