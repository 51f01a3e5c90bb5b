/**
 * The body of a large disk hit, sent in chunks read into pooled buffers, the next chunk read
 * only when the socket has room: memory per response stays bounded whatever the object's size,
 * where reading it whole needs the whole object per response in flight. A read failing half-way
 * ends the response early (its Content-Length tells the client); `s` is closed when it ends.
 */
import type { ServerResponse } from 'node:http'
import type { BodyStream } from '../cache/store.js'

export function pumpBody(res: ServerResponse, s: BodyStream, chunk: number): void {
  let off = 0
  /** A chunk was read: sent, and true when the next may be read now. */
  const sent = (lease: { buf: Buffer; release: () => void }, err: unknown): boolean => {
    if (err || res.destroyed) {
      lease.release()
      if (err) s.fail(err)
      s.close()
      res.destroy()
      return false
    }
    off += lease.buf.length
    // The chunk goes back to the pool once the socket has taken it (or failed to).
    if (!res.write(lease.buf, () => lease.release())) {
      res.once('drain', pump)
      return false
    }
    return true
  }
  // A chunk read on the event loop calls back at once (the loop goes on); one read on the
  // threadpool calls back later, and its callback pumps again.
  const pump = (): void => {
    for (;;) {
      if (off >= s.length) {
        s.close()
        res.end()
        return
      }
      if (res.destroyed) return s.close()
      const lease = s.lend(Math.min(chunk, s.length - off))
      let inline = true
      let next = false
      s.read(lease.buf, off, (err) => {
        if (!sent(lease, err)) return
        if (inline) next = true
        else pump()
      })
      inline = false
      if (!next) return
    }
  }
  res.once('close', () => s.close())
  pump()
}
