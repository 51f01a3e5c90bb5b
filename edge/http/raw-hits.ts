/**
 * The raw hit path: fresh memory hits answered straight from the socket's bytes, before node's
 * http builds a request and a response object. A bare node:http server costs about twice the
 * CPU per small response of a net server writing prebuilt bytes (measured: docs/bench.md), and
 * on small objects that per-request work is the whole cost of a hit.
 *
 * Every connection starts here. While its requests are plain GET/HEAD of fresh memory hits
 * (HTTP/1.1, a Host, no body, no conditionals, no range, no Cache-Control or Pragma, no Connection other than keep-alive)
 * they are parsed here and answered with the entry's memoised head and body in one writev (over
 * TLS, a large body in a write of its own: TLS_SOLO_BODY). The
 * first request that is anything else, or anything this parser is not sure of, hands the
 * connection, with every byte not yet answered, to node's http server for good, which
 * answers it exactly as before (fastify, the synchronous fast hit, disk, misses, errors).
 * Responses stay in request order: what was answered here is queued on the socket before the
 * hand-over.
 *
 * It never waits on bytes it is not sure of: a partial head is kept only while it is the start
 * of a request this parser would answer (`plainStart`); a bare LF, a lone CR, a framing header
 * or any other surprise hands over at once, so node answers it (400) at once. A partial head
 * waits at most the server's headers timeout (then the server's clientError answer, 408), and
 * a client that half-closes mid-head is handed over with its bytes, as node would see them.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { CdnError } from '../../src/errors.js'
import { rawErrorResponse } from '../../src/http/one-answer.js'

export interface RawHitSource {
  /**
   * The bytes of a fresh memory hit (head, then body unless HEAD), counted; undefined: not one.
   * `acceptEncoding`: the request's, when it sent one (an encoded playlist may be the answer).
   */
  rawHit(
    head: boolean,
    url: string,
    host: string,
    suffix: string,
    acceptEncoding?: string,
  ): Buffer[] | undefined
}

/** Largest request head parsed here (node's limit on the edge is the same, 16 KiB). */
const MAX_HEAD = 16 * 1024
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const GET = 0x47
const HEAD = 0x48
const SUFFIX_HTTP11 = ' HTTP/1.1'
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
const CR = 13
/**
 * Over TLS, bodies from this size on leave in a write of their own. node's TLS stream copies a
 * gathered write (head + body) into one new buffer before encrypting it; a single buffer is
 * encrypted where it lies. Below a TLS record (16 KiB) the copy is cheaper than a second record.
 */
export const TLS_SOLO_BODY = 16 * 1024
const LF = 10
const SP = 0x20
const HTAB = 9
const COLON = 0x3a
const SLASH = 0x2f
/** Bytes of a header name (RFC 9110 tchar). */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1
/** Bytes of a header value (field-vchar, SP, HTAB, obs-text). */
const VCHAR = new Uint8Array(256)
for (let c = 0; c < 256; c++) VCHAR[c] = c === HTAB || (c >= SP && c !== 0x7f) ? 1 : 0
const VERSION_CRLF = ' HTTP/1.1\r\n'

/** node's error code for a request that took too long (its clientError handler answers 408). */
const REQUEST_TIMEOUT = 'ERR_HTTP_REQUEST_TIMEOUT'
const RESPONSE_408 = rawErrorResponse(
  new CdnError('CDN_ERR_REQUEST_TIMEOUT', 'the request took too long to arrive'),
)

/** Compares buf[at..] with `text` as far as the bytes go: -1 differs, else the index after the match. */
function prefixOf(buf: Buffer, at: number, limit: number, text: string): number {
  for (let k = 0; k < text.length; k++, at++) {
    if (at === limit) return at
    if (buf[at] !== text.charCodeAt(k)) return -1
  }
  return at
}

/**
 * Whether bytes start..limit, a head without its CRLFCRLF yet, can still become a request this
 * parser answers: only then is waiting for the rest what node would do too. Anything else (bare
 * LF, lone CR, another method or version, a byte node refuses, a framing or conditional header)
 * is node's to answer, now.
 */
export function plainStart(buf: Buffer, start: number, limit: number): boolean {
  let i = prefixOf(buf, start, limit, buf[start] === HEAD ? 'HEAD ' : 'GET ')
  if (i === -1 || i === limit) return i !== -1
  if (buf[i] !== SLASH) return false
  for (; i < limit && buf[i] !== SP; i++) if (buf[i]! <= SP || buf[i]! >= 0x7f) return false
  i = prefixOf(buf, i, limit, VERSION_CRLF)
  if (i === -1) return false
  while (i < limit) {
    // A CR opening a line ends the head: its LF would have made the CRLFCRLF looked for.
    if (buf[i] === CR) return i + 1 === limit
    const name = i
    for (; i < limit && buf[i] !== COLON; i++) if (TCHAR[buf[i]!] === 0) return false
    if (i === limit) return true
    if (i === name || NOT_PLAIN.has(buf.toString('latin1', name, i).toLowerCase())) return false
    for (i++; i < limit && buf[i] !== CR; i++) if (VCHAR[buf[i]!] === 0) return false
    if (i + 1 >= limit) return true
    if (buf[i + 1] !== LF) return false
    i += 2
  }
  return true
}
/**
 * Request headers that make a request something other than a plain hit. A client's own
 * Cache-Control or Pragma goes to node's http, whose fast hit reads it (request-directives.ts).
 */
