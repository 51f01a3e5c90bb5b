/**
 * The raw hit path: fresh memory hits answered straight from the socket's bytes, before node's
 * http builds a request and a response object. A bare node:http server costs about twice the
 * CPU per small response of a net server writing prebuilt bytes (measured: docs/bench.md), and
 * on small objects that per-request work is the whole cost of a hit.
 *
 * Every connection starts here. While its requests are plain GET/HEAD of fresh memory hits
 * (HTTP/1.1, a Host, no body, no conditionals, no range, no Connection other than keep-alive)
 * they are parsed here and answered with the entry's memoised head and body in one writev. The
 * first request that is anything else, or anything this parser is not sure of, hands the
 * connection, with every byte not yet answered, to node's http server for good, which
 * answers it exactly as before (fastify, the synchronous fast hit, disk, misses, errors).
 * Responses stay in request order: what was answered here is queued on the socket before the
 * hand-over.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'

export interface RawHitSource {
  /** The bytes of a fresh memory hit (head, then body unless HEAD), counted; undefined: not one. */
  rawHit(head: boolean, url: string, host: string, suffix: string): Buffer[] | undefined
}

/** Largest request head parsed here (node's limit on the edge is the same, 16 KiB). */
const MAX_HEAD = 16 * 1024
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const GET = 0x47
const HEAD = 0x48
const SUFFIX_HTTP11 = ' HTTP/1.1'
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
/** Request headers that make a request something other than a plain hit. */
const NOT_PLAIN = new Set([
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'content-length',
  'transfer-encoding',
  'expect',
  'upgrade',
])

type Listener = (socket: Socket) => void

/**
 * The start-up self-check: node's own connection listener on a fresh http server, found by its
 * function name (an internal of node's http, the same on Node 20 and 24). The raw path hands
 * connections to it; when node's internals are not as expected, this says why, and the edge
 * serves every request through node's http instead.
 */
export function nodeConnectionListener(server: Server): { listener: Listener } | { problem: string } {
  const own = server.listeners('connection').filter((l) => l.name === 'connectionListener')
  if (own.length !== 1 || own[0]!.length !== 1)
    return { problem: `node http: expected one connectionListener(socket), found ${own.length}` }
  if (typeof server.headersTimeout !== 'number' || typeof server.keepAliveTimeout !== 'number')
    return { problem: 'node http: no numeric headersTimeout/keepAliveTimeout on the server' }
  return { listener: own[0] as Listener }
}

export class RawHits {
  private readonly sockets = new Set<Socket>()
  private readonly httpConnection: Listener
  private closing = false
  /** Raw requests answered and connections handed to node's http, for tests and figures. */
  answered = 0
  handedOver = 0

  /** Takes over `server`'s connections; node's own connection listener gets them on hand-over. */
  constructor(
    private readonly server: Server,
    private readonly source: RawHitSource,
    /** Monotonic ms (the edge's clock), for the partial-request time limit. */
    private readonly monotonic: () => number,
  ) {
    const found = nodeConnectionListener(server)
    if ('problem' in found) throw new Error(`raw hits: ${found.problem}`)
    this.httpConnection = found.listener
    server.removeListener('connection', found.listener)
    server.prependListener('connection', (socket: Socket) => this.accept(socket))
    // Closing the server ends the connections parked here too (node's http only knows its own).
    const close = server.close.bind(server)
    server.close = (cb?: (err?: Error) => void) => {
      this.endAll(false)
      return close(cb)
    }
    const closeIdle = server.closeIdleConnections.bind(server)
    server.closeIdleConnections = () => {
      this.endAll(false)
      closeIdle()
    }
    const closeAll = server.closeAllConnections.bind(server)
    server.closeAllConnections = () => {
      this.endAll(true)
      closeAll()
    }
  }

  private endAll(destroy: boolean): void {
    this.closing = true
    for (const s of this.sockets) {
      if (destroy) s.destroy()
      else s.end()
    }
  }

