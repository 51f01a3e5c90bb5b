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
 */
import type { ServerResponse } from 'node:http'
import type { BodyStream } from '../cache/store.js'

export function pumpBody(res: ServerResponse, s: BodyStream, chunk: number): void {
  const lease = s.lend(Math.min(chunk, s.length))
  let off = 0
  /** A read on the threadpool is filling the buffer: its release waits for the read to be back. */
  let reading = false
  let over = false
  const giveBack = (): void => {
    if (over && !reading) lease.release()
  }
  /** Reads the next chunk, or ends the response after the last. */
  const next = (): void => {
    if (res.destroyed) return
    if (off >= s.length) {
      s.close()
      res.end()
      return
    }
    const n = Math.min(lease.buf.length, s.length - off)
    const buf = n === lease.buf.length ? lease.buf : lease.buf.subarray(0, n)
    reading = true
    s.read(buf, off, (err) => {
      reading = false
      if (over) return giveBack()
      if (err || res.destroyed) {
        if (err) s.fail(err)
        s.close()
        res.destroy()
        return
      }
      off += n
      // The write's callback runs once the socket took every byte of `buf` (or failed to): only
      // then may the buffer take the next chunk. A failed write ends the response ('close').
      res.write(buf, (e) => {
        if (!e) next()
      })
    })
  }
  res.once('close', () => {
    over = true
    s.close()
    giveBack()
  })
  next()
}
