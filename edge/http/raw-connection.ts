/**
 * One connection while the raw hit path (raw-hits.ts) holds it: parses what arrives, answers
 * plain hits in request order, and hands the connection over at the first request it does not
 * answer, with every byte not yet answered. Reading pauses while the client is not taking what
 * it asked for, and while a request waits for a RawRetry (a small disk body read on the
 * threadpool first), after which that request is asked once more, then answered or handed over;
 * a partial head waits at most the head limit (then the server's 408).
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { CdnError } from '../../src/errors.js'
import { rawErrorResponse } from '../../src/http/one-answer.js'
import { MAX_HEAD, plainStart, type RawAnswer, type RawRetry } from './raw-parse.js'

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
/**
 * Over TLS, bodies from this size on leave in a write of their own. node's TLS stream copies a
 * gathered write (head + body) into one new buffer before encrypting it; a single buffer is
 * encrypted where it lies. Below a TLS record (16 KiB) the copy is cheaper than a second record.
 */
export const TLS_SOLO_BODY = 16 * 1024

/** node's error code for a request that took too long (its clientError handler answers 408). */
const REQUEST_TIMEOUT = 'ERR_HTTP_REQUEST_TIMEOUT'
const RESPONSE_408 = rawErrorResponse(
  new CdnError('CDN_ERR_REQUEST_TIMEOUT', 'the request took too long to arrive'),
)

/** What a connection needs of the raw path that holds it (RawHits). */
export interface RawConnectionOwner {
  readonly server: Server
  readonly isClosing: boolean
  answered: number
  headLimit(): number
  answer(
    buf: Buffer,
    start: number,
    end: number,
    suffix: string,
    retried: boolean,
  ): RawAnswer | RawRetry | undefined
  handOver(socket: Socket, rest: Buffer): void
  forget(socket: Socket): void
}

/**
 * One connection while the raw path holds it: parses what arrives, answers plain hits, and
 * hands the connection over at the first request it does not answer.
 */
export class RawConnection {
  private pending: Buffer | undefined
  private headTimer: NodeJS.Timeout | undefined
  private paused = false
  private handed = false
  /** Waiting for a RawRetry's `ready` (reading paused; the request and what follows in `pending`). */
  private waiting = false
  /** The request at the head of `pending` was already retried once: next time it is handed over. */
  private retried = false
  /** A TLS socket: large bodies are written alone (TLS_SOLO_BODY). */
  private readonly encrypted: boolean

  constructor(
    private readonly hits: RawConnectionOwner,
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
    if (!this.paused || this.waiting) return
    this.paused = false
    const p = this.pending
    this.pending = undefined
    if (p) this.parse(p)
    if (!this.paused && !this.handed) this.socket.resume()
  }
  private readonly onData = (chunk: Buffer) => {
    const p = this.pending
    if (this.waiting) {
      this.pending = p === undefined ? chunk : Buffer.concat([p, chunk])
      return
    }
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

  /** A RawRetry is ready: the waiting request is parsed again (answered, or handed over). */
  private readonly onReady = () => {
    this.waiting = false
    if (this.handed || this.socket.destroyed) return
    const p = this.pending
    this.pending = undefined
    if (p) this.parse(p)
    if (!this.paused && !this.waiting && !this.handed) this.socket.resume()
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
            : this.hits.answer(buf, off, end, this.suffix, this.retried)
        if (out === undefined || ('ready' in out && this.retried)) return this.handOver(buf.subarray(off))
        this.stopHeadTimer()
        if ('ready' in out) {
          // Once per request: wait (reading paused), then parse this request again.
          this.retried = true
          this.waiting = true
          this.pending = buf.subarray(off)
          socket.pause()
          void out.ready.then(this.onReady)
          return
        }
        this.retried = false
        if (!this.idleArmed) {
          this.idleArmed = true
          socket.setTimeout(this.hits.server.keepAliveTimeout)
        }
        off = end + 4
        this.hits.answered++
        const body = out.body
        // A reservation ends once the socket took the body, or failed to (a write's callback
        // runs either way, also for writes a destroyed socket never sent).
        let ok = socket.write(out.head, body === undefined ? out.release : undefined)
        if (body !== undefined && this.encrypted && body.length >= TLS_SOLO_BODY) {
          // The head (and any answers before it) go first; the body alone, not gathered with them.
          socket.uncork()
          ok = socket.write(body, out.release)
          socket.cork()
        } else if (body !== undefined) ok = socket.write(body, out.release)
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
