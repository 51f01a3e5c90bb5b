/**
 * The body of a large disk hit, sent in chunks read into one pooled buffer: memory per response
 * stays one chunk whatever the object's size, where reading it whole needs the whole object per
 * response in flight. A read failing half-way ends the response early (its Content-Length tells
 * the client); `s` is closed when it ends.
 *
 * One buffer per response, reused for every chunk: the next chunk is read into it once the socket
 * has taken the previous one (the write's callback: libuv handed every byte to the kernel), so a
 * 4 MB hit borrows one buffer once instead of one per chunk. A buffer lent per chunk went back to
 * the pool between chunks and, under load, came back decommitted and was committed anew (page
 * faults, a memset, a major GC for the external memory): most of a disk hit's CPU (docs/bench.md).
 * The buffer goes back when the response is over ('close': the socket's pending writes completed
 * or were cancelled, so nothing reads it any more), never while a read may still fill it.
 *
 * On plain HTTP/1.1, where the tier can (BodyStream.sendTo), the body goes by sendfile(2)
 * instead: the kernel sends the file's page-cache pages, no copy through the process, and only
 * NUDGE_BYTES go through node (`pump`).
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { BodyStream } from '../cache/store.js'
import { type SendFile, sendfile } from '../native/sendfile.js'

/**
 * Bytes written through node before the first sendfile (they carry the head) and each time the
 * socket is full: the write's callback says it has room again (node has no other signal for it).
 */
export const NUDGE_BYTES = 64 * 1024
/** errno of a send whose file was shorter than its record (sendfile.c): the object is dropped. */
const EIO = 5

export function pumpBody(res: ServerResponse, s: BodyStream, chunk: number): void {
  const sock = s.sendTo && !chunked(res) ? sendfileSocket(res) : undefined
  if (sock === undefined) return pump(res, s, chunk)
  pump(res, s, NUDGE_BYTES, sock, sendfile!)
}

/**
 * Node frames this response's body in chunks (its head is written: writeEntryHead gives a
 * Content-Length, so it never is; bytes node does not see must not go inside chunk framing).
 */
function chunked(res: ServerResponse): boolean {
  return !res.headersSent || (res as { chunkedEncoding?: boolean }).chunkedEncoding !== false
}

/**
 * The socket's descriptor when a body may go out by sendfile: HTTP/1.1 on plain TCP (no TLS, no
 * HTTP/2 stream), where the addon loaded. Node must not frame the body in chunks (pumpBody checks).
 */
export function sendfileSocket(res: ServerResponse): number | undefined {
  if (!sendfile || 'stream' in res) return undefined
  const sock = res.socket as (Socket & { encrypted?: boolean; _handle?: { fd?: unknown } }) | null
  if (!sock || sock.encrypted) return undefined
  const fd = sock._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/**
 * The body chunk by chunk through node, or by sendfile(2) (edge/native/sendfile.ts) when `sock`
 * is given: the first `chunk` bytes through node (the head goes with them), then the kernel sends
 * the rest from the page cache, on the threadpool, to a duplicate of the socket's descriptor (a
 * socket node closes meanwhile cannot be replaced under it by another with the same number).
 * When the socket is full the next `chunk` goes through node: its write's callback is the sign
 * there is room again (node has no other). Node's own queue is empty before each send, so the
 * bytes stay in order; with its Content-Length set, node's `end` adds nothing.
 */
function pump(res: ServerResponse, s: BodyStream, chunk: number, sock?: number, addon?: SendFile): void {
  const lease = s.lend(Math.min(chunk, s.length))
  let off = 0
  /** A read or a send is on the threadpool: the buffer and the descriptor wait for it to be back. */
  let busy = false
  let over = false
  let out = -1
  const giveBack = (): void => {
    if (!over || busy) return
    lease.release()
    if (out >= 0) addon!.close(out)
    out = -1
  }
  const failed = (err: unknown): void => {
    if (err) s.fail(err)
    s.close()
    res.destroy()
  }
  /** The next chunk through node. */
  const write = (): void => {
    const n = Math.min(lease.buf.length, s.length - off)
    const buf = n === lease.buf.length ? lease.buf : lease.buf.subarray(0, n)
    busy = true
    s.read(buf, off, (err) => {
      busy = false
      if (over) return giveBack()
      if (err || res.destroyed) return failed(err)
      off += n
      // The write's callback runs once the socket took every byte of `buf` (or failed to): only
      // then may the buffer take the next chunk. A failed write ends the response ('close').
      res.write(buf, (e) => {
        if (!e) next()
      })
    })
  }
  /** The rest by sendfile, until the socket is full. */
  const send = (): void => {
    busy = true
    s.sendTo!(out, off, s.length - off, (errno, sent) => {
      busy = false
      off += sent
      if (over) return giveBack()
      if (errno === 0 || (errno === addon!.EAGAIN && off >= s.length)) return next()
      if (errno === addon!.EAGAIN) return write()
      // The file shorter than its record is the object's fault; anything else is the socket's.
      failed(errno === EIO ? Object.assign(new Error('short sendfile'), { code: 'ESHORT' }) : null)
    })
  }
  /** The next chunk or send, or the end after the last byte. */
  const next = (): void => {
    if (res.destroyed) return
    if (off >= s.length) {
      s.close()
      res.end()
      return
    }
    // Node still holds bytes of its own to write (or no sendfile): through node.
    if (sock === undefined || res.socket!.writableLength > 0) return write()
    if (out < 0) out = addon!.dup(sock)
    if (out < 0) return write()
    send()
  }
  res.once('close', () => {
    over = true
    s.close()
    giveBack()
  })
  if (sock === undefined) next()
  else write()
}
