import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { finished, fixture, gets, manualSleep } from './setup.js'

async function storeFiles(store: string, title: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const root = join(store, 'titles', title)
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${rel}/${e.name}`)
      else out.set(`/vod/${title}${rel}/${e.name}`, (await readFile(join(dir, e.name))).length)
    }
  }
  await walk(root, '')
  return out
}

t.test('a job fills every object of each title once, and a repeat fetches nothing', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  const jobs = await f.jobs(target)
  const { id, existing } = await jobs.submit({
    titles: [
      { title: 'alpha', rank: 0 },
      { title: 'beta', rank: 1 },
    ],
    source: 'titles',
    concurrency: 3,
  })
  t.notOk(existing)
  const again = await jobs.submit({
    titles: [
      { title: 'alpha', rank: 0 },
      { title: 'beta', rank: 1 },
    ],
    source: 'titles',
    concurrency: 3,
  })
  t.same(again, { id, existing: true }, 'the same job while it is pending is the same job')
  const v = await finished(jobs, id)
  t.equal(v.state, 'completed', v.reason ?? '')
  t.same(
    v.titles.map((x) => [x.title, x.state]),
    [
      ['alpha', 'complete'],
      ['beta', 'complete'],
    ],
  )
  t.equal(v.objects.done, v.objects.total)
  t.equal(v.bytes.done, v.bytes.total)
  const files = await storeFiles(f.origin.store, 'alpha')
  const media = [...files.keys()].filter((p) => /\.(m4s|mp4)$/.test(p) || p.endsWith('index.m3u8'))
  for (const p of media) t.ok(target.has(p) && target.isProtected(p), `${p} held and protected`)
  const alpha = v.titles[0]!
  t.equal(alpha.objectsTotal, media.length, 'the plan names exactly the objects the origin has')
  t.equal(
    alpha.bytesTotal,
    media.reduce((s, p) => s + files.get(p)!, 0),
    'sizes from HEAD are exact',
  )
  t.equal(
    alpha.bytesFetched,
    alpha.bytesTotal - media.filter((p) => p.endsWith('.m3u8')).reduce((s, p) => s + files.get(p)!, 0),
    'playlists came with the plan; the rest was fetched',
  )
  const perPath = new Map<string, number>()
  for (const g of gets(target)) perPath.set(g, (perPath.get(g) ?? 0) + 1)
  t.same(
    [...perPath].filter(([, n]) => n > 1),
    [],
    'no object fetched twice',
  )
  t.equal(target.protectedShare.titleBytes('alpha'), alpha.bytesTotal)

  const before = target.upstreamRequests
  const second = await jobs.submit({
    titles: [
      { title: 'beta', rank: 0 },
      { title: 'alpha', rank: 1 },
    ],
    source: 'titles',
    concurrency: 2,
  })
  t.not(second.id, id)
  const v2 = await finished(jobs, second.id)
  t.equal(v2.state, 'completed')
  t.equal(target.upstreamRequests - before, 0, 'the same titles again cost no upstream request')
  t.equal(v2.bytes.fetched, 0)

  const text = await jobs.metrics.registry.metrics()
  const value = (re: RegExp) => Number(re.exec(text)?.[1])
  t.equal(value(/^cdn_prefill_bytes_total (\d+)$/m), v.bytes.fetched, 'bytes metric = bytes fetched')
  t.equal(value(/^cdn_prefill_jobs\{state="completed"\} (\d+)$/m), 2)
  t.ok(value(/^cdn_prefill_objects_total\{result="held"\} (\d+)$/m) >= v.objects.total)
  t.equal(value(/^cdn_prefill_title_seconds_count\{result="complete"\} (\d+)$/m), 4)
})

t.test('errors are precise per title and the others still fill', async (t) => {
  const f = await fixture(t, ['alpha', 'beta', 'gamma'])
  const betaFiles = [...(await storeFiles(f.origin.store, 'beta')).keys()]
  const gammaFiles = [...(await storeFiles(f.origin.store, 'gamma')).keys()]
  const gammaPlaylist = gammaFiles.find((p) => p.endsWith('/360p/index.m3u8'))!
  await writeFile(
    join(f.origin.store, 'titles', gammaPlaylist.slice('/vod/'.length)),
    'this is not a playlist\n',
  )
  const missing = betaFiles.find((p) => p.endsWith('/480p/seg-00002.m4s'))!
  let deleted = false
  const target = f.target()
  // The window is closed at first: planning runs, then the job waits; while it waits one of
  // beta's segments disappears upstream, so the 404 happens in the middle of beta's fill.
  const jobs = await f.jobs(target, {
    sleep: manualSleep(f.clock, async () => {
      if (deleted) return
      deleted = true
      await rm(join(f.origin.store, 'titles', missing.slice('/vod/'.length)))
    }),
  })
  f.clock.advance(3 * 3_600_000) // 06:00 UTC: the 02:00-06:00 window just closed
  const { id } = await jobs.submit({
    titles: ['ghost', 'beta', 'alpha', 'gamma'].map((title, rank) => ({ title, rank })),
    source: 'titles',
    concurrency: 1,
    window: '02:00-06:00',
  })
  const v = await finished(jobs, id)
  t.ok(deleted)
  t.equal(v.state, 'completed')
  const by = Object.fromEntries(v.titles.map((x) => [x.title, x]))
  t.match(by.ghost, {
    state: 'failed',
    error: { code: 'CDN_ERR_UNKNOWN_TITLE', path: '/vod/ghost/master.m3u8', status: 404 },
  })
  t.match(by.beta, {
    state: 'failed',
    error: { code: 'CDN_ERR_UPSTREAM_NOT_FOUND', path: missing, status: 404 },
  })
  t.ok(by.beta!.objectsDone > 0 && by.beta!.objectsDone < by.beta!.objectsTotal, 'beta failed half-way')
  t.equal(target.protectedShare.titleBytes('beta'), 0, 'a half-filled title is released, never complete')
  t.match(by.gamma, { state: 'failed', error: { code: 'CDN_ERR_PLAYLIST', path: gammaPlaylist } })
  t.match(by.alpha, { state: 'complete' })
  t.equal(v.reason, '1 complete, 3 failed, 0 left out', 'completed, its failures counted')
  t.equal(jobs.completedTitles().has('beta'), false)
  t.equal(jobs.completedTitles().get('alpha')?.jobId, id)
})

t.test('a job none of whose titles is filled, some failing, is failed', async (t) => {
  const f = await fixture(t, ['alpha'])
  const jobs = await f.jobs(f.target())
  const { id } = await jobs.submit({
    titles: ['ghost', 'phantom'].map((title, rank) => ({ title, rank })),
    source: 'titles',
    concurrency: 1,
  })
  const v = await finished(jobs, id)
  t.equal(v.state, 'failed', 'as the CLI exit status says (1)')
  t.equal(v.reason, '0 complete, 2 failed, 0 left out')
  t.same(
    v.titles.map((x) => [x.title, x.state, x.error?.code]),
    [
      ['ghost', 'failed', 'CDN_ERR_UNKNOWN_TITLE'],
      ['phantom', 'failed', 'CDN_ERR_UNKNOWN_TITLE'],
    ],
  )
})

t.test('a dry run plans without fetching segments, and fits the protected share in rank order', async (t) => {
  const f = await fixture(t)
  const target = f.target(2_000_000)
  const jobs = await f.jobs(target)
  const plan = await jobs.dryRun({
    titles: [
      { title: 'beta', rank: 0, weight: 0.7 },
      { title: 'alpha', rank: 1, weight: 0.3 },
    ],
    source: 'popularity',
    concurrency: 4,
    renditions: { maxHeight: 360 },
    maxBytesPerSecond: 1000,
    window: '02:00-06:00',
  })
  t.same(
    gets(target).filter((g) => !g.endsWith('.m3u8')),
    [],
    'only playlists were fetched',
  )
  t.same(
    plan.titles[0]!.plan.renditions.map((r) => r.name),
    ['360p', '240p'],
  )
  const titleBytes = plan.titles[0]!.plan.bytesTotal
  t.ok(titleBytes > 0)
  t.same(
    plan.titles.map((x) => x.decision),
    titleBytes * 2 <= 2_000_000 ? ['fill', 'fill'] : ['fill', 'left-out'],
  )
  t.equal(plan.timing.maxBytesPerSecond, 1000)
  t.equal(plan.timing.seconds, Math.ceil(plan.bytesToFetch / 1000))
  t.match(plan.timing.window, { spec: '02:00-06:00', open: true })
  const small = await f.jobs(f.target(titleBytes + 10))
  const tight = await small.dryRun({
    titles: [
      { title: 'beta', rank: 0 },
      { title: 'alpha', rank: 1 },
    ],
    source: 'titles',
    concurrency: 4,
    renditions: { maxHeight: 360 },
  })
  t.same(
    tight.titles.map((x) => x.decision),
    ['fill', 'left-out'],
  )
  t.match(tight.titles[1]!.reason, /left after 1 higher-ranked title/)
})

t.test('finished jobs are pruned, but never the one a complete title stands on', async (t) => {
  const f = await fixture(t, ['alpha', 'beta'])
  const target = f.target()
  const jobs = await f.jobs(target, { maxFinishedJobs: 1 })
  const run = async (title: string, concurrency: number) => {
    const { id } = await jobs.submit({ titles: [{ title, rank: 0 }], source: 'titles', concurrency })
    t.equal((await finished(jobs, id)).state, 'completed')
    return id
  }
  const alpha = await run('alpha', 1)
  await run('beta', 1)
  // Two more finished jobs than the one kept: the oldest ones that stand behind nothing go.
  const ghost = await jobs.submit({ titles: [{ title: 'ghost', rank: 0 }], source: 'titles', concurrency: 1 })
  await finished(jobs, ghost.id)
  const beta = await run('beta', 2)
  await jobs.submit({ titles: [{ title: 'ghost', rank: 0 }], source: 'titles', concurrency: 2 })
  await jobs.idle()
  t.equal(jobs.get(ghost.id), undefined, 'a job no complete title stands on is pruned')
  t.same(
    Object.fromEntries([...jobs.completedTitles()].map(([title, c]) => [title, c.jobId])),
    { alpha, beta },
    "alpha's job is kept: the title is still complete (held and protected) by it",
  )
  const segment = gets(target).find((g) => g.startsWith('GET /vod/alpha/') && g.endsWith('.m4s'))!
  t.ok(target.isProtected(segment.slice(4)), 'alpha is still protected')
  // After a restart, too: the job records are what protection and titlesComplete stand on.
  const again = await f.jobs(f.target())
  t.same([...again.completedTitles().keys()].sort(), ['alpha', 'beta'])
})