const NOT_PLAIN = new Set([
  'cache-control',
  'pragma',
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
 * Where a server's connections arrive: 'connection' on node's http server, 'secureConnection'
 * (after the handshake) on the HTTPS one (src/http/tls.ts), whose own listener runs HTTP/2 or,
 * for ALPN http/1.1, node's http on the TLS socket. The raw path takes HTTP/1.1 on either;
 * an HTTP/2 connection goes to node's listener at once.
 */
export type ConnectionEvent = 'connection' | 'secureConnection'

/**
 * The start-up self-check: node's own connection listener on a fresh http server, found by its
 * function name (an internal of node's http, the same on Node 20 and 24). The raw path hands
 * connections to it; when node's internals are not as expected, this says why, and the edge
 * serves every request through node's http instead.
 */
export function nodeConnectionListener(
  server: Server,
  event: ConnectionEvent = 'connection',
): { listener: Listener } | { problem: string } {
  const own = server.listeners(event).filter((l) => l.name === 'connectionListener')
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
    readonly server: Server,
    private readonly source: RawHitSource,
    event: ConnectionEvent = 'connection',
  ) {
    const found = nodeConnectionListener(server, event)
    if ('problem' in found) throw new Error(`raw hits: ${found.problem}`)
    this.httpConnection = found.listener
    server.removeListener(event, found.listener)
    server.prependListener(event, (socket: Socket) => this.accept(socket))
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

  get isClosing(): boolean {
    return this.closing
  }

  private accept(socket: Socket): void {
    if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2')
      return void this.httpConnection.call(this.server, socket)
    this.sockets.add(socket)
    const t = Math.floor(this.server.keepAliveTimeout / 1000)
    const suffix =
      t > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${t}\r\n` : 'connection: keep-alive\r\n'
    new RawConnection(this, socket, suffix)
  }

  /** node's http takes `socket` for good, then `rest`, the bytes not answered here. */
  handOver(socket: Socket, rest: Buffer): void {
    this.sockets.delete(socket)
    this.handedOver++
    this.httpConnection.call(this.server, socket)
    // Resumed first: node's clientError handler may pause the socket while it parses `rest`.
    socket.resume()
    if (rest.length) socket.emit('data', rest)
  }

  /** Longest a request head may take here: what node allows for a head (and for a whole request). */
  headLimit(): number {
    const { headersTimeout, requestTimeout } = this.server
    return requestTimeout > 0 && requestTimeout < headersTimeout ? requestTimeout : headersTimeout
  }

  /** A connection the raw path holds closed. */
  forget(socket: Socket): void {
    this.sockets.delete(socket)
  }

  /** Parses one request head (bytes start..end, end at its CRLFCRLF); the hit's bytes or undefined. */
  answer(buf: Buffer, start: number, end: number, suffix: string): Buffer[] | undefined {
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
    let acceptEncoding: string | undefined
    let pos = lineEnd + 2
    while (pos < end) {
      lineEnd = buf.indexOf(13, pos)
      if (lineEnd === -1 || lineEnd > end || buf[lineEnd + 1] !== 10) return undefined
      const colon = buf.indexOf(0x3a, pos)
      if (colon === -1 || colon > lineEnd || colon === pos) return undefined
      const name = buf.toString('latin1', pos, colon).toLowerCase()
      if (!TOKEN.test(name) || NOT_PLAIN.has(name)) return undefined
      // Optional whitespace is SP and HTAB only (String.trim would also drop a 0xa0 node keeps).
      let vs = colon + 1
      let ve = lineEnd
      while (vs < ve && (buf[vs] === SP || buf[vs] === HTAB)) vs++
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--
      const value = buf.toString('latin1', vs, ve)
      if (BAD_VALUE.test(value)) return undefined
      if (name === 'host') {
        if (host !== undefined) return undefined
        host = value
      } else if (name === 'connection' && value.toLowerCase() !== 'keep-alive') return undefined
      else if (name === 'accept-encoding')
        acceptEncoding = acceptEncoding === undefined ? value : `${acceptEncoding}, ${value}`
      pos = lineEnd + 2
    }
    if (host === undefined) return undefined
    return this.source.rawHit(isHead, url, host, suffix, acceptEncoding)
  }
}

/**
 * One connection while the raw path holds it: parses what arrives, answers plain hits, and
 * hands the connection over at the first request it does not answer.
 */
class RawConnection {
  private pending: Buffer | undefined
  private headTimer: NodeJS.Timeout | undefined
  private paused = false
  private handed = false
  /** A TLS socket: large bodies are written alone (TLS_SOLO_BODY). */
  private readonly encrypted: boolean

  constructor(
    private readonly hits: RawHits,
    private readonly socket: Socket,
    private readonly suffix: string,
  ) {
    this.encrypted = (socket as Socket & { encrypted?: boolean }).encrypted === true
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('timeout', this.onIdle)
    // A new connection waits for its first head as node's would: the head limit (then 408);
    // the keep-alive idle limit applies from its first answer on.
    this.startHeadTimer()
  }

  private idleArmed = false

  private readonly onError = () => this.socket.destroy()
  private readonly onClose = () => {
    this.stopHeadTimer()
    this.hits.forget(this.socket)
  }
  /** Keep-alive idle: only between requests (a partial head has its own limit; a stalled write the server's). */
  private readonly onIdle = () => {
    if (this.pending === undefined && this.socket.writableLength === 0) this.socket.destroy()
  }
  private readonly onDrain = () => {
    if (!this.paused) return
    this.paused = false
    const p = this.pending
    this.pending = undefined
    if (p) this.parse(p)
    if (!this.paused && !this.handed) this.socket.resume()
  }
  private readonly onData = (chunk: Buffer) => {
    const p = this.pending
    if (p === undefined) return this.parse(chunk)
    this.pending = undefined
    this.parse(Buffer.concat([p, chunk]))
  }
  /** The client half-closed: a partial head is node's to judge (400), else the answers end it. */
  private readonly onEnd = () => {
    if (this.handed) return
    const p = this.pending
    if (p === undefined) return void this.socket.end()
    this.handOver(p)
    // node's http listens for 'end' from the hand-over on; this one has already been emitted.
    this.socket.emit('end')
  }

  private startHeadTimer(): void {
    const limit = this.hits.headLimit()
    if (this.headTimer === undefined && limit > 0) this.headTimer = setTimeout(this.onHeadTimeout, limit)
  }

  private stopHeadTimer(): void {
    if (this.headTimer === undefined) return
    clearTimeout(this.headTimer)
    this.headTimer = undefined
  }

  /** A head that took too long: the server's clientError handler answers it (408), as node's would. */
  private readonly onHeadTimeout = () => {
    this.headTimer = undefined
    if (this.handed || this.socket.destroyed) return
    const err = Object.assign(new Error('request head timeout'), { code: REQUEST_TIMEOUT })
    this.socket.removeListener('data', this.onData)
    this.pending = undefined
    if (!this.hits.server.emit('clientError', err, this.socket)) {
      this.socket.end(RESPONSE_408)
      this.socket.destroySoon()
    }
  }

  private handOver(rest: Buffer): void {
    this.handed = true
    this.pending = undefined
    this.stopHeadTimer()
    const s = this.socket
    if (s.writableCorked) s.uncork()
    s.removeListener('data', this.onData)
    s.removeListener('drain', this.onDrain)
    s.removeListener('end', this.onEnd)
    s.removeListener('timeout', this.onIdle)
    s.removeListener('close', this.onClose)
    s.setTimeout(0)
    s.removeListener('error', this.onError)
    this.hits.handOver(s, rest)
  }

  /** Waits for the rest of a head that may still be a plain hit; false: hand it over now. */
  private wait(buf: Buffer, off: number): boolean {
    if (buf.length - off > MAX_HEAD || this.hits.isClosing || !plainStart(buf, off, buf.length)) return false
    this.pending = buf.subarray(off)
    this.startHeadTimer()
    return true
  }

  private parse(buf: Buffer): void {
    const socket = this.socket
    let off = 0
    socket.cork()
    try {
      while (off < buf.length) {
        const end = buf.indexOf(CRLFCRLF, off)
        if (end === -1 && this.wait(buf, off)) return
        const out =
          end === -1 || end - off > MAX_HEAD || this.hits.isClosing
            ? undefined
            : this.hits.answer(buf, off, end, this.suffix)
        if (out === undefined) return this.handOver(buf.subarray(off))
        this.stopHeadTimer()
        if (!this.idleArmed) {
          this.idleArmed = true
          socket.setTimeout(this.hits.server.keepAliveTimeout)
        }
        off = end + 4
        this.hits.answered++
        let ok = socket.write(out[0]!)
        const body = out[1]
        if (body !== undefined && this.encrypted && body.length >= TLS_SOLO_BODY) {
          // The head (and any answers before it) go first; the body alone, not gathered with them.
          socket.uncork()
          ok = socket.write(body)
          socket.cork()
        } else if (body !== undefined) ok = socket.write(body)
        if (!ok) {
          // The client is not reading: stop parsing until it has taken what it asked for.
          if (off < buf.length) this.pending = buf.subarray(off)
          this.paused = true
          socket.pause()
          return
        }
      }
    } finally {
      if (socket.writableCorked) socket.uncork()
    }
  }
}
