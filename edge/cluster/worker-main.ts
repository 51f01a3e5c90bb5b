/**
 * A cluster worker's process (forked by primary.ts; see protocol.ts). It serves clients on the
 * shared port: memory hits from its own share of the memory tier, disk hits by reading the
 * primary's files through a mirror of its index, and everything else through the primary:
 * misses (single-flight in the worker, then again across workers in the primary), and admin,
 * prefill, /status, /metrics and relayed methods, passed on verbatim.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { systemClock } from '../../src/clock.js'
import { readEnv } from '../../src/config/env.js'
import { buildEdgeApp } from '../app.js'
import type { EdgeApp } from '../app-contract.js'
import { TieredStore } from '../cache/tiered-store.js'
import { ownPath } from '../cache/key.js'
import { edgeCertificates, memoryTier, upstreamClient } from '../main.js'
import { DiskMirror } from './disk-mirror.js'
import {
  type Ask,
  hostMonotonic,
  isMessage,
  TAKE_WITHIN_MS,
  type ToPrimary,
  type ToWorker,
} from './protocol.js'
import { metricsJson } from './metrics.js'
import { Relay } from './relay.js'
import { PASS_THROUGH_MAX_BODY } from '../routes/content.js'
import { sendfile } from '../native/sendfile.js'

/** How often a worker reports the disk keys it read and its requests per title. */
const USAGE_INTERVAL_MS = 1000

function send(m: ToPrimary): void {
  process.send?.(m)
}

/**
 * A test hook (test/edge/cluster.test.ts), read once at start: CDN_EDGE_TEST_PURGE_FAULTS,
 * a list of `SLOT:drop` (never answer a purge, as a hung worker) or `SLOT:fail` (answer it with
 * an error), makes a worker not confirm purges. Unset in production.
 */
function purgeFault(spec: string | undefined, worker: number): 'drop' | 'fail' | undefined {
  for (const item of (spec ?? '').split(',')) {
    const [slot, mode] = item.trim().split(':')
    if (Number(slot) === worker && (mode === 'drop' || mode === 'fail')) return mode
  }
  return undefined
}

