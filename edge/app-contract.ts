/**
 * The edge app's contract: what `buildEdgeApp` (app.ts) is given (`EdgeDeps`) and what it
 * gives back, a fastify instance carrying `edge`, the handle other parts of the edge (prefill,
 * a cluster's primary and workers) use in-process.
 */
import type { Server } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../src/clock.js'
import type { DemandStatus } from '../src/http/status.js'
import type { TlsCertificates } from '../src/http/tls-certificates.js'
import type { ProtectedShare } from './cache/protected-share.js'
import type { CacheStore } from './cache/store.js'
import type { EdgeConfig } from './config/spec.js'
import type { RawCounts } from './http/server.js'
import type { InflightBudget } from './inflight-budget.js'
import type { EdgeMetrics } from './metrics.js'
import type { Prefetcher } from './prefetch/prefetcher.js'
import type { EdgePrefill } from './prefill/edge-prefill.js'
import type { EdgeStats } from './stats.js'
import type { Upstream } from './upstream/client.js'
import type { FillResult } from './upstream/fill.js'
import type { ForwardPolicy } from './upstream/forward.js'
import type { SingleFlight } from './upstream/single-flight.js'

export interface EdgeDeps {
  config: Readonly<EdgeConfig>
  store: CacheStore
  upstream: Upstream
  clock: Clock
  /** fastify logger option; defaults to the config's log level. */
  logger?: boolean | Record<string, unknown>
  /** Disk error counts by errno code, for /metrics. */
  diskErrorsByCode?: () => ReadonlyMap<string, number>
  /** The disk tier's protected share (prefill); without one nothing is protected. */
  protection?: ProtectedShare
  /**
   * Counts a request for a title, for prefill's popularity (default: this edge's own counter).
   * A cluster worker batches its counts to the primary; the primary counts none itself.
   */
  countTitle?: (title: string) => void
  /** Certificates: the edge serves HTTPS (HTTP/2 and HTTP/1.1) on its port. */
  tls?: TlsCertificates
  /**
   * A cluster primary (edge/cluster/primary.ts), reached only by its own workers over a private
   * socket: their requests already carry Via and X-Forwarded-For for the client, and pass as they are.
   */
  clusterPrimary?: boolean
  /**
   * What a drain does to client connections in place of this app's own drainConnections: a
   * cluster primary tells its workers, which hold the clients (its own socket is theirs), and
   * resolves once they answered.
   */
  drainClients?: () => Promise<void>
}

/** What other parts of the edge (prefill) use in-process. */
export interface EdgeHandle {
  readonly store: CacheStore
  readonly flights: SingleFlight
  readonly stats: EdgeStats
  readonly metrics: EdgeMetrics
  /** Bytes held for transfers in flight (misses, disk reads, relays), bounded by --inflight-budget. */
  readonly budget: InflightBudget
  /**
   * Makes sure the object at `path` (a request path, query allowed) is cached, through the
   * same single-flight as viewers. `protect` puts it in the protected share of the disk tier.
   */
  fill(path: string, opts?: { protect?: boolean }): Promise<FillResult>
  /** Prefill registers the titles it holds complete; /status reports them. */
  setTitlesComplete(fn: () => string[]): void
  /** Prefill: jobs, popularity, titles held complete. */
  readonly prefill: EdgePrefill
  /** The raw hit path's counts (undefined when access logs are on). */
  readonly raw: RawCounts | undefined
  /** With --tls-cert and --http-port: the plain-HTTP server beside the HTTPS one, not yet listening. */
  readonly plain: Server | undefined
  /** With --tls-cert: the certificates (reload, ticket keys). */
  readonly tls: TlsCertificates | undefined
  /** What goes upstream of a client's request (a cluster worker relays its methods with it). */
  readonly forward: ForwardPolicy
  /** Miss causes, steered requests, prefetch and CMCD counts (/status `demand`; a cluster adds its workers'). */
  demand(): DemandStatus
  /** Next-segment prefetch (a cluster worker settles its prefetches by the other workers' requests). */
  readonly prefetch: Prefetcher
  /**
   * Starts draining (SIGTERM with --drain-delay): the edge leaves the fleet registry, /readyz
   * answers 503 and /status says `draining`, while content is served as before until close();
   * keep-alive clients are told to go (drainConnections). Resolves once the registry was left
   * and the clients told (a cluster's workers answered); calling it again does nothing more.
   */
  drain(): Promise<void>
  /**
   * From now on, every HTTP/1.1 answer says `connection: close` and closes its connection, and
   * HTTP/2 sessions are sent a GOAWAY (edge/http/server.ts): a client's next request opens a new
   * connection, which a load balancer gives to an edge still ready. Part of drain(); a cluster
   * worker is told by its primary.
   */
  drainConnections(): void
  /** Whether drain() was called. */
  readonly draining: boolean
}

export type EdgeApp = FastifyInstance & { edge: EdgeHandle }
