/** POST /jobs: bearer token, ingest-dir confinement, body validation, a job run to the end. */
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { ensureSamples } from '../../origin/samples.js'
import { sampleSource } from '../helpers/media.js'
import { startOrigin, tempDir } from '../helpers/origin.js'

const dir = await tempDir(t)
const ingestDir = join(dir, 'ingest')
await mkdir(ingestDir)
await copyFile(await sampleSource({ seconds: 6, width: 426, height: 240 }), join(ingestDir, 'ok.mp4'))
await writeFile(join(dir, 'secret.mp4'), 'outside the ingest dir')
await symlink(join(dir, 'secret.mp4'), join(ingestDir, 'link.mp4'))
const origin = await startOrigin(t, { store: join(dir, 'store'), ingestDir, adminToken: 'tok' })

const post = (body: unknown, token: string | undefined = 'tok') =>
  fetch(`${origin.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })

t.test('the job API needs the bearer token', async (t) => {
  const none = await post({ source: 'ok.mp4', title: 'a' }, '')
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="cdn-origin"', 'a 401 carries its challenge')
  const wrong = await post({ source: 'ok.mp4', title: 'a' }, 'wrong')
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="cdn-origin", error="invalid_token"')
  const list = await fetch(`${origin.url}/jobs`)
  t.equal(list.status, 401)
  t.equal(list.headers.get('www-authenticate'), 'Bearer realm="cdn-origin"')
  t.equal((await fetch(`${origin.url}/jobs/job-1`)).status, 401)
  const closed = await startOrigin(t, { store: join(dir, 'store2'), ingestDir })
  const r = await fetch(`${closed.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: '{"source":"ok.mp4","title":"a"}',
  })
  t.equal(r.status, 403, 'no admin token configured: the API is off')
  t.equal(r.headers.get('www-authenticate'), null, 'no challenge: no token would do')
})

t.test('sources never leave the ingest directory', async (t) => {
  for (const source of [
    '../secret.mp4',
    '/etc/passwd',
    join(dir, 'secret.mp4'),
    'a/../../secret.mp4',
    'link.mp4',
    'ok.mp4\0x',
  ]) {
    const r = await post({ source, title: 'a' })
    t.equal(r.status, 400, `${JSON.stringify(source)} refused`)
    t.match(await r.json(), { error: { code: 'CDN_ERR_BAD_BODY' } })
  }
  t.equal((await post({ source: 'missing.mp4', title: 'a' })).status, 404)
})

t.test('bad bodies are 400 with a JSON error', async (t) => {
  for (const body of [
    { source: 'ok.mp4', title: 'Bad Title' },
    { source: 'ok.mp4' },
    { source: 'ok.mp4', title: 'a', ladder: ['4k'] },
    { source: 'ok.mp4', title: 'a', format: 'webm' },
    { source: 'ok.mp4', title: 'a', segmentSeconds: 0 },
    { source: 'ok.mp4', title: 'a', colour: 'red' },
  ]) {
    const r = await post(body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.match(await r.json(), { error: { code: /^CDN_ERR_BAD_/ } })
  }
  const raw = await fetch(`${origin.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer tok' },
    body: '{not json',
  })
  t.equal(raw.status, 400)
})

t.test("a body fastify refuses carries our code and message, never fastify's code", async (t) => {
  const send = async (body: string, contentType: string) => {
    const r = await fetch(`${origin.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: 'Bearer tok' },
      body,
    })
    return { status: r.status, body: (await r.json()) as { error: Record<string, unknown> } }
  }
  const cases: Array<[string, string, string, number, string, RegExp]> = [
    [
      'not JSON',
      'x=1',
      'application/x-www-form-urlencoded',
      415,
      'CDN_ERR_UNSUPPORTED_MEDIA_TYPE',
      /^unsupported media type "application\/x-www-form-urlencoded": bodies here are application\/json$/,
    ],
    [
      'a missing field',
      '{"source":"ok.mp4"}',
      'application/json',
      400,
      'CDN_ERR_BAD_BODY',
      /^body must have required property 'title'$/,
    ],
    [
      'a bad field',
      '{"source":"ok.mp4","title":"a","segmentSeconds":0}',
      'application/json',
      400,
      'CDN_ERR_BAD_BODY',
      /^body\/segmentSeconds must be >= 1$/,
    ],
    ['bad JSON', '{not json', 'application/json', 400, 'CDN_ERR_BAD_BODY', /^body is not valid JSON$/],
    ['an empty JSON body', '', 'application/json', 400, 'CDN_ERR_BAD_BODY', /^body is empty/],
    [
      'a body over 16 KiB',
      JSON.stringify({ source: 'x'.repeat(17_000), title: 'a' }),
      'application/json',
      413,
      'CDN_ERR_BODY_TOO_LARGE',
      /^request body too large$/,
    ],
  ]
  for (const [name, body, type, status, code, message] of cases) {
    const r = await send(body, type)
    t.equal(r.status, status, name)
    t.equal(r.body.error.code, code, `${name}: ${code}`)
    t.match(r.body.error.message, message, `${name}: our message`)
    t.same(Object.keys(r.body.error).sort(), ['code', 'message'], `${name}: no cause`)
  }
})