async function setup(
  init: Extract<ToWorker, { type: 'init' }>,
): Promise<{ handle: (m: ToWorker) => void; listen: () => Promise<void> }> {
  const { config, socketPath } = init
  const titles = new Map<string, number>()
  const memory = memoryTier(config)
  const disk = new DiskMirror({
    maxFds: config.diskFds,
    syncReadMax: config.diskSyncReadMax,
    ...(config.diskSendfile && sendfile ? { sendfile } : {}),
    loopChunk: config.diskSendfileMaxChunk,
    heuristicMaxMs: config.heuristicMax,
    compress: config.compress,
    clock: systemClock,
  })
  disk.apply(init.disk)
  // The primary watches the certificate files and rotates the ticket keys: told here by messages.
  const certs = edgeCertificates(config, false, {
    ...(init.ticketKeys ? { ticketKeys: Buffer.from(init.ticketKeys, 'base64') } : {}),
  })
  // An edge whose disk tier mirrors the primary's and whose upstream is the primary; its prefill
  // is never started (the primary runs the jobs).
  const app: EdgeApp = await buildEdgeApp({
    // The primary registers the edge in the fleet registry, once; workers never do.
    config: { ...config, registryEtcd: [] },
    store: new TieredStore(memory, disk),
    upstream: upstreamClient(config, socketPath),
    clock: systemClock,
    diskErrorsByCode: () => disk.errorsByCode,
    countTitle: (title) => titles.set(title, (titles.get(title) ?? 0) + 1),
    ...(certs ? { tls: certs.tls } : {}),
  })
  certs?.attachLog(app.log)
  if (init.draining) app.edge.drainConnections()
  // The primary's body bounds: fastify's (its admin routes; prefill's JSON parser has the same
  // 1 MiB) and pass-through's. The relay never sends more than the primary reads.
  const maxBody = Math.max(app.initialConfig.bodyLimit ?? 0, PASS_THROUGH_MAX_BODY)
  const relay = new Relay(socketPath, config.connectTimeout, maxBody)
  // The worker answers GET/HEAD/OPTIONS for content; the primary owns everything else (admin,
  // prefill, /status, /metrics, relayed methods), passed on before any route runs.
  app.addHook('onRequest', (req, reply, done) => {
    const method = req.raw.method
    if (ownPath(req.raw.url ?? '') || (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS')) {
      reply.hijack()
      // A relayed method goes on to the upstream: Via and X-Forwarded-For are made here, where the client is known.
      return relay.relay(
        req.raw,
        reply.raw,
        ownPath(req.raw.url ?? '') ? undefined : app.edge.forward.forRequest(req.raw, 'relay').headers,
      )
    }
    done()
  })
  disk.errorLog.attach(app.log)
  app.addHook('onClose', () => relay.close())
  // A player's next request may land on another worker: the others settle this one's prefetches.
  app.edge.prefetch.peers = {
    started: (key) => send({ type: 'prefetch', started: [key] }),
    served: (key) => send({ type: 'prefetch', served: [key] }),
  }

  const usage = setInterval(() => {
    const keys = disk.takeRead()
    if (!keys.length && !titles.size) return
    send({ type: 'usage', keys, titles: Object.fromEntries(titles) })
    titles.clear()
  }, USAGE_INTERVAL_MS)
  usage.unref()

  const fault = purgeFault(readEnv().CDN_EDGE_TEST_PURGE_FAULTS, init.worker)
  const answer = async (id: number, ask: Ask): Promise<void> => {
    switch (ask.what) {
      case 'purge':
        if (fault === 'drop') return
        if (fault === 'fail') throw new Error('purge refused by CDN_EDGE_TEST_PURGE_FAULTS')
        // As the primary's purge: this worker's fetches of the title store nothing more of it
        // and are not joined again; none is waited for (single-flight.ts purge).
        app.edge.flights.purge(ask.title)
        {
          // The primary counts what the purge removed across the host once (a key may be on its
          // disk and in several workers' memory).
          const keys = [...memory.titleIndex(ask.title).values()].flatMap((set) => [...set])
          await app.edge.store.purgeTitle(ask.title)
          return send({ type: 'answer', id, keys })
        }
      case 'delete':
        // An invalidation (a relayed unsafe request's answer): this worker's fetches of the key
        // store nothing more of it and are not joined again.
        app.edge.flights.forget(ask.key)
        await app.edge.store.delete(ask.key)
        return send({ type: 'answer', id })
      case 'stats':
        return send({
          type: 'answer',
          id,
          stats: {
            clients: app.edge.stats.snapshot(),
            memory: memory.stats().memory,
            demand: app.edge.demand(),
            titles: memory.titles(),
          },
        })
      case 'cache': {
        const titles: Record<string, Record<string, string[]>> = {}
        for (const title of memory.titles())
          titles[title] = Object.fromEntries(
            [...memory.titleIndex(title)].map(([version, keys]) => [version, [...keys]]),
          )
        return send({ type: 'answer', id, cache: { memory: memory.stats().memory, titles } })
      }
      case 'metrics':
        return send({ type: 'answer', id, metrics: await metricsJson(app.edge.metrics.registry) })
      case 'drain':
        app.edge.drainConnections()
        return send({ type: 'answer', id })
      case 'stop':
        clearInterval(usage)
        await app.close()
        send({ type: 'answer', id })
        process.disconnect()
        return
    }
  }
  const handle = (m: ToWorker, conn?: Socket): void => {
    if (m.type === 'conn') {
      // Dealt too long ago (this worker was stopped or busy): the primary deals it elsewhere, or
      // has; two processes serving one connection would each read part of it.
      if (!conn || hostMonotonic() - m.at > TAKE_WITHIN_MS) {
        conn?.destroy()
        return send({ type: 'late', id: m.id })
      }
      // A client connection dealt by the primary: served as if this server had accepted it.
      ;(m.plain ? (app.edge.plain ?? app.server) : app.server).emit('connection', conn)
      send({ type: 'took', id: m.id })
    } else if (m.type === 'disk') disk.apply(m.events)
    else if (m.type === 'prefetch') {
      if (m.watch) app.edge.prefetch.watch(m.watch)
      if (m.settle) app.edge.prefetch.servedElsewhere(m.settle)
    } else if (m.type === 'tls') {
      if (m.ticketKeys) certs?.tls.setTicketKeys(Buffer.from(m.ticketKeys, 'base64'))
      if (m.reload) certs?.tls.reload()
    } else if (m.type === 'ask')
      answer(m.id, m).catch((err: Error) => send({ type: 'answer', id: m.id, error: err.message }))
  }
  // Clients arrive from the primary (conn); the server listens on a private path only so that
  // node's http tracks its connections (timeouts, close) as for any listening server.
  const listen = async (): Promise<void> => {
    await app.listen({ path: init.listenPath })
    if (app.edge.plain) await listenPath(app.edge.plain, `${init.listenPath}.http`)
    send({ type: 'listening' })
  }
  return { handle, listen }
}

function listenPath(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ path }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

// The primary going away (crash or stop) takes its workers with it.
process.on('disconnect', () => process.exit(0))
// A SIGINT/SIGTERM sent to the whole process group (Ctrl-C, systemd's control-group stop) is the
// primary's: it drains (--drain-delay), then closes its workers; one ended here cut its clients.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => undefined)
// Index changes that arrive while the worker is still opening are applied, in order, before it listens.
let pending: ToWorker[] = []
let handle: ((m: ToWorker, conn?: Socket) => void) | undefined
process.on('message', (m: unknown, conn?: Socket) => {
  if (!isMessage<ToWorker>(m)) return
  if (m.type !== 'init') {
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
send({ type: 'hello' })
