/**
 * The cluster's front door: the primary accepts client connections itself and deals each to
 * the next listening worker with its handle (round-robin), keeping its own copy until the
 * worker says it has the connection (`took`): a worker dying in between gets its connections
 * dealt again to another one. (node:cluster's round-robin keeps no such promise: a connection
 * handed to a worker that dies before taking it is neither re-dealt nor closed, and hangs.)
 *
 * A worker alive but not reading its channel (stopped, its event loop held) would hold its
 * connections as long, and get every Nth new one: a connection it has not taken within
 * DEAL_DEADLINE_MS is dealt to another, and the worker is skipped (`stalled`) until the primary
 * hears from it again (`heard`: any message). The worker leaves a connection dealt more than
 * TAKE_WITHIN_MS before it reads it (`late`), so that no connection is served twice.
 */
import type { ChildProcess } from 'node:child_process'
import { createServer, type Server, type Socket } from 'node:net'
import { DEAL_DEADLINE_MS, hostMonotonic, type ToWorker } from './protocol.js'

interface Dealt {
  socket: Socket
  worker: ChildProcess
  tries: number
  /** From the plain-HTTP listener beside the HTTPS one. */
  plain: boolean
  /** Deals it again when the worker has not taken it by DEAL_DEADLINE_MS. */
  timer: NodeJS.Timeout
}

/** Told when a worker stops taking connections in time, and when it is heard from again. */
export interface DealerEvents {
  stalled(worker: ChildProcess): void
  heard(worker: ChildProcess): void
}

export class ConnectionDealer {
  /** Connections dealt and not yet taken, by id: dealt again if their worker dies first. */
  private readonly dealt = new Map<number, Dealt>()
  /** Workers that let a connection's deadline pass: skipped until heard from. */
  private readonly stalled = new Set<ChildProcess>()
  private nextId = 1
  private turn = 0
  private closed = false
  readonly server: Server
  /** The plain-HTTP port beside HTTPS (--http-port), when listening. */
  plainServer: Server | undefined

  constructor(
    /** Workers that can take a connection now. */
    private readonly ready: () => ChildProcess[],
    /** Deals of one connection before it is given up (destroyed). */
    private readonly maxTries: number,
    private readonly events?: DealerEvents,
  ) {
    this.server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) =>
      this.deal(socket, 0, false),
    )
  }

  /** Listens on the public port; resolves with it. */
  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host)
  }

  /** Listens on the plain-HTTP port beside HTTPS; resolves with it. */
  listenPlain(port: number, host: string): Promise<number> {
    this.plainServer = createServer({ pauseOnConnect: true, noDelay: true }, (socket) =>
      this.deal(socket, 0, true),
    )
    return listenOn(this.plainServer, port, host)
  }

  private deal(socket: Socket, tries: number, plain: boolean): void {
    const listening = this.ready()
    // Stalled workers only when no other is left (a busy host may stall them all for a moment).
    const responsive = listening.filter((w) => !this.stalled.has(w))
    const ready = responsive.length ? responsive : listening
    if (this.closed || ready.length === 0 || tries > this.maxTries) {
      socket.destroy()
      return
    }
    const worker = ready[this.turn++ % ready.length]!
    const id = this.nextId++
    const timer = setTimeout(() => this.expired(id), DEAL_DEADLINE_MS)
    this.dealt.set(id, { socket, worker, tries, plain, timer })
    const at = hostMonotonic()
    const msg: ToWorker = plain ? { type: 'conn', id, at, plain } : { type: 'conn', id, at }
    worker.send(msg, socket, { keepOpen: true }, (err) => {
      if (err && this.dealt.get(id)?.worker === worker) this.again(id)
    })
  }

  /** Takes the connection back from its worker and deals it to another (a new id). */
  private again(id: number): void {
    const conn = this.dealt.get(id)
    if (!conn) return
    clearTimeout(conn.timer)
    this.dealt.delete(id)
    this.deal(conn.socket, conn.tries + 1, conn.plain)
  }

  /**
   * Not taken by its deadline. Looked at again after the channels were read (setImmediate runs
   * after this turn's I/O): a `took` that was waiting there wins. Then the worker is skipped.
   */
  private expired(id: number): void {
    setImmediate(() => {
      const conn = this.dealt.get(id)
      if (!conn) return
      if (!this.stalled.has(conn.worker)) {
        this.stalled.add(conn.worker)
        this.events?.stalled(conn.worker)
      }
      this.again(id)
    })
  }

  /** The worker has its own descriptor now; closing ours leaves the connection open. */
  took(id: number): void {
    const conn = this.dealt.get(id)
    if (!conn) return
    clearTimeout(conn.timer)
    this.dealt.delete(id)
    conn.socket.destroy()
  }

  /** The worker read the connection too late and left it: another takes it (if none has yet). */
  late(id: number): void {
    this.again(id)
  }

  /** A message from the worker: it is dealt connections again. */
  heard(worker: ChildProcess): void {
    if (this.stalled.delete(worker)) this.events?.heard(worker)
  }

  /** A worker died: what it had not taken goes to another. */
  redeal(worker: ChildProcess): void {
    this.stalled.delete(worker)
    for (const [id, conn] of [...this.dealt]) if (conn.worker === worker) this.again(id)
  }

  close(): void {
    this.closed = true
    this.server.close()
    this.plainServer?.close()
    for (const conn of this.dealt.values()) {
      clearTimeout(conn.timer)
      conn.socket.destroy()
    }
    this.dealt.clear()
  }
}

function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host }, () => {
      server.off('error', reject)
      resolve((server.address() as { port: number }).port)
    })
  })
}
