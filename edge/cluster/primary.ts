/**
 * `cdn edge --workers N`: one edge on one port served by N worker processes (node:cluster),
 * with one owner for everything that must be one per host. Why not N independent edges on a
 * shared socket: each would keep its own disk index (N copies of every object, the disk bound
 * broken, one worker's eviction unlinking another's files), a stampede would make N upstream
 * fetches, and a purge would reach one process in N.
 *
 * The primary runs a full edge (disk tier, upstream, single-flight, prefill, admin) on a
 * private unix socket and mirrors its disk index to the workers. Each worker holds 1/N of
 * the memory budget, reads disk hits straight from the primary's files, and sends its misses
 * to the primary, where misses from every worker for one object become one upstream fetch.
 * See protocol.ts for the messages and worker-main.ts for the worker.
 *
 * The primary accepts client connections itself and deals each to the next worker with its
 * handle (round-robin), keeping its own copy until the worker says it has the connection: a
 * worker dying in between gets its connections dealt again to another one. (node:cluster's
 * round-robin keeps no such promise: a connection handed to a worker that dies before taking
 * it is neither re-dealt nor closed, and hangs.)
 */
import { type ChildProcess, fork as forkProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { systemClock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import type { EdgeApp } from '../app.js'
import { DiskStore, type DiskEvent } from '../cache/disk-store.js'
import type { TierStats } from '../cache/store.js'
import type { EdgeConfig } from '../config.js'
import { createEdge } from '../main.js'
import type { HostSnapshot } from '../routes/ops.js'
import { sumSnapshots } from '../stats.js'
import { HostStore } from './host-store.js'
import { hostMetrics } from './metrics.js'
import { type Ask, isMessage, type ToPrimary, type ToWorker, type WorkerStats } from './protocol.js'

/** How long the primary waits for a worker's answer (purge, stats, metrics, stop). */
const ASK_TIMEOUT_MS = 5_000
/** How long workers have to start listening. */
const START_TIMEOUT_MS = 30_000
/** Delay before a worker that died is replaced; doubled (up to the max) while replacements die young. */
const RESPAWN_DELAY_MS = 500
const RESPAWN_MAX_DELAY_MS = 30_000
/** A worker that lived this long resets the delay. */
const RESPAWN_HEALTHY_MS = 10_000

export interface RunningCluster {
  url: string
  /** The primary's own edge (disk tier, prefill, admin), reached by workers over its socket. */
  app: EdgeApp
  workers: number
  close(): Promise<void>
}

interface Slot {
  index: number
  worker: ChildProcess
  /** Sent its init: index changes go to it from then on. */
  following: boolean
  listening: boolean
}

export function workerCount(config: Pick<EdgeConfig, 'workers'>): number {
  return config.workers > 0 ? config.workers : availableParallelism()
}

export async function startEdgeCluster(config: Readonly<EdgeConfig>): Promise<RunningCluster> {
  const n = workerCount(config)
  const socketPath = join(tmpdir(), `cdn-edge-${process.pid}-${randomBytes(4).toString('hex')}.sock`)
  // Each worker gets 1/N of the memory budget; the primary keeps none (it serves only the
  // workers' misses, from its in-flight buffers, its disk tier and the page cache).
  const workerConfig: EdgeConfig = { ...config, memorySize: Math.floor(config.memorySize / n), workers: 1 }
  const primaryConfig: Readonly<EdgeConfig> = Object.freeze({
    ...config,
    memorySize: 0,
    // Workers check signatures; what reaches the primary's private socket is a cache key.
    signingKey: [],
    workers: 1,
  })

  const slots = new Map<number, Slot>()
  let closing = false
  let nextId = 1
  const asks = new Map<number, (m: Extract<ToPrimary, { t: 'answer' }> | undefined) => void>()

  const ask = (slot: Slot, a: Ask): Promise<Extract<ToPrimary, { t: 'answer' }> | undefined> =>
    new Promise((resolve) => {
      const id = nextId++
      const timer = setTimeout(() => {
        asks.delete(id)
        resolve(undefined)
      }, ASK_TIMEOUT_MS)
      asks.set(id, (m) => {
        clearTimeout(timer)
        asks.delete(id)
        resolve(m)
      })
      const msg: ToWorker = { t: 'ask', id, ...a }
      slot.worker.send(msg, (err) => {
        if (err) asks.get(id)?.(undefined)
      })
    })
  const askAll = (a: Ask) => Promise.all([...slots.values()].filter((s) => s.listening).map((s) => ask(s, a)))

  // Disk index changes, batched per tick, to every worker that has its init.
  let events: DiskEvent[] = []
  const flush = () => {
    const msg: ToWorker = { t: 'disk', events }
    events = []
    for (const s of slots.values()) if (s.following && s.worker.connected) s.worker.send(msg, noop)
  }
  const queue = (ev: DiskEvent) => {
    if (events.length === 0) setImmediate(flush)
    events.push(ev)
  }

  let disk: DiskStore | undefined
  const app = await createEdge(primaryConfig, {
    decorate: (parts) => {
      disk = parts.disk
      parts.disk.index.listener = {
        added: (rec) => queue(DiskStore.eventOf(rec, 'add')),
        removed: (rec) => queue(DiskStore.eventOf(rec, 'remove')),
      }
      return {
        store: new HostStore(parts.store, async (a) => {
          await askAll(a)
        }),
        countTitle: () => undefined,
        host: {
          host: async (): Promise<HostSnapshot> => {
            const answers = (await askAll({ what: 'stats' })).flatMap((m) => (m?.stats ? [m.stats] : []))
            return {
              workers: answers.length,
              clients: sumSnapshots(answers.map((s) => s.clients)),
              memory: sumTiers(answers),
            }
          },
          renderMetrics: async () => {
            const answers = await askAll({ what: 'metrics' })
            return hostMetrics(
              app.edge.metrics.registry,
              answers.flatMap((m) => (m?.metrics ? [m.metrics] : [])),
            )
          },
        },
      }
    },
  })
  await app.listen({ path: socketPath })
  chmodSync(socketPath, 0o600)

  let resolveStarted!: () => void
  const started = new Promise<void>((resolve) => {
    resolveStarted = resolve
  })
  let listening = 0

  // Connections dealt and not yet taken, by id: dealt again if their worker dies first.
  const dealt = new Map<number, { socket: Socket; slot: Slot; tries: number }>()
  let nextConn = 1
  let turn = 0
  const deal = (socket: Socket, tries = 0): void => {
    const ready = [...slots.values()].filter((s) => s.listening && s.worker.connected)
    if (closing || ready.length === 0 || tries > n + 1) {
      socket.destroy()
      return
    }
    const slot = ready[turn++ % ready.length]!
    const id = nextConn++
    dealt.set(id, { socket, slot, tries })
    const msg: ToWorker = { t: 'conn', id }
    slot.worker.send(msg, socket, { keepOpen: true }, (err) => {
      if (err && dealt.get(id)?.slot === slot) {
        dealt.delete(id)
        deal(socket, tries + 1)
      }
    })
  }
  const redeal = (slot: Slot): void => {
    for (const [id, c] of dealt)
      if (c.slot === slot) {
        dealt.delete(id)
        deal(c.socket, c.tries + 1)
      }
  }
  const front = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => deal(socket))

  const onMessage = (slot: Slot, m: unknown) => {
    if (!isMessage<ToPrimary>(m)) return
    switch (m.t) {
      case 'hello': {
        const init: ToWorker = {
          t: 'init',
          config: workerConfig,
          socketPath,
          listenPath: `${socketPath}.${slot.index}`,
          worker: slot.index,
          disk: disk ? disk.index.records().map((r) => DiskStore.eventOf(r, 'add')) : [],
        }
        slot.worker.send(init, noop)
        slot.following = true
        return
      }
      case 'listening':
        slot.listening = true
        if (++listening === n) resolveStarted()
        return
      case 'took': {
        const c = dealt.get(m.id)
        if (!c) return
        dealt.delete(m.id)
        // The worker has its own descriptor now; closing ours leaves the connection open.
        c.socket.destroy()
        return
      }
      case 'usage':
        disk?.touchKeys(m.keys)
        for (const [title, count] of Object.entries(m.titles)) app.edge.prefill.countRequest(title, count)
        return
      case 'answer':
        asks.get(m.id)?.(m)
        return
    }
  }

  const workerMain = fileURLToPath(new URL('./worker-main.js', import.meta.url))
  const respawnDelay = new Map<number, number>()
  const fork = (index: number) => {
    // A worker killed earlier leaves its private socket file behind.
    rmSync(`${socketPath}.${index}`, { force: true })
    const worker = forkProcess(workerMain, [], { serialization: 'json' })
    const born = systemClock.monotonic()
    const slot: Slot = { index, worker, following: false, listening: false }
    slots.set(index, slot)
    worker.on('message', (m) => onMessage(slot, m))
    worker.on('exit', (code, signal) => {
      if (slots.get(index) === slot) slots.delete(index)
      redeal(slot)
      if (closing) return
      const young = systemClock.monotonic() - born < RESPAWN_HEALTHY_MS
      const delay = young
        ? Math.min(RESPAWN_MAX_DELAY_MS, (respawnDelay.get(index) ?? RESPAWN_DELAY_MS / 2) * 2)
        : RESPAWN_DELAY_MS
      respawnDelay.set(index, young ? delay : RESPAWN_DELAY_MS / 2)
      app.log.error(
        { worker: index, code, signal, respawnInMs: delay },
        'edge worker exited; starting another',
      )
      setTimeout(() => {
        if (!closing) fork(index)
      }, delay).unref()
    })
  }
  for (let i = 0; i < n; i++) fork(i)

  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    started,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CdnError('CDN_ERR_CONFIG', `cdn edge: workers did not start within ${START_TIMEOUT_MS} ms`),
          ),
        START_TIMEOUT_MS,
      )
    }),
  ]).catch(async (err) => {
    await close()
    throw err
  })
  clearTimeout(timer)
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject)
    front.listen({ port: config.port, host: config.host }, () => {
      front.off('error', reject)
      resolve()
    })
  }).catch(async (err) => {
    await close()
    throw err
  })
  const port = (front.address() as { port: number }).port

  async function close(): Promise<void> {
    if (closing) return
    closing = true
    front.close()
    for (const c of dealt.values()) c.socket.destroy()
    dealt.clear()
    const exits = [...slots.values()].map(
      (s) =>
        new Promise<void>((resolve) =>
          s.worker.exitCode !== null || s.worker.signalCode !== null
            ? resolve()
            : s.worker.once('exit', () => resolve()),
        ),
    )
    await askAll({ what: 'stop' })
    const kill = setTimeout(() => {
      for (const s of slots.values()) s.worker.kill('SIGKILL')
    }, ASK_TIMEOUT_MS)
    await Promise.all(exits)
    clearTimeout(kill)
    await app.close()
    rmSync(socketPath, { force: true })
    for (let i = 0; i < n; i++) rmSync(`${socketPath}.${i}`, { force: true })
  }

  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  return { url: `http://${host}:${port}`, app, workers: n, close }
}

function noop(): void {}

function sumTiers(answers: readonly WorkerStats[]): TierStats {
  const out: TierStats = { bytes: 0, capacityBytes: 0, objects: 0, evictions: 0 }
  for (const a of answers) {
    out.bytes += a.memory?.bytes ?? 0
    out.capacityBytes += a.memory?.capacityBytes ?? 0
    out.objects += a.memory?.objects ?? 0
    out.evictions += a.memory?.evictions ?? 0
  }
  return out
}
