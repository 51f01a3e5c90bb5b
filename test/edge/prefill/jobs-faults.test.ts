import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { PrefillJobs } from '../../../edge/prefill/jobs.js'
import { finished, fixture, gets, manualSleep } from './setup.js'

const TITLES = [
  { title: 'alpha', rank: 0 },
  { title: 'beta', rank: 1 },
]

/** Size of the largest file under `dir`. */
async function largestFile(dir: string): Promise<number> {
  let max = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) max = Math.max(max, (await stat(join(e.parentPath, e.name))).size)
  return max
}

t.test('the byte-rate cap holds over the job (bytes against the job clock)', async (t) => {
  const f = await fixture(t)
  const cap = 200_000
  const samples: Array<{ at: number; fetched: number }> = []
  let id = ''
  const t0 = f.clock.monotonic()
  const jobs: PrefillJobs = await f.jobs(f.target(), {
    // Time moves only through the limiter's sleeps: each is a point to compare bytes with time.
    sleep: manualSleep(f.clock, () => {
      const v = jobs.get(id)
      if (v) samples.push({ at: (f.clock.monotonic() - t0) / 1000, fetched: v.bytes.fetched })
    }),
  })
  ;({ id } = await jobs.submit({ titles: TITLES, source: 'titles', concurrency: 1, maxBytesPerSecond: cap }))
  const v = await finished(jobs, id)
  const seconds = (f.clock.monotonic() - t0) / 1000
  t.equal(v.state, 'completed')
  t.ok(v.bytes.fetched > 4 * cap, `enough bytes to measure (${v.bytes.fetched})`)
  t.ok(samples.length > 4, `the limiter waited (${samples.length} times)`)
  // The bucket admits a second's worth at once, then one object may overdraw it.
  const largest = await largestFile(join(f.origin.store, 'titles'))
  const over = samples.filter((s) => s.fetched > cap + cap * s.at + largest)
  t.same(over, [], 'never ahead of burst + rate × time + one object')
  const paced = (v.bytes.fetched - cap - largest) / seconds
  t.ok(paced <= cap, `paced part ${Math.round(paced)} B/s within the cap ${cap}`)
})

t.test('an edge restarted in the middle of a job resumes it without refetching', async (t) => {
  const f = await fixture(t)
  const first = f.target()
  let jobs: PrefillJobs | undefined
  let sleeps = 0
  let closing: Promise<void> | undefined
  jobs = await f.jobs(first, {
    // The rate cap makes the limiter sleep between objects; on the 6th sleep the edge "stops".
    sleep: manualSleep(f.clock, () => {
      if (++sleeps === 6) closing = jobs!.close()
    }),
  })
  const { id } = await jobs.submit({
    titles: TITLES,
    source: 'titles',
    concurrency: 1,
    maxBytesPerSecond: 200_000,
  })
  await jobs.idle()
  await closing
  const stopped = jobs.get(id)!
  t.ok(['running', 'paused'].includes(stopped.state), `left running (${stopped.state}) for the next start`)
  t.ok(stopped.objects.done > 0 && stopped.objects.done < stopped.objects.total, 'stopped half-way')
  t.ok(
    (await readdir(join(f.cacheDir, 'prefill'))).includes(`${id}.json`),
    'persisted under {cacheDir}/prefill/',
  )
  const fetchedBefore = gets(first)

  const second = f.target()
  jobs = await f.jobs(second)
  const v = await finished(jobs, id)
  t.equal(v.state, 'completed', v.reason ?? '')
  t.same(
    v.titles.map((x) => x.state),
    ['complete', 'complete'],
  )
  t.equal(v.objects.done, v.objects.total)
  const again = gets(second).filter((g) => fetchedBefore.includes(g))
  t.same(again, [], 'nothing fetched before the restart is fetched again')
  t.same(
    second.requestedPaths.filter((p) => p.startsWith('HEAD ')),
    [],
    'the persisted plan is reused: no HEADs',
  )
})

t.test('cancel stops a job and releases its half-filled title', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  let sleeps = 0
  let id = ''
  let cancelled: Promise<unknown> | undefined
  const jobs: PrefillJobs = await f.jobs(target, {
    sleep: manualSleep(f.clock, () => {
      if (++sleeps === 3) cancelled = jobs.cancel(id)
    }),
  })
  ;({ id } = await jobs.submit({
    titles: TITLES,
    source: 'titles',
    concurrency: 1,
    maxBytesPerSecond: 200_000,
  }))
  await jobs.idle()
  await cancelled
  const v = jobs.get(id)!
  t.equal(v.state, 'cancelled')
  t.equal(v.reason, 'cancelled by operator')
  t.notOk(
    v.titles.some((x) => x.state === 'complete' && x.objectsDone < x.objectsTotal),
    'no half title complete',
  )
  for (const x of v.titles.filter((x) => x.state === 'cancelled'))
    t.equal(target.protectedShare.titleBytes(x.title), 0, `${x.title} released`)
  t.same(await jobs.cancel(id), v, 'cancelling a finished job changes nothing')
  await t.rejects(jobs.cancel('pf-nope'), { code: 'CDN_ERR_NOT_FOUND' })
})

