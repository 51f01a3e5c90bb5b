import t from 'tap'
import { request } from 'undici'
import { Popularity } from '../../../edge/prefill/popularity.js'
import { ManualClock } from '../../../src/clock.js'
import { routesApp, TOKEN } from './app.js'
import { fixture } from './setup.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are read loosely in assertions
type Json = Record<string, any>

async function call(
  url: string,
  method: 'GET' | 'POST' | 'DELETE',
  body?: string,
  token: string | null = TOKEN,
) {
  const res = await request(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body }),
  })
  return {
    status: res.statusCode,
    challenge: res.headers['www-authenticate'],
    json: (await res.body.json()) as Json,
  }
}

t.test(
  'POST /admin/prefill: 202 with an id, progress, cancel; the operator API needs the token',
  async (t) => {
    const f = await fixture(t)
    const jobs = await f.jobs(f.target())
    const { url } = await routesApp(t, jobs)
    const none = await call(`${url}/admin/prefill`, 'POST', '{"titles":["alpha"]}', null)
    t.same([none.status, none.challenge], [401, 'Bearer realm="cdn-edge"'], 'a 401 carries its challenge')
    const wrong = await call(`${url}/admin/prefill`, 'POST', '{"titles":["alpha"]}', 'wrong')
    t.same([wrong.status, wrong.challenge], [401, 'Bearer realm="cdn-edge", error="invalid_token"'])
    const r = await call(
      `${url}/admin/prefill`,
      'POST',
      JSON.stringify({ titles: ['alpha', 'beta'], concurrency: 2 }),
    )
    t.equal(r.status, 202)
    t.match(r.json, { id: /^pf-/, existing: false })
    await jobs.idle()
    const v = await call(`${url}/admin/prefill/${r.json.id}`, 'GET')
    t.equal(v.status, 200)
    t.match(v.json, {
      id: r.json.id,
      state: 'completed',
      objects: { done: Number, total: Number },
      bytes: { done: Number, total: Number, fetched: Number },
      rateBytesPerSec: Number,
      titles: [
        { title: 'alpha', state: 'complete' },
        { title: 'beta', state: 'complete' },
      ],
    })
    t.equal(v.json.objects.done, v.json.objects.total)
    t.equal((await call(`${url}/admin/prefill`, 'GET')).json.jobs.length, 1)
    t.equal((await call(`${url}/admin/prefill/pf-nope`, 'GET')).status, 404)
    const d = await call(`${url}/admin/prefill/${r.json.id}`, 'DELETE')
    t.equal(d.json.state, 'completed', 'cancelling a finished job leaves it as it was')
    const dry = await call(
      `${url}/admin/prefill`,
      'POST',
      JSON.stringify({ popularity: [{ title: 'beta', weight: 1 }], dryRun: true }),
    )
    t.equal(dry.status, 200)
    t.match(dry.json, {
      dryRun: true,
      plan: { titles: [{ title: 'beta', decision: 'fill', bytesToFetch: 0 }] },
    })
    t.notOk(
      'objects' in dry.json.plan.titles[0] && Array.isArray(dry.json.plan.titles[0].objects),
      'no object lists',
    )
    // With a viewing model the objects are fitted by expected requests (the share holds beta whole).
    for (const viewing of [
      true,
      { earlyStop: 0.4, earlyMeanSec: 120, minShare: 0.1, renditionShares: { '720p': 1 } },
      { weights: 'sessions' },
      { renditionShares: { '720p': 1 }, startupShares: [{ '360p': 1 }, { '360p': 0.5, '720p': 0.5 }] },
    ]) {
      const v = await call(
        `${url}/admin/prefill`,
        'POST',
        JSON.stringify({ popularity: [{ title: 'beta', weight: 1 }], dryRun: true, viewing }),
      )
      t.equal(v.status, 200, JSON.stringify(viewing))
      t.match(v.json, { plan: { titles: [{ title: 'beta', decision: 'fill' }] } })
    }
  },
)

