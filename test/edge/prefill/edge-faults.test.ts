/**
 * Prefill on a real edge under constraints and faults: the byte-rate cap over a whole job,
 * restart in the middle, cancel, precise per-title errors, the upstream going down.
 */
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { JobView } from '../../../edge/prefill/model.js'
import { tempDir } from '../../helpers/origin.js'
import { admin, edge, originGets, setup, storeObjects, waitJob } from './edge-setup.js'

t.test('the byte-rate cap holds over the job (bytes measured over time)', async (t) => {
  const origin = await setup(t, ['alpha'])
  const e = await edge(t, origin)
  const cap = 200_000
  const samples: Array<{ at: number; fetched: number }> = []
  const t0 = performance.now()
  const r = await admin(e.url, 'POST', '/admin/prefill', {
    titles: ['alpha'],
    renditions: { maxHeight: 360 },
    maxBytesPerSecond: cap,
  })
  const v = await waitJob(e.url, r.json.id, undefined, (v) =>
    samples.push({ at: (performance.now() - t0) / 1000, fetched: v.bytes.fetched }),
  )
  const seconds = (performance.now() - t0) / 1000
  t.equal(v.state, 'completed')
  t.ok(v.bytes.fetched > 4 * cap, `enough bytes to measure (${v.bytes.fetched})`)
  // The bucket admits a second's worth at once, then one object may overdraw it.
  const largest = 400_000
  const over = samples.filter((s) => s.fetched > cap + cap * s.at * 1.1 + largest)
  t.same(over, [], 'never ahead of burst + rate × time + one object')
  // Past the bucket's burst (at most a second's worth) and the one object that may overdraw,
  // bytes follow the rate.
  const paced = (v.bytes.fetched - cap - largest) / seconds
  t.ok(paced <= cap * 1.05, `paced part ${Math.round(paced)} B/s within the cap ${cap} (+5%)`)
})

t.test('an edge restarted in the middle of a job resumes it without refetching', async (t) => {
  const origin = await setup(t, ['alpha', 'beta'])
  const first = await edge(t, origin)
  const r = await admin(first.url, 'POST', '/admin/prefill', {
    titles: ['alpha', 'beta'],
    concurrency: 1,
    maxBytesPerSecond: 1_500_000,
  })
  const mid = await waitJob(first.url, r.json.id, (v) => v.objects.done >= 4)
  t.ok(mid.objects.done < mid.objects.total, 'stopped half-way')
  await first.app.close()

  const second = await edge(t, origin, { cacheDir: first.cacheDir })
  const v = await waitJob(second.url, r.json.id)
  t.equal(v.state, 'completed', v.reason ?? '')
  t.same(
    v.titles.map((x) => x.state),
    ['complete', 'complete'],
  )
  const gets = await originGets(origin)
  // Every object once, plus the master once; one object may have been in flight at the stop.
  t.ok(
    gets <= v.objects.total + 2,
    `${gets} GETs for ${v.objects.total} objects: nothing done was fetched again`,
  )
  t.same((await admin(second.url, 'GET', '/status')).json.titlesComplete, ['alpha', 'beta'])
})

t.test('cancel stops the job; a half-filled title is not complete', async (t) => {
  const origin = await setup(t, ['alpha'])
  const e = await edge(t, origin)
  const r = await admin(e.url, 'POST', '/admin/prefill', {
    titles: ['alpha'],
    concurrency: 1,
    maxBytesPerSecond: 300_000,
  })
  await waitJob(e.url, r.json.id, (v) => v.objects.done >= 2)
  const d = await admin(e.url, 'DELETE', `/admin/prefill/${r.json.id}`)
  t.equal(d.status, 200)
  t.equal(d.json.state, 'cancelled')
  t.match(d.json.titles, [{ title: 'alpha', state: 'cancelled' }])
  t.same((await admin(e.url, 'GET', '/status')).json.titlesComplete, [])
})

t.test(
  'unknown title, a playlist that does not parse, a 404 segment: precise errors, others fill',
  async (t) => {
    const origin = await setup(t, ['alpha', 'beta', 'gamma'])
    const beta = await storeObjects(origin.store, 'beta')
    const missing = beta.find((p) => p.endsWith('/360p/seg-00002.m4s'))!
    await rm(join(origin.store, 'titles', missing.slice('/vod/'.length)))
    const gamma = (await storeObjects(origin.store, 'gamma')).find((p) => p.endsWith('/240p/index.m3u8'))!
    await writeFile(
      join(origin.store, 'titles', gamma.slice('/vod/'.length)),
      '#EXTM3U\n#EXT-X-TARGETDURATION:4\n',
    )
    const e = await edge(t, origin)
    const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['ghost', 'beta', 'gamma', 'alpha'] })
    const v = await waitJob(e.url, r.json.id)
    t.equal(v.state, 'completed')
    const by = Object.fromEntries(v.titles.map((x) => [x.title, x]))
    t.match(by.ghost, { state: 'failed', error: { code: 'CDN_ERR_UNKNOWN_TITLE', status: 404 } })
    t.match(by.beta, {
      state: 'failed',
      error: { code: 'CDN_ERR_UPSTREAM_NOT_FOUND', path: missing, status: 404 },
    })
    t.match(by.gamma, { state: 'failed', error: { code: 'CDN_ERR_PLAYLIST', path: gamma } })
    t.match(by.alpha, { state: 'complete' })
    t.same((await admin(e.url, 'GET', '/status')).json.titlesComplete, ['alpha'])
  },
)

t.test(
  'the upstream going down pauses the job, retries with backoff, then fails with a reason',
  async (t) => {
    const origin = await setup(t, ['alpha'])
    const e = await edge(t, origin, { prefillRetryAttempts: 3, prefillRetryDelay: 150 })
    await origin.app.close()
    const states = new Set<string>()
    const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
    const v: JobView = await waitJob(e.url, r.json.id, undefined, (x) => states.add(x.state))
    t.equal(v.state, 'failed')
    t.ok(states.has('paused'), `paused while retrying (${[...states].join(', ')})`)
    t.match(v.reason, /^upstream unavailable after 3 attempts/)
    t.match(v.titles, [{ title: 'alpha', state: 'failed', error: { code: 'CDN_ERR_UPSTREAM_DOWN' } }])
  },
)

t.test('an unusable cache dir disables prefill (503 with the reason) and the edge serves on', async (t) => {
  const origin = await setup(t, ['alpha'])
  const file = join(await tempDir(t), 'a-file')
  await writeFile(file, 'not a directory')
  const e = await edge(t, origin, { cacheDir: file })
  const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
  t.equal(r.status, 503)
  t.match(r.json.error, {
    code: 'CDN_ERR_DISK',
    message: /prefill unavailable: cannot use .*a-file\/prefill \(ENOTDIR\)/,
  })
  const master = await fetch(`${e.url}/vod/alpha/master.m3u8`)
  t.equal(master.status, 200, 'content is still served')
  await master.arrayBuffer()
})
