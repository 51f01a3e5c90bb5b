import t from 'tap'
import { ByteRateLimiter, RateMeter } from '../../../edge/prefill/rate-limiter.js'
import type { Sleep } from '../../../edge/prefill/sleep.js'
import { ManualClock } from '../../../src/clock.js'

/** A sleep that moves the manual clock instead of waiting. */
function sleeper(clock: ManualClock): Sleep {
  return async (ms, signal) => {
    if (!signal?.aborted) clock.advance(ms)
  }
}

t.test('unlimited never waits', async (t) => {
  const clock = new ManualClock()
  const l = new ByteRateLimiter({ rate: undefined, clock })
  for (let i = 0; i < 100; i++) t.equal(l.tryTake(10_000_000), 0)
})

t.test('an object may start when the bucket is not in debt, then the debt is paid at the rate', async (t) => {
  const clock = new ManualClock()
  const l = new ByteRateLimiter({ rate: 1000, burst: 1000, clock })
  t.equal(l.tryTake(1000), 0, 'the burst goes at once')
  t.equal(l.tryTake(500), 0, 'an empty (not negative) bucket still admits one object')
  t.equal(l.tryTake(1), 500, 'then wait 500 ms to pay back 500 bytes of debt')
  clock.advance(499)
  t.equal(l.tryTake(1), 1)
  clock.advance(1)
  t.equal(l.tryTake(1), 0)
})

t.test('sustained takes stay within burst + rate × time + one object', async (t) => {
  const clock = new ManualClock()
  const rate = 50_000
  const burst = 10_000
  const l = new ByteRateLimiter({ rate, burst, clock })
  const sleep = sleeper(clock)
  const t0 = clock.monotonic()
  let sent = 0
  const sizes = [3000, 17_000, 800, 64_000, 5000, 12_345]
  for (let i = 0; i < 300; i++) {
    const n = sizes[i % sizes.length]!
    t.ok(await l.take(n, sleep))
    const elapsed = (clock.monotonic() - t0) / 1000
    if (sent > burst + rate * elapsed + 64_000) t.fail(`over the cap at ${elapsed}s: ${sent} bytes`)
    sent += n
  }
  const elapsed = (clock.monotonic() - t0) / 1000
  const achieved = sent / elapsed
  t.ok(achieved <= rate * 1.1 && achieved >= rate * 0.9, `achieved ${achieved.toFixed(0)} B/s vs cap ${rate}`)
})

t.test('charge corrects an estimate once the real size is known', async (t) => {
  const clock = new ManualClock()
  const l = new ByteRateLimiter({ rate: 1000, burst: 1000, clock })
  t.equal(l.tryTake(1000), 0)
  l.charge(1000)
  t.equal(l.tryTake(1), 1000, 'the extra 1000 bytes are a second of debt')
  l.charge(-2000)
  t.equal(l.tryTake(1), 0, 'a refund clears it')
})

t.test('rate 0 pauses until the rate changes; abort ends the wait', async (t) => {
  const clock = new ManualClock()
  const l = new ByteRateLimiter({ rate: 0, clock })
  t.equal(l.tryTake(1), Number.POSITIVE_INFINITY)
  const ac = new AbortController()
  let sleeps = 0
  const sleep: Sleep = async (ms) => {
    sleeps++
    t.ok(ms <= 1000, 'sleeps in short steps so a rate change is seen')
    clock.advance(ms)
    if (sleeps === 3) l.setRate(1000)
  }
  t.ok(await l.take(10, sleep, ac.signal), 'goes once the rate is set')
  t.equal(sleeps, 3)
  l.setRate(0)
  ac.abort()
  t.notOk(await l.take(10, sleep, ac.signal), 'an aborted wait resolves false')
})

t.test('RateMeter averages over its span', async (t) => {
  const clock = new ManualClock()
  const m = new RateMeter(clock, 10_000)
  clock.advance(1000)
  for (let i = 0; i < 20; i++) {
    m.add(5000)
    clock.advance(500)
  }
  t.ok(Math.abs(m.rate() - 10_000) < 1500, `rate ${m.rate()} ≈ 10000 B/s`)
  clock.advance(20_000)
  t.equal(m.rate(), 0, 'old buckets age out')
})

t.test('pace: chunks are charged as they come, and the next is held until the debt is paid', async (t) => {
  const clock = new ManualClock()
  const l = new ByteRateLimiter({ rate: 1_000_000, burstMs: 20, clock })
  t.equal(l.pace(20_000), 0, 'the bucket (20 ms at 1 MB/s, at least 64 KiB) takes the first chunk')
  t.equal(l.pace(45_536), 0, 'down to an empty bucket: no wait')
  t.equal(l.pace(10_000), 10, '10 kB of debt at 1 MB/s: hold the next chunk 10 ms')
  t.equal(l.tryTake(0), 10, 'an object waits for the debt too, without being charged')
  clock.advance(10)
  t.equal(l.tryTake(0), 0, 'and starts once it is paid')
  t.equal(l.pace(3_000_000), 1000, 'a wait is at most a second (a rate change is noticed)')

  // Bytes paced over a span stay within the bucket plus the rate: chunk after chunk, each held
  // as long as pace says.
  const m = new ByteRateLimiter({ rate: 2_000_000, burstMs: 20, clock })
  const t0 = clock.monotonic()
  let sent = 0
  for (let i = 0; i < 500; i++) {
    sent += 65_536
    clock.advance(m.pace(65_536))
  }
  const seconds = (clock.monotonic() - t0) / 1000
  t.ok(sent <= 65_536 * 2 + 2_000_000 * seconds, `${sent} B in ${seconds} s at 2 MB/s`)
  t.ok(sent >= 2_000_000 * seconds, 'and never below the rate')

  const free = new ByteRateLimiter({ rate: undefined, clock })
  t.equal(free.pace(1e9), 0, 'unlimited: never held')
  const paused = new ByteRateLimiter({ rate: 0, clock })
  t.equal(paused.pace(1e9), 0, 'paused: an admitted object finishes')
})

t.test('pace with a shortest hold: long steps, and the rate is kept', async (t) => {
  const clock = new ManualClock()
  // 20 MB/s, a 100 ms bucket (2 MB), holds of at least 50 ms.
  const l = new ByteRateLimiter({ rate: 20_000_000, burstMs: 100, minHoldMs: 50, clock })
  t.equal(l.pace(2_000_000), 0, 'the bucket takes its 2 MB')
  t.equal(l.pace(65_536), 50, '64 KiB of debt (3.3 ms at the rate): held 50 ms, not 4')
  t.equal(l.pace(1_500_000), 79, 'a larger debt: held as long as it takes')
  clock.advance(79)
  // Chunk after chunk of 64 KiB, each held as long as pace says: few holds, the rate kept.
  const t0 = clock.monotonic()
  let sent = 0
  let holds = 0
  let lastSent = t0
  for (let i = 0; i < 2000; i++) {
    sent += 65_536
    lastSent = clock.monotonic()
    const wait = l.pace(65_536)
    if (wait > 0) holds++
    clock.advance(wait)
  }
  // Up to the last chunk (the hold after it refills a bucket nothing uses).
  const seconds = (lastSent - t0) / 1000
  t.ok(sent <= 2_000_000 + 65_536 + 20_000_000 * seconds, `${sent} B in ${seconds} s at 20 MB/s`)
  t.ok(sent >= 20_000_000 * seconds, 'and never below the rate')
  t.ok(holds <= 2000 / 10, `${holds} holds for 2000 chunks (one per MB or so, not one per chunk)`)
})
