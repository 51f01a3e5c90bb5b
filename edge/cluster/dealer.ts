/**
 * The cluster's front door: the primary accepts client connections itself and deals each to
 * the next listening worker with its handle (round-robin), keeping its own copy until the
 * worker says it has the connection (`took`): a worker dying in between gets its connections
 * dealt again to another one. (node:cluster's round-robin keeps no such promise: a connection
 * handed to a worker that dies before taking it is neither re-dealt nor closed, and hangs.)
 */
import type { ChildProcess } from 'node:child_process'
import { createServer, type Server, type Socket } from 'node:net'
import type { ToWorker } from './protocol.js'

interface Dealt {
  socket: Socket
  worker: ChildProcess
  tries: number
  /** From the plain-HTTP listener beside the HTTPS one. */
  plain: boolean
}

export class ConnectionDealer {
  /** Connections dealt and not yet taken, by id: dealt again if their worker dies first. */
  private readonly dealt = new Map<number, Dealt>()
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
    const ready = this.ready()
    if (this.closed || ready.length === 0 || tries > this.maxTries) {
      socket.destroy()
      return
    }
    const worker = ready[this.turn++ % ready.length]!
    const id = this.nextId++
    this.dealt.set(id, { socket, worker, tries, plain })
    const msg: ToWorker = plain ? { type: 'conn', id, plain } : { type: 'conn', id }
    worker.send(msg, socket, { keepOpen: true }, (err) => {
      if (err && this.dealt.get(id)?.worker === worker) {
        this.dealt.delete(id)
        this.deal(socket, tries + 1, plain)
      }
    })
  }

  /** The worker has its own descriptor now; closing ours leaves the connection open. */
  took(id: number): void {
    const conn = this.dealt.get(id)
    if (!conn) return
    this.dealt.delete(id)
    conn.socket.destroy()
  }

  /** A worker died: what it had not taken goes to another. */
  redeal(worker: ChildProcess): void {
    for (const [id, conn] of this.dealt)
      if (conn.worker === worker) {
        this.dealt.delete(id)
        this.deal(conn.socket, conn.tries + 1, conn.plain)
      }
  }

  close(): void {
    this.closed = true
    this.server.close()
    this.plainServer?.close()
    for (const conn of this.dealt.values()) conn.socket.destroy()
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