t.test(
  'the upstream going down pauses the job, retries with backoff, then fails it with a reason',
  async (t) => {
    const f = await fixture(t)
    const target = f.target()
    const states: string[] = []
    const delays: number[] = []
    let id = ''
    let down = false
    const jobs: PrefillJobs = await f.jobs(target, {
      sleep: manualSleep(f.clock, async (ms) => {
        if (!down) {
          // First wait is the closed window, after planning: take the origin down.
          down = true
          await f.origin.app.close()
          return
        }
        delays.push(ms)
        states.push(jobs.get(id)!.state)
      }),
    })
    f.clock.advance(3 * 3_600_000)
    ;({ id } = await jobs.submit({ titles: TITLES, source: 'titles', concurrency: 1, window: '02:00-06:00' }))
    const v = await finished(jobs, id)
    t.equal(v.state, 'failed')
    t.match(v.reason, /^upstream unavailable after 3 attempts: /)
    t.ok(states.includes('paused'), 'paused while retrying')
    t.match(delays.filter((d) => d !== 60_000 && d < 10_000).slice(0, 2), [1000, 2000], 'backoff doubles')
    for (const x of v.titles) {
      t.equal(x.state, 'failed')
      t.equal(x.error?.code, 'CDN_ERR_UPSTREAM_DOWN')
    }
  },
)

t.test('outside the window the job waits, then fills when it opens', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  const seen: Array<{ state: string; gets: number; ms: number }> = []
  let id = ''
  const jobs: PrefillJobs = await f.jobs(target, {
    sleep: manualSleep(f.clock, (ms) => {
      seen.push({
        state: jobs.get(id)!.state,
        gets: gets(target).filter((g) => !g.endsWith('.m3u8')).length,
        ms,
      })
    }),
  })
  f.clock.advance(9 * 3_600_000) // 12:00 UTC
  ;({ id } = await jobs.submit({ titles: TITLES, source: 'titles', concurrency: 2, window: '02:00-06:00' }))
  const v = await finished(jobs, id)
  t.equal(v.state, 'completed')
  t.equal(seen[0]?.state, 'waiting')
  t.equal(seen[0]?.gets, 0, 'no segment fetched before the window opens')
  const waited = seen.filter((s) => s.state === 'waiting').reduce((s, x) => s + x.ms, 0)
  t.equal(waited, 14 * 3_600_000, 'waited until 02:00')
})

t.test(
  'outside the window a trickle rate is used when configured, and the cap holds over the job',
  async (t) => {
    const f = await fixture(t)
    const target = f.target()
    const jobs = await f.jobs(target)
    f.clock.advance(9 * 3_600_000)
    const t0 = f.clock.monotonic()
    const { id } = await jobs.submit({
      titles: TITLES,
      source: 'titles',
      concurrency: 2,
      window: '02:00-06:00',
      maxBytesPerSecond: 1_000_000,
      trickleBytesPerSecond: 100_000,
    })
    const v = await finished(jobs, id)
    t.equal(v.state, 'completed')
    const seconds = (f.clock.monotonic() - t0) / 1000
    const rate = v.bytes.fetched / seconds
    t.ok(rate <= 100_000 * 1.1 && rate >= 100_000 * 0.7, `trickled at ${rate.toFixed(0)} B/s (cap 100000)`)
  },
)

t.test('an upstream down from the start fails the job in planning, with the reason', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  const jobs = await f.jobs(target)
  await f.origin.app.close()
  const { id } = await jobs.submit({ titles: TITLES, source: 'titles', concurrency: 2 })
  const v = await finished(jobs, id)
  t.equal(v.state, 'failed')
  t.match(v.reason, /^upstream unavailable after 3 attempts/)
  t.same(
    v.titles.map((x) => [x.state, x.error?.code]),
    [
      ['failed', 'CDN_ERR_UPSTREAM_DOWN'],
      ['failed', 'CDN_ERR_UPSTREAM_DOWN'],
    ],
  )
})

t.test('a job with a cap of 0 and no window (an older edge accepted one) fails saying why', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  const jobs = await f.jobs(target)
  // No request passes this any more (request.ts); a record persisted before may still resume.
  const { id } = await jobs.submit({ titles: TITLES, source: 'titles', concurrency: 2, maxBytesPerSecond: 0 })
  const v = await finished(jobs, id)
  t.equal(v.state, 'failed')
  t.match(v.reason, /^maxBytesPerSecond: a cap of 0 bytes per second never fills anything/)
  t.same(
    v.titles.map((x) => [x.state, x.error?.code]),
    [
      ['failed', 'CDN_ERR_BAD_BODY'],
      ['failed', 'CDN_ERR_BAD_BODY'],
    ],
    'no title failed with an internal error, none counted complete',
  )
  t.same(
    gets(target).filter((g) => !g.endsWith('.m3u8')),
    [],
    'no segment fetched',
  )
})
