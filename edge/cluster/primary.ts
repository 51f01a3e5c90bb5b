/**
 * `cdn edge --workers N`: one edge on one port served by N worker processes, with one owner
 * for everything that must be one per host. Why not N independent edges on a shared socket:
 * each would keep its own disk index (N copies of every object, the disk bound broken, one
 * worker's eviction unlinking another's files), a stampede would make N upstream fetches,
 * and a purge would reach one process in N.
 *
 * The cluster wraps ordinary edges; the edge itself knows nothing of it. The primary runs a
 * whole edge (disk tier, upstream, single-flight, prefill, admin) on a private unix socket,
 * its store wrapped so that purges reach the workers (host-store.ts) and its /status and
 * /metrics answered for the host (host-ops.ts). Each worker (worker-main.ts) is an edge with
 * 1/N of the memory budget, a mirror of the primary's disk index (disk-mirror.ts) and the
 * primary as its upstream, so misses from every worker for one object become one upstream
 * fetch. The parts here: the worker pool (worker-pool.ts), the questions to workers
 * (worker-rpc.ts) and the connection dealer in front (dealer.ts); protocol.ts lists the
 * messages.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CdnError } from '../../src/errors.js'
import type { EdgeApp } from '../app-contract.js'
import type { DiskStore } from '../cache/disk-store.js'
import type { EdgeConfig } from '../config/spec.js'
import { createEdge, edgeCertificates } from '../main.js'
import { ConnectionDealer } from './dealer.js'
import { DEAL_DEADLINE_MS, type ToWorker } from './protocol.js'
import { diskEvent } from './disk-mirror.js'
import { HostStore } from './host-store.js'
import { answerForHost } from './host-ops.js'
import { WorkerPool, type WorkerReport, type WorkerSlot } from './worker-pool.js'
import { ASK_TIMEOUT_MS, type Confirmed, WorkerRpc } from './worker-rpc.js'
import { WorkerViews } from './worker-views.js'

/** How long workers have to start listening. */
const START_TIMEOUT_MS = 30_000

export interface RunningCluster {
  url: string
  /** With --http-port: the plain-HTTP listener's URL. */
  httpUrl?: string
  /** Reads the certificate files again and has every worker do so (SIGHUP). */
  reloadTls(): boolean
  /** The primary's own edge (disk tier, prefill, admin), reached by workers over its socket. */
  app: EdgeApp
  workers: number
  close(): Promise<void>
}

export function workerCount(config: Pick<EdgeConfig, 'workers'>): number {
  return config.workers > 0 ? config.workers : availableParallelism()
}