t.test('bad input is a 400 naming the field', async (t) => {
  const f = await fixture(t, ['alpha'])
  const jobs = await f.jobs(f.target())
  const { url } = await routesApp(t, jobs)
  const cases: Array<[string, string]> = [
    ['{"titles": ["alpha"', 'body'],
    ['[1,2]', 'body'],
    ['{"titles": ["alpha"], "maxBytesPerSec": 5}', 'maxBytesPerSec'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": -5}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": 0}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": "lots"}', 'maxBytesPerSecond'],
    // A fraction of a byte per second once floored to 0 ("paused") and crashed the job.
    ['{"titles": ["alpha"], "maxBytesPerSecond": 0.5}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": 1000.5}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": 1e999}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": 1e300}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": "0.5B"}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": "5000TB"}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": true}', 'maxBytesPerSecond'],
    ['{"titles": ["alpha"], "trickleBytesPerSecond": -1}', 'trickleBytesPerSecond'],
    ['{"titles": ["alpha"], "trickleBytesPerSecond": 0.5}', 'trickleBytesPerSecond'],
    ['{"titles": ["alpha"], "trickleBytesPerSecond": "0.5B"}', 'trickleBytesPerSecond'],
    ['{"titles": ["alpha"], "trickleBytesPerSecond": 1e999}', 'trickleBytesPerSecond'],
    ['{"titles": ["alpha"], "concurrency": 0}', 'concurrency'],
    ['{"titles": ["alpha"], "concurrency": 1000}', 'concurrency'],
    ['{"titles": ["alpha"], "concurrency": 2.5}', 'concurrency'],
    ['{"titles": ["alpha"], "renditions": {"maxHeight": 720.5}}', 'renditions.maxHeight'],
    ['{"titles": ["alpha"], "renditions": {"maxHeight": 1e300}}', 'renditions.maxHeight'],
    ['{"popularity": [{"title": "alpha", "weight": 1e999}]}', 'popularity[0].weight'],
    ['{"popularity": [{"title": "alpha", "weight": 1e300}]}', 'popularity[0].weight'],
    ['{"popularity": [{"title": "alpha", "weight": 1, "score": -1}]}', 'popularity[0].score'],
    ['{"popularity": [{"title": "alpha", "weight": 1, "requests": 1.5}]}', 'popularity[0].requests'],
    ['{"titles": ["alpha"], "viewing": {"earlyMeanSec": 1e999}}', 'viewing.earlyMeanSec'],
    ['{"titles": ["alpha"], "viewing": {"earlyMeanSec": 1e9}}', 'viewing.earlyMeanSec'],
    ['{"titles": ["alpha"], "window": "2am-6am"}', 'window'],
    ['{"titles": ["alpha"], "dryRun": "yes"}', 'dryRun'],
    ['{"titles": ["alpha"], "renditions": {"maxHeight": -720}}', 'renditions.maxHeight'],
    ['{"titles": ["alpha"], "renditions": {"upTo": 720}}', 'renditions.upTo'],
    ['{"titles": ["alpha"], "renditions": ["HD"]}', 'renditions[0]'],
    ['{"titles": []}', 'titles'],
    ['{"titles": ["alpha", "Bad Title"]}', 'titles[1]'],
    ['{"titles": ["alpha", "alpha"]}', 'titles[1]'],
    ['{}', 'titles'],
    ['{"titles": ["alpha"], "popularity": []}', 'popularity'],
    ['{"popularity": [{"title": "alpha", "weight": -1}]}', 'popularity[0].weight'],
    ['{"popularity": [{"title": "alpha", "weight": 1, "boost": 2}]}', 'popularity[0].boost'],
    ['{"popularity": ["alpha"]}', 'popularity[0]'],
    ['{"titles": ["alpha"], "viewing": 1}', 'viewing'],
    ['{"titles": ["alpha"], "viewing": {"early": 0.5}}', 'viewing.early'],
    ['{"titles": ["alpha"], "viewing": {"earlyStop": 2}}', 'viewing.earlyStop'],
    ['{"titles": ["alpha"], "viewing": {"minShare": -1}}', 'viewing.minShare'],
    ['{"titles": ["alpha"], "viewing": {"earlyMeanSec": 0}}', 'viewing.earlyMeanSec'],
    ['{"titles": ["alpha"], "viewing": {"renditionShares": [1]}}', 'viewing.renditionShares'],
    ['{"titles": ["alpha"], "viewing": {"renditionShares": {"720p": 3}}}', 'viewing.renditionShares.720p'],
    ['{"titles": ["alpha"], "viewing": {"weights": "views"}}', 'viewing.weights'],
    ['{"titles": ["alpha"], "viewing": {"startupShares": {"480p": 1}}}', 'viewing.startupShares'],
    [`{"titles": ["alpha"], "viewing": {"startupShares": [${'{},'.repeat(16)}{}]}}`, 'viewing.startupShares'],
    ['{"titles": ["alpha"], "viewing": {"startupShares": [{"480p": 1}, 5]}}', 'viewing.startupShares.1'],
    ['{"titles": ["alpha"], "viewing": {"startupShares": [{"480p": 2}]}}', 'viewing.startupShares.0.480p'],
  ]
  for (const [body, field] of cases) {
    const r = await call(`${url}/admin/prefill`, 'POST', body)
    t.equal(r.status, 400, body)
    t.equal(r.json.error?.field, field, `${body} → ${field}`)
    t.match(r.json.error?.message, new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: `))
  }
  t.same(jobs.list(), [], 'no job was created by bad input')
  // The same fields at their bounds, and a size string floored to whole bytes, are taken.
  const ok = await call(
    `${url}/admin/prefill`,
    'POST',
    JSON.stringify({
      titles: ['alpha'],
      maxBytesPerSecond: '1.5kB',
      trickleBytesPerSecond: 0,
      concurrency: 16,
      renditions: { maxHeight: 16_384 },
      dryRun: true,
    }),
  )
  t.equal(ok.status, 200, JSON.stringify(ok.json))
  t.equal(ok.json.plan?.timing?.maxBytesPerSecond, 1500)
})

t.test('GET /admin/popularity ranks titles by decayed requests, in the shape POST takes', async (t) => {
  const f = await fixture(t, ['alpha'])
  const jobs = await f.jobs(f.target())
  const clock = new ManualClock()
  const popularity = new Popularity({ clock, halfLifeMs: 3_600_000 })
  for (let i = 0; i < 5; i++) popularity.hit('alpha')
  popularity.hit('beta')
  const { url } = await routesApp(t, jobs, popularity)
  const r = await call(`${url}/admin/popularity?limit=10`, 'GET')
  t.equal(r.status, 200)
  t.same(
    r.json.popularity.map((p: { title: string }) => p.title),
    ['alpha', 'beta'],
  )
  t.equal(r.json.tracked, 2)
  t.equal((await call(`${url}/admin/popularity?limit=0`, 'GET')).json.error.field, 'limit')
  const back = await call(
    `${url}/admin/prefill`,
    'POST',
    JSON.stringify({ popularity: r.json.popularity, dryRun: true }),
  )
  t.equal(back.status, 200, 'the ranking can be posted back as a fill list')
  t.same(
    back.json.plan.titles.map((x: { title: string; decision: string }) => [x.title, x.decision]),
    [
      ['alpha', 'fill'],
      ['beta', 'error'],
    ],
  )
})

t.test('a job that asks for something a pending one does not is a job of its own', async (t) => {
  const f = await fixture(t)
  // Outside its window with no trickle, a job waits until it is cancelled: it stays pending.
  const jobs = await f.jobs(f.target(), {
    sleep: (_ms, signal) =>
      new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })),
  })
  const { url } = await routesApp(t, jobs)
  const base = { titles: ['alpha'], window: '05:00-06:00' }
  const first = await call(`${url}/admin/prefill`, 'POST', JSON.stringify(base))
  t.match(first.json, { existing: false })
  const same = await call(`${url}/admin/prefill`, 'POST', JSON.stringify(base))
  t.same([same.json.id, same.json.existing], [first.json.id, true], 'the same job is the pending one')
  const ids = new Set([first.json.id as string])
  for (const extra of [
    { viewing: true },
    { trickleBytesPerSecond: 1000 },
    { concurrency: 1 },
    { popularity: [{ title: 'alpha', weight: 0.5 }], titles: undefined },
  ]) {
    const r = await call(`${url}/admin/prefill`, 'POST', JSON.stringify({ ...base, ...extra }))
    t.equal(r.status, 202, JSON.stringify(extra))
    t.equal(r.json.existing, false, `${JSON.stringify(extra)}: not the pending job`)
    ids.add(r.json.id as string)
  }
  t.equal(ids.size, 5, 'five jobs')
  for (const id of ids) t.equal((await call(`${url}/admin/prefill/${id}`, 'DELETE')).json.state, 'cancelled')
})
