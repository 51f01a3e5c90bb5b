/**
 * The delaying TCP relay of the network-namespace mode (netns.ts). The kernels this runs on
 * have no netem, so the latency between sites is added in user space: every node reaches every
 * other node through this relay, which runs in the hub namespace and listens on one address per
 * destination node. Per connection it looks up the source's site (by the client's address) and
 * the destination's, and holds each chunk, in both directions, for the one-way delay between
 * the two sites (plus jitter), preserving order; the end of a stream is delayed the same way.
 * It forwards from the hub's own address in the source's site, so the destination (steering
 * locating a client by address) sees where the connection came from.
 *
 * What it does not model: the TCP handshake (the relay accepts at once; only data is delayed)
 * and loss. Bandwidth is capped by tbf on each edge's own link (netns.ts), not here.
 *
 * Control, one JSON object a line on stdin: {"op":"block","from":ADDR,"to":ROUTE_ID} resets
 * every connection from ADDR to that route and refuses new ones (a partition);
 * {"op":"unblock",...} lifts it. Each line is answered `ok N` on stdout (N counts commands), so
 * the caller knows it took effect. `ready` is printed once every route listens.
 */
import { readFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export interface RelayRoute {
  /** The destination node's id. */
  readonly id: string
  readonly site: string
  /** Where the relay listens for this destination. */
  readonly listenHost: string
  readonly listenPort: number
  /** The destination itself. */
  readonly targetHost: string
  readonly targetPort: number
}

export interface RelayConfig {
  readonly routes: readonly RelayRoute[]
  /** Every source address that may connect, with its site. */
  readonly sources: Readonly<Record<string, string>>
  /** Per site, the hub's own address in that site's block: outgoing connections bind it. */
  readonly siteAddress: Readonly<Record<string, string>>
  /** One-way delay in ms between two sites, keyed `a|b` (both orders present). */
  readonly delayMs: Readonly<Record<string, number>>
  /** Each chunk waits up to this much more, uniformly (never reordering). */
  readonly jitterMs: number
  /** Bytes held per direction of a connection before its reader is paused. */
  readonly maxQueuedBytes: number
}

/** One direction of a connection: chunks released at their due time, in order. */
class DelayedPipe {
  private readonly queue: { at: number; chunk: Buffer | null }[] = []
  private queued = 0
  private last = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delay: () => number,
    private readonly maxQueued: number,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk))
    // The end goes through the queue too, after the data before it; a source closed without
    // ending (destroyed) ends the other side the same way.
    from.once('end', () => this.end())
    from.once('close', () => this.end())
    to.on('drain', () => this.flush())
  }

  private ended = false
  private end(): void {
    if (this.ended) return
    this.ended = true
    this.push(null)
  }

  private push(chunk: Buffer | null): void {
    // Never before an earlier chunk: jitter delays, it does not reorder.
    const at = Math.max(performance.now() + this.delay(), this.last)
    this.last = at
    this.queue.push({ at, chunk })
    if (chunk) {
      this.queued += chunk.length
      if (this.queued > this.maxQueued) this.from.pause()
    }
    this.schedule()
  }

  private flush(): void {
    this.timer = undefined
    const now = performance.now()
    while (this.queue.length && this.queue[0]!.at <= now) {
      if (this.to.writableNeedDrain || this.to.destroyed) return
      const { chunk } = this.queue.shift()!
      if (chunk === null) {
        this.to.end()
        return
      }
      this.queued -= chunk.length
      this.to.write(chunk)
    }
    if (this.queued <= this.maxQueued / 2 && this.from.isPaused()) this.from.resume()
    this.schedule()
  }

  private schedule(): void {
    if (this.timer || !this.queue.length) return
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.queue[0]!.at - performance.now()))
  }

  stop(): void {
    clearTimeout(this.timer)
    this.queue.length = 0
  }
}

/** The address as the config names it (a v4-mapped v6 address as plain v4). */
function plain(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:/, '')
}

