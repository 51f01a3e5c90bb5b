/**
 * Several stateless origins on one object store (Swift with s3api): a job submitted to a
 * follower is run once, by the writer, with its progress visible from both; both serve the
 * title with the same validators, ranges and 304s; and two real `cdn origin` processes behind
 * one edge lose one to SIGKILL mid-load with no failed player request.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cp, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import { fixtureFfmpeg, sampleSource } from '../../fixtures/media.js'
import { buildOriginApp, type OriginApp } from '../../origin/app.js'
import type { TitleEntry } from '../../origin/store/content-store.js'
import type { S3Store } from '../../origin/store/s3-store.js'
import { startEdge } from '../helpers/edge.js'
import { freshS3Url, openS3Store, requireS3 } from '../helpers/object-store.js'
import { cachedIngest, tempDir } from '../helpers/origin.js'
import { metricAt, until } from '../helpers/wait.js'
import { startCliOrigin } from '../helpers/store-fixtures.js'

async function listen(t: Test, app: OriginApp): Promise<string> {
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (!addr || typeof addr === 'string') throw new Error('no port')
  return `http://127.0.0.1:${addr.port}`
}

/** Publishes the cached fixture ingest to `store` as `title`; returns its object paths. */
async function publishFixture(
  t: Test,
  store: S3Store,
  title: string,
  edit?: (staged: string) => Promise<void>,
): Promise<string[]> {
  const root = await cachedIngest({ seconds: 8, width: 426, height: 240 })
  const entry = JSON.parse(await readFile(join(root, 'titles/fixture/title.json'), 'utf8')) as TitleEntry
  const version = entry.versions.find((v) => v.id === entry.current)!
  const staged = join(await tempDir(t), version.id)
  await cp(join(root, 'titles/fixture', version.id), staged, { recursive: true })
  await edit?.(staged)
  await store.publish(title, staged, version, new Date())
  const files: string[] = []
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name))
      else if (/\.(m3u8|mp4|m4s)$/.test(e.name) && e.name !== 'master.m3u8')
        files.push(`/vod/${title}/${version.id}/${relative(staged, join(d, e.name))}`)
    }
  }
  await walk(staged)
  return [`/vod/${title}/master.m3u8`, ...files.sort()]
}

