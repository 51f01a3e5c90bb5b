/**
 * The pool of body buffers (edge/cache/buffer-pool.ts): resizable buffers reused across
 * transfers, and given back to the system (not to the garbage collector) once idle, so the
 * edge's memory returns after a burst.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { BufferPool } from '../../../edge/cache/buffer-pool.js'
import { ManualClock } from '../../../src/clock.js'

const MB = 1024 * 1024

/** This process's resident set, from /proc (Linux). */
function rss(): number {
  const pages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1])
  return pages * 4096
}

t.test('a reused buffer grows to the length asked for, and every byte is usable', async (t) => {
  const pool = new BufferPool(8 * MB)
  const a = pool.lend(100_000)
  a.buf.fill(1)
  a.release()
  const b = pool.lend(106_000)
  t.equal(b.buf.buffer, a.buf.buffer, 'same size class: the idle buffer is reused')
  t.equal(b.buf.length, 106_000)
  b.buf.fill(7)
  t.equal(b.buf[105_999], 7)
  t.equal(b.buf.indexOf(1), -1, 'the new lease sees its own bytes only')
  t.equal(pool.bytesHeld, 106_000, 'held: the lent buffer')
  b.release()
  t.equal(pool.idleBytesHeld, 106_000)
  pool.close()
  t.equal(pool.bytesHeld, 0, 'close gives the idle buffers back')
})

t.test('idle buffers give their pages back after idleMs, not before', async (t) => {
  const clock = new ManualClock()
  const pool = new BufferPool(64 * MB, { idleMs: 10_000, clock })
  t.teardown(() => pool.close())
  const leases = Array.from({ length: 8 }, () => pool.lend(4 * MB))
  for (const l of leases) l.buf.fill(0x5a)
  for (const l of leases) l.release()
  t.equal(pool.idleBytesHeld, 32 * MB)
  clock.advance(9_999)
  t.equal(pool.trim(), 0, 'still warm: kept for reuse')
  const before = rss()
  clock.advance(1)
  t.equal(pool.trim(), 8, 'every idle buffer decommitted')
  const after = rss()
  t.equal(pool.bytesHeld, 0)
  t.ok(before - after >= 16 * MB, `the pages went back to the system at once (RSS ${before} -> ${after})`)
  const again = pool.lend(4 * MB)
  t.equal(again.buf.length, 4 * MB, 'a trimmed pool still lends')
  again.release()
})

t.test('a buffer that does not fit the idle bound is given back when released', async (t) => {
  const pool = new BufferPool(4 * MB)
  t.notOk(pool.pools(2 * MB), 'above a quarter of the bound: not pooled')
  const leases = Array.from({ length: 6 }, () => pool.lend(MB))
  for (const l of leases) l.release()
  t.ok(pool.idleBytesHeld <= 4 * MB, `idle stays within its bound (${pool.idleBytesHeld})`)
  t.ok(pool.decommitted >= 2, 'the ones over it were decommitted')
  pool.close()
})

t.test('with boundIdle, idle bytes plus bytes in flight never pass the budget', async (t) => {
  const pool = new BufferPool(32 * MB)
  t.teardown(() => pool.close())
  // A budget of 8 MB, the bytes reserved for transfers in flight counted by hand here.
  let inflight = 0
  pool.boundIdle(() => 8 * MB - inflight)
  const lendReserved = (n: number) => {
    inflight += n
    const l = pool.lend(n)
    return () => {
      inflight -= n
      l.release()
    }
  }
  // A burst of small transfers leaves idle buffers behind.
  const small = Array.from({ length: 4 }, () => lendReserved(MB))
  small.forEach((release) => release())
  t.equal(pool.idleBytesHeld, 4 * MB, 'idle while the budget has room')
  // A transfer of another size class takes most of the budget: the idle ones make way first.
  const big = lendReserved(6 * MB)
  t.ok(
    pool.idleBytesHeld + inflight <= 8 * MB,
    `idle ${pool.idleBytesHeld} + in flight ${inflight} within the budget`,
  )
  t.ok(pool.decommitted >= 2, 'the oldest idle buffers were given back')
  // Coming back while others are in flight, a buffer is kept only where the budget has room.
  const other = lendReserved(MB)
  big()
  t.ok(pool.idleBytesHeld + inflight <= 8 * MB, 'still within the budget after a release')
  other()
  t.ok(pool.idleBytesHeld <= 8 * MB)
})
