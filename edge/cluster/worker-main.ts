/**
 * A cluster worker's process (forked by primary.ts; see protocol.ts). It serves clients on the
 * shared port: memory hits from its own share of the memory tier, disk hits by reading the
 * primary's files through a mirror of its index, and everything else through the primary:
 * misses (single-flight in the worker, then again across workers in the primary), and admin,
 * prefill, /status, /metrics and relayed methods, passed on verbatim.
 */
import type { Socket } from 'node:net'
import type { EdgeApp } from '../app.js'
import type { DiskStore } from '../cache/disk-store.js'
import type { MemoryStore } from '../cache/memory-store.js'
import { createEdge } from '../main.js'
import { type Ask, isMessage, type ToPrimary, type ToWorker } from './protocol.js'
import { metricsJson } from './metrics.js'
import { Relay } from './relay.js'

/** How often a worker reports the disk keys it read and its requests per title. */
const USAGE_INTERVAL_MS = 1000

function send(m: ToPrimary): void {
  process.send?.(m)
}

async function setup(
  init: Extract<ToWorker, { t: 'init' }>,
): Promise<{ handle: (m: ToWorker) => void; listen: () => Promise<void> }> {
  const { config, socketPath } = init
  const relay = new Relay(socketPath, config.connectTimeout)
  const titles = new Map<string, number>()
  let disk!: DiskStore
  let memory!: MemoryStore
  const app: EdgeApp = await createEdge(config, {
    follower: { socketPath },
    decorate: (parts) => {
      disk = parts.disk
      memory = parts.store.memory
      disk.follow(init.disk)
      return {
        worker: { relay: (req, res) => relay.relay(req, res) },
        countTitle: (title) => titles.set(title, (titles.get(title) ?? 0) + 1),
      }
    },
  })
  app.addHook('onClose', () => relay.close())

  const usage = setInterval(() => {
    const keys = disk.takeTouched()
    if (!keys.length && !titles.size) return
    send({ t: 'usage', keys, titles: Object.fromEntries(titles) })
    titles.clear()
  }, USAGE_INTERVAL_MS)
  usage.unref()

  const answer = async (id: number, ask: Ask): Promise<void> => {
    switch (ask.what) {
      case 'purge':
        await app.edge.store.purgeTitle(ask.title)
        return send({ t: 'answer', id })
      case 'delete':
        await app.edge.store.delete(ask.key)
        return send({ t: 'answer', id })
      case 'stats':
        return send({
          t: 'answer',
          id,
          stats: { clients: app.edge.stats.snapshot(), memory: memory.stats().memory },
        })
      case 'metrics':
        return send({ t: 'answer', id, metrics: await metricsJson(app.edge.metrics.registry) })
      case 'stop':
        clearInterval(usage)
        await app.close()
        send({ t: 'answer', id })
        process.disconnect()
        return
    }
  }
  const handle = (m: ToWorker, conn?: Socket): void => {
    if (m.t === 'conn') {
      // A client connection dealt by the primary: served as if this server had accepted it.
      if (conn) app.server.emit('connection', conn)
      send({ t: 'took', id: m.id })
    } else if (m.t === 'disk') disk.follow(m.events)
    else if (m.t === 'ask')
      answer(m.id, m).catch((err: Error) => send({ t: 'answer', id: m.id, error: err.message }))
  }
  // Clients arrive from the primary (conn); the server listens on a private path only so that
  // node's http tracks its connections (timeouts, close) as for any listening server.
  const listen = async (): Promise<void> => {
    await app.listen({ path: init.listenPath })
    send({ t: 'listening' })
  }
  return { handle, listen }
}

// The primary going away (crash or stop) takes its workers with it.
process.on('disconnect', () => process.exit(0))
// Index changes that arrive while the worker is still opening are applied, in order, before it listens.
let pending: ToWorker[] = []
let handle: ((m: ToWorker, conn?: Socket) => void) | undefined
process.on('message', (m: unknown, conn?: Socket) => {
  if (!isMessage<ToWorker>(m)) return
  if (m.t !== 'init') {
    if (handle) handle(m, conn)
    else if (conn) conn.destroy()
    else pending.push(m)
    return
  }
  setup(m)
    .then(async (w) => {
      for (const q of pending) w.handle(q)
      pending = []
      handle = w.handle
      await w.listen()
    })
    .catch((err: Error) => {
      process.stderr.write(`cdn edge worker ${m.worker}: ${err.stack ?? err.message}\n`)
      process.exit(1)
    })
})
send({ t: 'hello' })
