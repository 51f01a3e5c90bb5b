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