t.test('a job runs to success and its title is served', async (t) => {
  const r = await post({ source: 'ok.mp4', title: 'posted', segmentSeconds: 2 })
  t.equal(r.status, 202)
  const { id } = (await r.json()) as { id: string }
  t.match(id, /^job-/)
  // Wait on the queue itself (no sleeping), then read the API.
  await origin.app.jobs.wait(id)
  const job = (await (
    await fetch(`${origin.url}/jobs/${id}`, { headers: { authorization: 'Bearer tok' } })
  ).json()) as {
    state: string
    progress: number
    version: string
    source: string
  }
  t.equal(job.state, 'succeeded')
  t.equal(job.source, 'ok.mp4', 'the source as the client named it')
  const list = await (await fetch(`${origin.url}/jobs`, { headers: { authorization: 'Bearer tok' } })).text()
  t.notMatch(list, dir, 'no local path in the job list')
  t.equal(job.progress, 1)
  t.match(job.version, /^v/)
  t.equal((await fetch(`${origin.url}/vod/posted/master.m3u8`)).status, 200)
  const metrics = await (await fetch(`${origin.url}/metrics`)).text()
  t.match(metrics, /cdn_origin_ingest_jobs_total\{state="succeeded"\} 1/)
  t.equal(
    (await fetch(`${origin.url}/jobs/job-nope`, { headers: { authorization: 'Bearer tok' } })).status,
    404,
  )
})

t.test('rungs that cannot fit the source are refused at once, naming those that fit; no job', async (t) => {
  const jobs = async () =>
    (
      (await (await fetch(`${origin.url}/jobs`, { headers: { authorization: 'Bearer tok' } })).json()) as {
        jobs: unknown[]
      }
    ).jobs.length
  const before = await jobs()
  const r = await post({ source: 'ok.mp4', title: 'askhd', ladder: ['1080p', '720p'] })
  t.equal(r.status, 400, 'not a 202 and a job failing later')
  const body = (await r.json()) as { error: { code: string; message: string } }
  t.equal(body.error.code, 'CDN_ERR_BAD_REQUEST', 'the code the job failed with')
  t.match(body.error.message, /no requested rung \(1080p, 720p\) fits a 240-line source.*ask for 240p$/)
  t.notMatch(body.error.message, dir, 'no local path')
  // An unreadable source with rungs is refused by the same probe, with the job's code.
  await writeFile(join(ingestDir, 'junk-rungs.mp4'), 'this is not a video')
  const junk = await post({ source: 'junk-rungs.mp4', title: 'junkrungs', ladder: ['240p'] })
  t.equal(junk.status, 422)
  const junkBody = await junk.text()
  t.match(JSON.parse(junkBody), { error: { code: 'CDN_ERR_BAD_SOURCE', message: /Invalid data/ } })
  t.notMatch(junkBody, dir, 'no local path')
  t.equal(await jobs(), before, 'no job created')
  const fits = await post({ source: 'ok.mp4', title: 'asksd', ladder: ['720p', '240p'] })
  t.equal(fits.status, 202, 'a ladder with a rung that fits is taken')
  const { id } = (await fits.json()) as { id: string }
  t.equal((await origin.app.jobs.wait(id))?.state, 'succeeded')
})

