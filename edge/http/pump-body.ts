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
 * NUDGE_BYTES go through node (`pump`). A send runs on the event loop when mincore(2) says every
 * page of its range is in the page cache and up to date (no disk read to wait for), else on the
 * threadpool.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { type BodyStream, DEFAULT_LOOP_CHUNK } from '../cache/store.js'
import { sendfile } from '../native/sendfile.js'

/**
 * Bytes written through node before the first sendfile (they carry the head) and each time the
 * socket is full: the write's callback says it has room again (node has no other signal for it).
 * Each is a read and a copy through the process; on 4.2 MB hits under wrk -c100, 4 KiB nudges
 * cost the edge about half the CPU per hit of 64 KiB ones (docs/bench.md, "Sends on the loop").
 */
export const NUDGE_BYTES = 4 * 1024
/**
 * Bytes of one send on the threadpool (a range not all in the page cache): a turn of the
 * threadpool between sends lets the client take what was sent while it is still in the CPU's
 * cache. Measured on 4.2 MB hits under wrk -c100 (docs/bench.md): 64-128 KiB sends cost the
 * machine (edge, client and kernel) 25-30 % less CPU per hit than one send of the whole rest.
 */
export const SEND_BYTES = 128 * 1024
/**
 * The buffer a response by sendfile borrows (and the in-flight budget reserves, serve.ts): a
 * nudge uses NUDGE_BYTES of it, and if sends stop (a file system where sendfile cannot work),
 * node writes the rest from it in pieces of this size.
 */
export const SEND_LEASE_BYTES = 64 * 1024
/** errno of a send whose file was shorter than its record (sendfile.c): the object is dropped. */
const EIO = 5
/** errno of sends that cannot work here at all (a file system without splice, say): node writes. */
const UNSUPPORTED = new Set([22, 38, 95]) // EINVAL, ENOSYS, EOPNOTSUPP

export function pumpBody(res: ServerResponse, s: BodyStream, chunk: number): void {
  const sock = s.sendTo && !chunked(res) ? sendfileSocket(res) : undefined
  // The duplicate is made now, while node's descriptor is surely this socket's: once node closes
  // it, the number may be another connection's or a file's before any callback of ours runs.
  const out = sock === undefined ? -1 : sendfile!.dup(sock)
  if (out < 0) return pump(res, s, chunk)
  pump(res, s, SEND_LEASE_BYTES, out)
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
 * The body chunk by chunk through node, or by sendfile(2) (edge/native/sendfile.ts) when `out`
 * is given: the first `chunk` bytes through node (the head goes with them), then the kernel sends
 * the rest from the page cache, on the threadpool, to `out`, a duplicate of the socket's
 * descriptor made before anything else (a socket node closes meanwhile cannot be replaced under
 * it by another with the same number); nothing is sent once node has destroyed the socket.
 * When the socket is full the next `chunk` goes through node: its write's callback is the sign
 * there is room again (node has no other). Node's own queue is empty before each send, so the
 * bytes stay in order; with its Content-Length set, node's `end` adds nothing.
 */
function pump(res: ServerResponse, s: BodyStream, chunk: number, out = -1): void {
  const lease = s.lend(Math.min(chunk, s.length))
  let off = 0
  /** A read or a send is on the threadpool: the buffer and the descriptor wait for it to be back. */
  let busy = false
  let over = false
  const bySendfile = out >= 0
  const giveBack = (): void => {
    if (!over || busy) return
    lease.release()
    if (out >= 0) sendfile!.close(out)
    out = -1
  }
  /** Sends may go on (false: node writes the rest; the duplicate is closed with the response). */
  let sends = bySendfile
  const failed = (err: unknown): void => {
    if (err) s.fail(err)
    s.close()
    res.destroy()
  }
  /** The next chunk through node. */
  const write = (): void => {
    // While sends go on, only a nudge goes through node; the whole buffer once they stopped.
    const n = Math.min(bySendfile && sends ? NUDGE_BYTES : lease.buf.length, s.length - off)
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
  /** What a send's end says: more, a nudge through node (socket full), node instead, or a failure. */
  const settle = (errno: number, sent: number): void => {
    off += sent
    if (over) return giveBack()
    if (errno === 0 || (errno === sendfile!.EAGAIN && off >= s.length)) return next()
    if (errno === sendfile!.EAGAIN) return write()
    // sendfile cannot work here: node writes the rest.
    if (UNSUPPORTED.has(errno) && sent === 0) {
      sends = false
      return write()
    }
    // The file shorter than its record is the object's fault; anything else is the socket's.
    failed(errno === EIO ? Object.assign(new Error('short sendfile'), { code: 'ESHORT' }) : null)
  }
  /**
   * The rest by sendfile, until the socket is full: at once on the event loop when every page
   * of the range is in the page cache (a thread's round trip per send cost more than the send:
   * docs/bench.md), else on the threadpool, where a page read may wait on the disk.
   */
  const sendRest = (): void => {
    if (s.sendNow) {
      const count = Math.min(s.length - off, s.loopChunk ?? DEFAULT_LOOP_CHUNK)
      const r = s.sendNow(out, off, count)
      if (r >= 0) {
        // All of it: the rest after a turn of the loop. Fewer: the socket is full, the nudge
        // waits for room.
        if (r === count && off + r < s.length) {
          off += r
          setImmediate(next)
          return
        }
        return settle(r === count ? 0 : sendfile!.EAGAIN, r)
      }
      if (r !== -sendfile!.ENODATA && r !== -sendfile!.ENOSYS) return settle(-r, 0)
      // Not all resident (or no residency check on this file system): on the threadpool.
    }
    const count = Math.min(s.length - off, SEND_BYTES)
    busy = true
    const done = (errno: number, sent: number): void => {
      busy = false
      settle(errno, sent)
    }
    try {
      s.sendTo!(out, off, count, done)
    } catch {
      // Not queued (the addon could not allocate its work): node writes the rest.
      busy = false
      sends = false
      write()
    }
  }
  /** The next chunk or send, or the end after the last byte. */
  const next = (): void => {
    if (res.destroyed) return
    // Node calls a write's callback without an error when it destroyed the socket meanwhile:
    // nothing more is sent to the connection, whose 'close' gives everything back. (Without
    // sends, a pipelined response has no socket until its turn: node's writes wait for it.)
    if (bySendfile && (!res.socket || res.socket.destroyed)) return
    if (off >= s.length) {
      s.close()
      res.end()
      return
    }
    // Node still holds bytes of its own to write (or no sendfile): through node.
    if (!sends || res.socket!.writableLength > 0) return write()
    sendRest()
  }
  res.once('close', () => {
    over = true
    s.close()
    giveBack()
  })
  if (bySendfile) write()
  else next()
}
