/**
 * The edge registering itself in the fleet registry (the contract in src/fleet-registry.ts):
 * its record under its own key, attached to a lease the etcd3 client keeps alive (the
 * heartbeat). A lease lost (etcd unreachable past the TTL, or the key's lease revoked) is
 * granted again and the record written again, with a capped backoff, so an edge comes back
 * into the registry by itself once etcd is back. The edge also watches its own key: deleted while
 * its lease lives (an operator's `etcdctl del`, or another edge under the same id that left), it
 * is written again at once; put by another lease (a second edge registered under this id: the
 * last to register holds it), a warning says so, and this edge takes the key back when it is
 * deleted. A watch that stops delivering without an error (etcd3 has had such bugs) would miss a
 * delete: the key is also read every `checkIntervalMs` (30 s) and written again if it is gone.
 * `stop()` revokes the lease: the key goes at once and steering stops sending players
 * here before the edge closes.
 */
import type { Etcd3, Lease, Watcher } from 'etcd3'
import type { FastifyInstance } from 'fastify'
import {
  cancelWithin,
  ETCD_CALL_TIMEOUT_MS,
  type EdgeRecord,
  etcdClient,
  recordKey,
} from '../src/fleet-registry.js'
import type { EdgeConfig } from './config/spec.js'

export interface RegistrationOptions {
  readonly endpoints: readonly string[]
  readonly prefix: string
  readonly record: EdgeRecord
  /** Lease TTL, seconds (etcd's minimum is a few seconds; the heartbeat runs at a third of it). */
  readonly ttlSec: number
  /** How often the key is read, whatever the watch says (ms; default 30 s). */
  readonly checkIntervalMs?: number
  readonly log: {
    info(obj: Record<string, unknown>, msg: string): void
    warn(obj: Record<string, unknown>, msg: string): void
  }
}

const MAX_BACKOFF_MS = 5000
const CHECK_INTERVAL_MS = 30_000

export class Registration {
  private readonly client: Etcd3
  private lease: Lease | null = null
  private stopped = false
  private retry: NodeJS.Timeout | null = null
  private failures = 0
  private watcher: Watcher | null = null
  private checkTimer: NodeJS.Timeout | null = null
  /** Resolves when the record is first written (tests and `cdn edge` startup wait on it). */
  readonly registered: Promise<void>
  private markRegistered!: () => void

  constructor(private readonly options: RegistrationOptions) {
    this.client = etcdClient(options.endpoints)
    this.registered = new Promise((resolve) => (this.markRegistered = resolve))
  }

  start(): void {
    void this.register()
    void this.watchKey()
    this.checkTimer = setInterval(() => this.recheck(), this.options.checkIntervalMs ?? CHECK_INTERVAL_MS)
    this.checkTimer.unref?.()
  }

  /** Follows this edge's own key: see the module comment. */
  private async watchKey(): Promise<void> {
    const { prefix, record, log } = this.options
    let watcher: Watcher
    try {
      watcher = await this.client.watch().key(recordKey(prefix, record.id)).create()
    } catch (err) {
      // Closed while connecting (stop), or the client gave up: the lease still keeps the key.
      if (!this.stopped)
        log.warn({ event: 'registry-error', err: (err as Error).message }, 'own registry key not watched')
      return
    }
    if (this.stopped) return void (await watcher.cancel().catch(() => undefined))
    this.watcher = watcher
    watcher.on('delete', () => this.rewrite())
    // Back after a break with every member: etcd3 resumes a watch that saw no event from the
    // present, so a delete while this edge was cut off is never delivered. The key is read again.
    watcher.on('connected', () => {
      if (this.watcher === watcher) this.recheck()
    })
    // Cancelled by etcd (its revision compacted while this edge was cut off from every member):
    // watched again, and the key written again if it went in the meantime.
    watcher.on('error', (err) => {
      if (this.watcher !== watcher) return
      this.watcher = null
      log.warn(
        { event: 'registry-watch-lost', err: err.message },
        'own registry key watch cancelled: watching it again',
      )
      void this.watchKey().then(() => this.recheck())
    })
    watcher.on('put', (kv) => {
      const lease = this.lease
      if (this.stopped || !lease) return
      void lease.grant().then(
        (id) => {
          if (kv.lease !== id && this.lease === lease)
            log.warn(
              { event: 'registry-id-taken', id: record.id },
              `another edge registered as ${record.id}: it is steered to instead of this one until it leaves`,
            )
        },
        () => undefined, // not granted: the lease's own loss registers again
      )
    })
  }