  private suffix(): string {
    const t = Math.floor(this.server.keepAliveTimeout / 1000)
    return t > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${t}\r\n` : 'connection: keep-alive\r\n'
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket)
    const suffix = this.suffix()
    let pending: Buffer | undefined
    let pendingSince = 0
    let paused = false
    let handed = false

    const onError = () => socket.destroy()
    const onTimeout = () => socket.destroy()
    const onClose = () => this.sockets.delete(socket)
    const onDrain = () => {
      if (!paused) return
      paused = false
      const p = pending
      pending = undefined
      if (p) parse(p)
      if (!paused && !handed) socket.resume()
    }
    const onData = (chunk: Buffer) => {
      if (pending === undefined) return parse(chunk)
      const all = Buffer.concat([pending, chunk])
      pending = undefined
      parse(all)
    }

    const handOver = (rest: Buffer) => {
      this.sockets.delete(socket)
      this.handedOver++
      handed = true
      socket.removeListener('data', onData)
      socket.removeListener('drain', onDrain)
      socket.removeListener('timeout', onTimeout)
      socket.removeListener('close', onClose)
      socket.setTimeout(0)
      this.httpConnection.call(this.server, socket)
      socket.removeListener('error', onError)
      if (rest.length) socket.emit('data', rest)
      socket.resume()
    }

    const parse = (buf: Buffer) => {
      let off = 0
      socket.cork()
      try {
        while (off < buf.length) {
          const end = buf.indexOf(CRLFCRLF, off)
          if (end === -1 || end - off > MAX_HEAD) {
            if (end === -1 && buf.length - off <= MAX_HEAD && !this.closing) {
              // Part of a request: wait for the rest (bounded like node's headersTimeout).
              const now = this.monotonic()
              if (pendingSince === 0) pendingSince = now
              else if (now - pendingSince > this.server.headersTimeout) return void socket.destroy()
              pending = buf.subarray(off)
              return
            }
            socket.uncork()
            return handOver(buf.subarray(off))
          }
          const out = this.closing ? undefined : this.answer(buf, off, end, suffix)
          if (out === undefined) {
            socket.uncork()
            return handOver(buf.subarray(off))
          }
          pendingSince = 0
          off = end + 4
          this.answered++
          let ok = socket.write(out[0]!)
          if (out.length > 1) ok = socket.write(out[1]!)
          if (!ok && off < buf.length) {
            // The client is not reading: stop parsing until it has taken what it asked for.
            pending = buf.subarray(off)
            paused = true
            socket.pause()
            return
          }
          if (!ok) {
            paused = true
            socket.pause()
          }
        }
      } finally {
        // Uncorking an uncorked socket does nothing; the hand-over paths uncork first.
        if (socket.writableCorked) socket.uncork()
      }
    }

    socket.on('data', onData)
    socket.on('drain', onDrain)
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.on('timeout', onTimeout)
    socket.setTimeout(this.server.keepAliveTimeout)
  }

  /** Parses one request head (bytes start..end, end at its CRLFCRLF); the hit's bytes or undefined. */
  private answer(buf: Buffer, start: number, end: number, suffix: string): Buffer[] | undefined {
    const first = buf[start]
    let isHead: boolean
    let at: number
    if (first === GET && buf[start + 1] === 0x45 && buf[start + 2] === 0x54 && buf[start + 3] === 0x20) {
      isHead = false
      at = start + 4
    } else if (
      first === HEAD &&
      buf[start + 1] === 0x45 &&
      buf[start + 2] === 0x41 &&
      buf[start + 3] === 0x44 &&
      buf[start + 4] === 0x20
    ) {
      isHead = true
      at = start + 5
    } else return undefined
    let lineEnd = buf.indexOf(13, at)
    if (lineEnd === -1 || lineEnd > end || buf[lineEnd + 1] !== 10) return undefined
    const line = buf.toString('latin1', at, lineEnd)
    if (!line.endsWith(SUFFIX_HTTP11)) return undefined
    const url = line.slice(0, line.length - SUFFIX_HTTP11.length)
    if (url.charCodeAt(0) !== 47) return undefined
    for (let i = 0; i < url.length; i++) {
      const c = url.charCodeAt(i)
      if (c <= 0x20 || c >= 0x7f) return undefined
    }
    let host: string | undefined
    let pos = lineEnd + 2
    while (pos < end) {
      lineEnd = buf.indexOf(13, pos)
      if (lineEnd === -1 || lineEnd > end || buf[lineEnd + 1] !== 10) return undefined
      const colon = buf.indexOf(0x3a, pos)
      if (colon === -1 || colon > lineEnd || colon === pos) return undefined
      const name = buf.toString('latin1', pos, colon).toLowerCase()
      if (!TOKEN.test(name) || NOT_PLAIN.has(name)) return undefined
      const value = buf.toString('latin1', colon + 1, lineEnd).trim()
      if (BAD_VALUE.test(value)) return undefined
      if (name === 'host') {
        if (host !== undefined) return undefined
        host = value
      } else if (name === 'connection' && value.toLowerCase() !== 'keep-alive') return undefined
      pos = lineEnd + 2
    }
    if (host === undefined) return undefined
    return this.source.rawHit(isHead, url, host, suffix)
  }
}