t.test('a job submitted to a follower runs once, on the writer; both origins serve it', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const url = freshS3Url()
  const ingestDir = await tempDir(t)
  await cp(await sampleSource({ seconds: 4, width: 426, height: 240 }), join(ingestDir, 'in.mp4'))
  const common = { adminToken: 'tok', ingestDir, jobPollMs: 20, logLevel: 'silent' }
  const writerStore = await openS3Store(t, env, { store: url })
  const followerStore = await openS3Store(t, env, { store: url })
  t.equal(writerStore.casMode, 'single-writer', 'Swift has no conditional PUT: detected')
  const writer = buildOriginApp({
    config: { ...common, id: 'w' },
    store: writerStore,
    ffmpeg: fixtureFfmpeg(),
  })
  const follower = buildOriginApp({
    config: { ...common, id: 'f', follower: true },
    store: followerStore,
    ffmpeg: fixtureFfmpeg(),
  })
  const [w, f] = [await listen(t, writer), await listen(t, follower)]
  const auth = { authorization: 'Bearer tok' }
  const res = await fetch(`${f}/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ source: 'in.mp4', title: 'shared', ladder: ['240p'] }),
  })
  t.equal(res.status, 202)
  const { id } = (await res.json()) as { id: string }
  const seen = new Set<string>()
  await until(async () => {
    const job = (await (await fetch(`${f}/jobs/${id}`, { headers: auth })).json()) as { state: string }
    seen.add(job.state)
    return job.state === 'succeeded' || job.state === 'failed'
  }, 20)
  const fromFollower = (await (await fetch(`${f}/jobs/${id}`, { headers: auth })).json()) as Record<
    string,
    unknown
  >
  t.equal(fromFollower.state, 'succeeded', 'the follower shows the job succeeded')
  t.equal(fromFollower.source, 'in.mp4', 'the source as the client named it, no local path')
  t.match(fromFollower.version, /^v/)
  t.same(
    (await (await fetch(`${w}/jobs/${id}`, { headers: auth })).json()) as unknown,
    fromFollower,
    'the same view on both',
  )
  t.ok(
    seen.has('queued') || seen.has('running'),
    `progress was visible on the follower: ${[...seen].join(',')}`,
  )
  t.equal(
    await metricAt(`${w}/metrics`, 'cdn_origin_ingest_jobs_total', { state: 'succeeded' }),
    1,
    'the writer ran it',
  )
  t.equal(
    await metricAt(`${f}/metrics`, 'cdn_origin_ingest_jobs_total', { state: 'running' }),
    0,
    'the follower did not',
  )
  t.equal(await writer.board!.poll(), 0, 'a later poll finds nothing left to claim')
  const list = (await (await fetch(`${f}/jobs`, { headers: auth })).json()) as { jobs: { id: string }[] }
  t.ok(
    list.jobs.some((j) => j.id === id),
    'GET /jobs lists it',
  )

  for (const base of [w, f]) {
    const m = await fetch(`${base}/vod/shared/master.m3u8`)
    t.equal(m.status, 200)
    t.match(await m.text(), `${String(fromFollower.version)}/240p/index.m3u8`)
    const titles = (await (await fetch(`${base}/titles`)).json()) as { titles: { id: string }[] }
    t.same(
      titles.titles.map((x) => x.id),
      ['shared'],
    )
    const status = (await (await fetch(`${base}/status`)).json()) as {
      store: { kind: string; casMode: string }
    }
    t.same(status.store, { kind: 's3', location: `${url}/`, casMode: 'single-writer' })
    t.equal((await fetch(`${base}/healthz`)).status, 200)
  }
  const seg = `/vod/shared/${String(fromFollower.version)}/240p/seg-00001.m4s`
  const a = await fetch(`${w}${seg}`)
  const b = await fetch(`${f}${seg}`, { headers: { range: 'bytes=100-199' } })
  const whole = Buffer.from(await a.arrayBuffer())
  t.equal(b.status, 206)
  t.same(Buffer.from(await b.arrayBuffer()), whole.subarray(100, 200), 'a range from the other origin')
  t.equal(b.headers.get('etag'), a.headers.get('etag'), 'one ETag from both origins')
  t.equal(b.headers.get('last-modified'), a.headers.get('last-modified'))
  const cond = await fetch(`${f}${seg}`, { headers: { 'if-none-match': a.headers.get('etag')! } })
  t.equal(cond.status, 304)
  const head = await fetch(`${f}${seg}`, { method: 'HEAD' })
  t.equal(head.headers.get('content-length'), String(whole.length))
})

/** Bytes of the segment an origin is killed while sending (well past loopback's socket buffers). */
const BIG_BYTES = 24 * 1024 * 1024

function kill(proc: ChildProcess): Promise<unknown> {
  proc.kill('SIGKILL')
  return once(proc, 'close')
}

t.test('two origin processes behind one edge: one killed mid-load, no player request fails', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const url = freshS3Url()
  const store = await openS3Store(t, env, { store: url })
  const paths = [
    ...(await publishFixture(t, store, 'one')),
    ...(await publishFixture(t, store, 'two')),
    ...(await publishFixture(t, store, 'three')),
  ]
  const sizes = new Map<string, number>()
  const first = await startCliOrigin(t, env, url, 'o1')
  const second = await startCliOrigin(t, env, url, 'o2', { args: ['--follower'] })
  for (const p of paths) {
    const r = await fetch(`${second.base}${p}`, { method: 'HEAD' })
    sizes.set(p, Number(r.headers.get('content-length')))
  }
  const edge = await startEdge(t, { upstream: [first.base, second.base] })
  const failures: string[] = []
  let done = 0
  let running = 0
  let killed: Promise<unknown> | undefined
  const queue = [...paths]
  // The kill lands between requests: once a third of them are done, players start no new one
  // until the origin is dead, so its pooled connections and its address are what the edge meets
  // next. A body the origin is sending when it dies is taken over from the other origin with
  // Range and If-Range (edge/upstream/resumable-body.ts; test/edge/resume.test.ts); one without a
  // validator is cut (faults.test.ts 'a truncated body').
  const player = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      if (killed) await killed
      running++
      const r = await fetch(`${edge.url}${p}`).catch((e: unknown) => e as Error)
      if (r instanceof Error) failures.push(`${p}: ${r.message}`)
      else {
        const body = Buffer.from(await r.arrayBuffer().catch(() => new ArrayBuffer(0)))
        if (r.status !== 200 || body.length !== sizes.get(p))
          failures.push(`${p}: ${r.status} ${body.length} bytes`)
      }
      running--
      if (++done === Math.floor(paths.length / 3))
        killed = until(() => running === 0).then(() => kill(first.proc))
    }
  }
  await Promise.all([player(), player(), player(), player()])
  await killed
  t.ok(killed, 'the first origin was killed during the load')
  t.same(failures, [], `no failed player request out of ${paths.length}`)
  t.ok(
    (await metricAt(`${second.base}/metrics`, 'cdn_origin_requests_total', {
      route: '/vod/*',
      method: 'GET',
    })) > 0,
    'the second origin took over',
  )
})

t.test(
  'an origin killed while it sends a body: the edge finishes it from the other, stored whole',
  async (t) => {
    const env = requireS3(t)
    if (!env) return
    const url = freshS3Url()
    const store = await openS3Store(t, env, { store: url })
    // One segment far larger than the sockets' buffers, so the first origin is still sending it
    // when it dies (its bytes are generated, not media: only the bytes are checked).
    const big = Buffer.alloc(BIG_BYTES)
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i)
    let bigFile = ''
    const paths = await publishFixture(t, store, 'big', async (staged) => {
      const rendition = (await readdir(staged, { withFileTypes: true })).find((e) => e.isDirectory())!.name
      const seg = (await readdir(join(staged, rendition))).find((f) => f.endsWith('.m4s'))!
      bigFile = `${rendition}/${seg}`
      await writeFile(join(staged, rendition, seg), big)
    })
    const path = paths.find((p) => p.endsWith(bigFile))!
    const first = await startCliOrigin(t, env, url, 'o1')
    const second = await startCliOrigin(t, env, url, 'o2', { args: ['--follower'] })
    const edge = await startEdge(t, { upstream: [first.base, second.base] })
    // A capped prefill's pace holds the body a little after each chunk: the first chunk kills the
    // first origin, mid-body by construction.
    let killed: Promise<unknown> | undefined
    const r = await edge.app.edge.flights.fill(
      { key: path, path },
      {
        protect: true,
        pace: () => {
          killed ??= kill(first.proc)
          return 2
        },
      },
    )
    await killed
    t.ok(killed, 'the first origin was killed once its body had started')
    t.same(
      [r.how, r.status, r.bytes, r.stored],
      ['fetched', 200, BIG_BYTES, true],
      'the fill completed, stored',
    )
    t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_resumes_total', { result: 'ok' }), 1)
    const got = await fetch(`${edge.url}${path}`)
    t.equal(got.headers.get('x-cache'), 'HIT-DISK', 'served from the stored copy')
    t.ok(Buffer.from(await got.arrayBuffer()).equals(big), 'every byte, in order, across the seam')
    t.ok(
      (await metricAt(`${second.base}/metrics`, 'cdn_origin_requests_total', {
        route: '/vod/*',
        method: 'GET',
      })) > 0,
      'the second origin sent the rest',
    )
  },
)