export class DelayRelay {
  private readonly servers: Server[] = []
  private readonly blocked = new Set<string>()
  /** Open connections by `source>route`, so a block resets them. */
  private readonly open = new Map<string, Set<Socket>>()
  /** Connections relayed so far, by route id. */
  readonly accepted = new Map<string, number>()

  constructor(private readonly config: RelayConfig) {}

  async listen(): Promise<void> {
    for (const route of this.config.routes) {
      // Half-open both ways: a client's end is relayed (delayed) while the answer still flows.
      const server = createServer({ allowHalfOpen: true }, (socket) => this.relay(route, socket))
      this.servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: route.listenHost, port: route.listenPort }, () => resolve())
      })
    }
  }

  /** The port a route listens on (for routes given port 0). */
  port(id: string): number {
    const i = this.config.routes.findIndex((r) => r.id === id)
    const addr = this.servers[i]?.address()
    return typeof addr === 'object' && addr ? addr.port : 0
  }

  block(from: string, to: string): void {
    const key = `${from}>${to}`
    this.blocked.add(key)
    for (const s of this.open.get(key) ?? []) s.destroy()
  }

  unblock(from: string, to: string): void {
    this.blocked.delete(`${from}>${to}`)
  }

  private relay(route: RelayRoute, client: Socket): void {
    const source = plain(client.remoteAddress)
    const site = this.config.sources[source]
    const key = `${source}>${route.id}`
    if (site === undefined || this.blocked.has(key)) {
      client.destroy()
      return
    }
    this.accepted.set(route.id, (this.accepted.get(route.id) ?? 0) + 1)
    const oneWay = this.config.delayMs[`${site}|${route.site}`] ?? 0
    const { jitterMs, maxQueuedBytes } = this.config
    const delay = () => oneWay + Math.random() * jitterMs
    const local = this.config.siteAddress[site]
    const upstream = connect({
      allowHalfOpen: true,
      host: route.targetHost,
      port: route.targetPort,
      ...(local ? { localAddress: local } : {}),
    })
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const pipes = [
      new DelayedPipe(client, upstream, delay, maxQueuedBytes),
      new DelayedPipe(upstream, client, delay, maxQueuedBytes),
    ]
    const set = this.open.get(key) ?? new Set<Socket>()
    this.open.set(key, set)
    set.add(client)
    const reset = () => {
      for (const p of pipes) p.stop()
      client.destroy()
      upstream.destroy()
    }
    let closed = 0
    const gone = () => {
      if (++closed < 2) return
      for (const p of pipes) p.stop()
      set.delete(client)
      if (!set.size) this.open.delete(key)
    }
    // An error on either side (a reset, a refused or cut link) resets both at once; a clean
    // end is relayed in order, after the data before it.
    client.once('error', reset).once('close', gone)
    upstream.once('error', reset).once('close', gone)
  }

  async close(): Promise<void> {
    for (const set of this.open.values()) for (const s of set) s.destroy()
    await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

/** `node delay-relay.js CONFIG.json`: what netns.ts runs in the hub namespace. */
async function main(path: string): Promise<void> {
  const relay = new DelayRelay(JSON.parse(readFileSync(path, 'utf8')) as RelayConfig)
  await relay.listen()
  // The lab gone (its end of the pipe closed): nothing left to answer to.
  process.stdout.once('error', () => process.exit(0))
  process.stdout.write('ready\n')
  let n = 0
  createInterface({ input: process.stdin }).on('line', (line) => {
    const cmd = JSON.parse(line) as { op: 'block' | 'unblock'; from: string; to: string }
    if (cmd.op === 'block') relay.block(cmd.from, cmd.to)
    else relay.unblock(cmd.from, cmd.to)
    process.stdout.write(`ok ${++n}\n`)
  })
  // The lab closes stdin (or dies): stop.
  process.stdin.once('end', () => void relay.close().then(() => process.exit(0)))
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv[2]!).catch((err: unknown) => {
    process.stderr.write(`delay-relay: ${(err as Error).message}\n`)
    process.exit(1)
  })
}