t.test('a job asking only for rungs above its source still fails when it runs (a backstop)', async (t) => {
  // Submitted past the route, as if the file had changed since the request was checked.
  const { id } = origin.app.jobs.submit({ source: 'ok.mp4', title: 'askhd', ladder: ['1080p'] })
  const job = await origin.app.jobs.wait(id)
  t.equal(job?.state, 'failed')
  t.equal(job?.error?.code, 'CDN_ERR_BAD_REQUEST', 'a client error: the source is fine')
  t.match(job?.error?.message, /no requested rung \(1080p\) fits a 240-line source.*240p/)
  t.equal((await fetch(`${origin.url}/titles/askhd`)).status, 404, 'nothing published')
})

t.test('a source that is not a video is refused at once without a ladder too: 422, no job', async (t) => {
  const jobs = async () =>
    (
      (await (await fetch(`${origin.url}/jobs`, { headers: { authorization: 'Bearer tok' } })).json()) as {
        jobs: unknown[]
      }
    ).jobs.length
  const before = await jobs()
  await writeFile(join(ingestDir, 'notes.txt'), 'meeting notes, not a video\n')
  const r = await post({ source: 'notes.txt', title: 'notes' })
  t.equal(r.status, 422, 'not a 202 and a job failing later')
  const text = await r.text()
  t.match(JSON.parse(text), {
    error: { code: 'CDN_ERR_BAD_SOURCE', message: /^cannot read source: notes\.txt: .*Invalid data/ },
  })
  t.notMatch(text, dir, 'no local path')
  t.equal(await jobs(), before, 'no job created')
  t.equal((await fetch(`${origin.url}/titles/notes`)).status, 404, 'nothing published')
})

t.test("a failing job reports ffmpeg's reason; a full queue is 503", async (t) => {
  await writeFile(join(ingestDir, 'junk.mp4'), 'this is not a video')
  // Submitted past the route (which refuses it, above), as if the file had changed since.
  const { id } = origin.app.jobs.submit({ source: 'junk.mp4', title: 'junk' })
  const job = await origin.app.jobs.wait(id)
  t.equal(job?.state, 'failed')
  t.equal(job?.error?.code, 'CDN_ERR_BAD_SOURCE')
  t.match(job?.error?.message, /Invalid data/)
  t.equal((await fetch(`${origin.url}/titles/junk`)).status, 404, 'nothing published')

  const full = await startOrigin(t, {
    store: join(dir, 'store3'),
    ingestDir,
    adminToken: 'tok',
    maxQueuedJobs: 0,
  })
  const q = await fetch(`${full.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer tok' },
    body: '{"source":"ok.mp4","title":"a"}',
  })
  t.equal(q.status, 503)
})

t.test('a sample title is ingested from the store, its job naming the file only', async (t) => {
  const name = 'smp-426x240-6s.mp4'
  await mkdir(origin.contentStore.sourcesDir(), { recursive: true })
  await copyFile(
    await sampleSource({ seconds: 6, width: 426, height: 240 }),
    join(origin.contentStore.sourcesDir(), name),
  )
  const [id] = await ensureSamples({
    samples: [{ title: 'smp', seconds: 6 }],
    size: { width: 426, height: 240 },
    store: origin.contentStore,
    jobs: origin.app.jobs,
    ffmpeg: fixtureFfmpeg(),
  })
  const job = await origin.app.jobs.wait(id!)
  t.equal(job?.state, 'succeeded', 'read from the store, outside the ingest directory')
  t.equal(job?.source, name, 'shown by its name, not its path')
  t.equal((await fetch(`${origin.url}/vod/smp/master.m3u8`)).status, 200)
})