  /** Writes the key again if it went while this edge could not see it. */
  private recheck(): void {
    if (this.stopped) return
    const { prefix, record } = this.options
    this.client
      .get(recordKey(prefix, record.id))
      .string()
      .then(
        (value) => value === null && this.rewrite(),
        () => undefined, // unreachable again: the next reconnection or check looks once more
      )
  }

  /** The key was deleted while this edge is registered: writes it again under the same lease. */
  private rewrite(): void {
    const lease = this.lease
    if (this.stopped || !lease || this.retry) return
    const { prefix, record, log } = this.options
    log.warn({ event: 'registry-key-gone', id: record.id }, 'own registry key deleted: registering again')
    lease
      .put(recordKey(prefix, record.id))
      .value(JSON.stringify(record))
      .then(
        () => log.info({ event: 'registered', id: record.id, prefix }, `registered again as ${record.id}`),
        (err: unknown) => {
          if (this.stopped || this.lease !== lease) return
          log.warn({ event: 'registry-error', err: (err as Error).message }, 'could not register: retrying')
          lease.release()
          this.again()
        },
      )
  }

  private async register(): Promise<void> {
    if (this.stopped) return
    const { prefix, record, ttlSec, log } = this.options
    const lease = this.client.lease(ttlSec)
    this.lease = lease
    lease.on('lost', (err: Error) => {
      if (this.stopped || this.lease !== lease) return
      log.warn({ event: 'registry-lease-lost', err: err.message }, 'registry lease lost: registering again')
      this.again()
    })
    try {
      await lease.put(recordKey(prefix, record.id)).value(JSON.stringify(record))
      this.failures = 0
      log.info(
        { event: 'registered', id: record.id, prefix },
        `registered as ${record.id} in the fleet registry`,
      )
      this.markRegistered()
    } catch (err) {
      if (this.stopped || this.lease !== lease) return
      log.warn({ event: 'registry-error', err: (err as Error).message }, 'could not register: retrying')
      lease.release()
      this.again()
    }
  }

  private again(): void {
    if (this.stopped || this.retry) return
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.failures++)
    this.retry = setTimeout(() => {
      this.retry = null
      void this.register()
    }, delay)
    this.retry.unref?.()
  }

  /** Leaves the registry (revokes the lease) and closes the client; never throws. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.retry) clearTimeout(this.retry)
    if (this.checkTimer) clearInterval(this.checkTimer)
    // Bounded: on a watch stream etcd3 no longer reads the cancel is never answered, and the lease
    // must still be revoked (close() cancels the stream anyway).
    if (this.watcher) await cancelWithin(this.watcher, ETCD_CALL_TIMEOUT_MS)
    const lease = this.lease
    this.lease = null
    if (lease)
      await lease.revoke({ deadline: Date.now() + 2000 }).catch((err: unknown) => {
        // Unreachable etcd: the key goes when the TTL runs out instead.
        this.options.log.warn(
          { event: 'registry-leave-error', err: (err as Error).message },
          'lease not revoked',
        )
      })
    this.client.close()
  }
}

/**
 * With --registry-etcd: registers once the edge listens (steering checks /status at once), at
 * --public-url or else the address it listens on, and leaves before it closes (preClose:
 * steering stops sending players here while the open connections finish).
 */
export function joinRegistry(app: FastifyInstance, config: Readonly<EdgeConfig>): { leave(): Promise<void> } {
  if (!config.registryEtcd.length) return { leave: async () => undefined }
  let registration: Registration | undefined
  let left: Promise<void> | undefined
  // Once: at a drain (SIGTERM with --drain-delay), else before close; never joins afterwards.
  const leave = (): Promise<void> => (left ??= registration?.stop() ?? Promise.resolve())
  app.addHook('onListen', async () => {
    if (left) return
    const addr = app.server.address()
    const port = typeof addr === 'object' && addr ? addr.port : config.port
    const host = config.host.includes(':') ? `[${config.host}]` : config.host
    registration = new Registration({
      endpoints: config.registryEtcd,
      prefix: config.registryPrefix,
      ttlSec: Math.ceil(config.registryTtl / 1000),
      record: {
        id: config.id,
        url: (config.publicUrl ?? `http://${host}:${port}`).replace(/\/+$/, ''),
        site: config.site!,
        lat: config.lat!,
        lon: config.lon!,
        capacityBytesPerSec: config.capacity,
        tier: config.tier,
      },
      log: app.log.child({ component: 'registry' }),
    })
    registration.start()
  })
  app.addHook('preClose', leave)
  return { leave }
}