export async function startEdgeCluster(config: Readonly<EdgeConfig>): Promise<RunningCluster> {
  const size = workerCount(config)
  const socketPath = join(tmpdir(), `cdn-edge-${process.pid}-${randomBytes(4).toString('hex')}.sock`)
  // Each worker gets 1/N of the memory budget; the primary keeps none (it serves only the
  // workers' misses, from its in-flight buffers, its disk tier and the page cache).
  const workerConfig: EdgeConfig = { ...config, memorySize: Math.floor(config.memorySize / size), workers: 1 }
  const primaryConfig: Readonly<EdgeConfig> = Object.freeze({
    ...config,
    memorySize: 0,
    // Workers check signatures; what reaches the primary's private socket is a cache key.
    signingKey: [],
    workers: 1,
    // The workers speak TLS to clients; the primary's private socket is plain HTTP.
    tlsCert: [],
    tlsKey: [],
    httpPort: undefined,
    httpRedirect: false,
  })
  // The primary checks the certificates (a bad file fails the start here), watches them, and
  // makes the session ticket keys every worker uses, so a client resumes on any worker.
  const tellWorkers = (m: ToWorker) => {
    for (const w of pool.listening()) w.send(m)
  }
  // A reload the primary accepted is done by every worker (a refused one by none).
  const certs = edgeCertificates(config, false, {
    reloaded: () => tellWorkers({ type: 'tls', reload: true }),
  })
  if (certs) {
    certs.tls.watch(config.tlsReloadInterval)
    certs.tls.rotateTickets(config.tlsTicketRotation, (keys) =>
      tellWorkers({ type: 'tls', ticketKeys: keys.toString('base64') }),
    )
  }

  const rpc = new WorkerRpc()
  let disk: DiskStore | undefined
  let closing = false
  let draining = false
  const slotOf = (worker: ChildProcess) => ({
    worker: pool.listeningSlots().find((s) => s.worker === worker)?.index,
    pid: worker.pid,
  })
  const dealer = new ConnectionDealer(() => pool.ready(), size + 1, {
    stalled: (w) =>
      app.log.warn(
        { ...slotOf(w), deadlineMs: DEAL_DEADLINE_MS },
        'an edge worker did not take a connection in time; dealing to the others until it answers',
      ),
    heard: (w) => app.log.info(slotOf(w), 'an edge worker answers again; dealing to it again'),
  })
  const pool: WorkerPool = new WorkerPool({
    size,
    socketBase: socketPath,
    init: (index) => ({
      type: 'init',
      config: workerConfig,
      socketPath,
      listenPath: `${socketPath}.${index}`,
      worker: index,
      disk: disk ? disk.index.records().map((r) => diskEvent(r, 'add')) : [],
      ...(certs ? { ticketKeys: certs.tls.currentTicketKeys.toString('base64') } : {}),
      ...(draining ? { draining } : {}),
    }),
    report: (slot, m) => onReport(slot, m),
    exited: (slot, code, signal, respawnInMs) => {
      views.exited(slot.worker)
      dealer.redeal(slot.worker)
      rpc.gone(slot.worker)
      if (respawnInMs === undefined) return
      app.log.error({ worker: slot.index, code, signal, respawnInMs }, 'edge worker exited; starting another')
    },
  })
  const askAll = (question: Parameters<WorkerRpc['ask']>[1]) => rpc.askAll(pool.listening(), question)
  const views = new WorkerViews(rpc, () => pool.listening())
  // Workers that did not confirm a purge or delete, by slot number (logged with their pid).
  const confirmAll = async (question: Parameters<WorkerRpc['ask']>[1]): Promise<Confirmed> => {
    const slots = pool.listeningSlots()
    const confirmed = await rpc.confirmAll(slots, question)
    for (const index of confirmed.missing)
      app.log.warn(
        { worker: index, pid: slots.find((s) => s.index === index)?.worker.pid, what: question.what },
        'an edge worker did not confirm',
      )
    return confirmed
  }

  const app = await createEdge(primaryConfig, {
    decorate: (parts) => {
      disk = parts.disk
      parts.disk.index.listener = {
        added: (rec) => pool.queue(diskEvent(rec, 'add')),
        removed: (rec) => pool.queue(diskEvent(rec, 'remove')),
      }
      return {
        store: new HostStore(parts.store, confirmAll, (key, workers) =>
          app.log.warn({ key, workers }, 'a delete was not confirmed by every worker'),
        ),
        // The primary's requests are its workers' misses, counted by the workers (usage).
        countTitle: () => undefined,
        // Workers made Via and X-Forwarded-For for their clients; the primary adds nothing.
        clusterPrimary: true,
        // The clients are the workers'; a worker started during the drain is told in its init,
        // and one that had its init but does not listen yet is asked too (it answers once it does).
        drainClients: async () => {
          draining = true
          await rpc.askAll(pool.following(), { what: 'drain' })
        },
      }
    },
  })
  answerForHost(app, primaryConfig, views, askAll)
  certs?.attachLog(app.log)
  await app.listen({ path: socketPath })
  chmodSync(socketPath, 0o600)

  const onReport = (slot: WorkerSlot, m: WorkerReport): void => {
    dealer.heard(slot.worker)
    if (m.type === 'took') dealer.took(m.id)
    else if (m.type === 'late') dealer.late(m.id)
    else if (m.type === 'answer') rpc.answered(m)
    else if (m.type === 'prefetch') {
      // To every other worker: the one that started a prefetch, or might get its request.
      const msg: ToWorker = {
        type: 'prefetch',
        ...(m.started ? { watch: m.started } : {}),
        ...(m.served ? { settle: m.served } : {}),
      }
      for (const w of pool.listening()) if (w !== slot.worker && w.connected) w.send(msg, noop)
    } else {
      for (const key of m.keys) {
        const rec = disk?.index.get(key)
        if (rec) disk!.index.touch(rec)
      }
      for (const [title, count] of Object.entries(m.titles)) app.edge.prefill.countRequest(title, count)
    }
  }

  async function close(): Promise<void> {
    if (closing) return
    closing = true
    certs?.tls.close()
    dealer.close()
    const exits = pool.close()
    await askAll({ what: 'stop' })
    const kill = setTimeout(() => pool.kill(), ASK_TIMEOUT_MS)
    await Promise.all(exits)
    clearTimeout(kill)
    await app.close()
    rmSync(socketPath, { force: true })
    pool.removeSockets()
  }

  pool.start()
  const port = await startedWithin(pool.started, START_TIMEOUT_MS)
    .then(() => dealer.listen(config.port, config.host))
    .catch(async (err: unknown) => {
      await close()
      throw err
    })
  const httpPort =
    certs && config.httpPort !== undefined
      ? await dealer.listenPlain(config.httpPort, config.host)
      : undefined
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  return {
    url: `${certs ? 'https' : 'http'}://${host}:${port}`,
    ...(httpPort !== undefined ? { httpUrl: `http://${host}:${httpPort}` } : {}),
    reloadTls: () => certs?.tls.reload() ?? false,
    app,
    workers: size,
    close,
  }
}

async function startedWithin(started: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      started,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CdnError('CDN_ERR_CONFIG', `cdn edge: workers did not start within ${ms} ms`)),
          ms,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

function noop(): void {}
