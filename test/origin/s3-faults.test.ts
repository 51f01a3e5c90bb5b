/**
 * The origin on an object store that fails: a store that accepts connections and never answers
 * (every S3 request has a time limit, --s3-timeout, so the reads fail with a clean 503 and the
 * origin serves again once the store does), and a bucket that is not there (503, not the 404 of a
 * title that does not exist: an edge serves its stale master on a 503, never on a 404). The store
 * is the real one (Swift with s3api), reached through a TCP relay of the test's that can stop
 * answering.
 */
import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildOriginApp, DEFAULT_ORIGIN_APP_CONFIG } from '../../origin/app.js'
import { openStore } from '../../origin/store/open-store.js'
import { createS3Client } from '../../origin/store/s3-client.js'
import { S3Store } from '../../origin/store/s3-store.js'
import type { OriginStore } from '../../origin/store/store.js'
import {
  freshS3Url,
  openS3Store,
  requireS3,
  type S3TestEnv,
  s3StoreOptions,
  TEST_BUCKET,
} from '../helpers/object-store.js'
import { tempDir } from '../helpers/origin.js'
import { stageVersion, testVersionId } from '../helpers/store-fixtures.js'

/** A TCP relay to `target`; stalled, it drops its connections and holds new ones silent. */
async function relay(t: Test, target: URL): Promise<{ url: string; stall(): void; resume(): void }> {
  let stalled = false
  const sockets = new Set<Socket>()
  const server: Server = createServer((c) => {
    sockets.add(c)
    c.on('close', () => sockets.delete(c))
    c.on('error', () => c.destroy())
    if (stalled) return
    const up = connect(Number(target.port), target.hostname)
    sockets.add(up)
    up.on('close', () => sockets.delete(up))
    up.on('error', () => c.destroy())
    c.on('close', () => up.destroy())
    c.pipe(up).pipe(c)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stall() {
      stalled = true
      for (const s of sockets) s.destroy()
    },
    resume() {
      stalled = false
    },
  }
}

/** A fresh store URL holding one published version of `title`: the URL, its writer and the version. */
async function published(t: Test, env: S3TestEnv, title: string) {
  const url = freshS3Url()
  const writer = await openS3Store(t, env, { store: url })
  const v = testVersionId()
  const { dir, version } = await stageVersion(writer, v)
  await writer.publish(title, dir, version, new Date())
  return { url, writer, v }
}

async function serve(t: Test, store: OriginStore): Promise<string> {
  const app = buildOriginApp({ config: { ...DEFAULT_ORIGIN_APP_CONFIG }, store })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

t.test(
  'a store that stops answering: 503 CDN_ERR_STORE within --s3-timeout, then served again',
  async (t) => {
    const env = requireS3(t)
    if (!env) return
    const { url, v } = await published(t, env, 'stall')

    const r = await relay(t, new URL(env.endpoint))
    const store = await openStore({
      ...s3StoreOptions({ ...env, endpoint: r.url }, url),
      workDir: join(await tempDir(t), 'work'),
      s3PointerTtl: 0,
      s3MaxAttempts: 2,
      s3Timeout: 2000,
    })
    t.teardown(() => store.close())
    const base = await serve(t, store)
    t.equal((await fetch(`${base}/vod/stall/master.m3u8`)).status, 200, 'served through the relay')

    r.stall()
    // More reads than the S3 client has sockets (50): each held one until the store answered.
    const stalled = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        fetch(`${base}/vod/stall/${v}/240p/seg-00001.m4s`, { headers: { range: `bytes=${i}-${i}` } }).then(
          async (res) => ({
            status: res.status,
            cache: res.headers.get('cache-control'),
            body: await res.text(),
          }),
        ),
      ),
    )
    for (const s of new Set(stalled.map((x) => `${x.status} ${x.cache}`))) t.equal(s, '503 no-store')
    const body = JSON.parse(stalled[0]!.body) as { error: { code: string; message: string } }
    t.equal(body.error.code, 'CDN_ERR_STORE')
    t.notMatch(stalled[0]!.body, new URL(env.endpoint).port, 'no endpoint in the body')
    t.notMatch(stalled[0]!.body, new URL(r.url).port, 'no endpoint in the body')
    t.notMatch(stalled[0]!.body, TEST_BUCKET, 'no bucket in the body')

    r.resume()
    const again = await fetch(`${base}/vod/stall/${v}/240p/seg-00001.m4s`)
    t.equal(again.status, 200, 'the store answers again: so does the origin')
    t.equal((await again.arrayBuffer()).byteLength, 1000)
  },
)

t.test('a bucket that is not there: /vod answers 503 CDN_ERR_STORE, not 404', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const bucket = `cdn-test-missing-${randomBytes(4).toString('hex')}`
  const client = createS3Client({ ...env, maxAttempts: 1, timeoutMs: 30_000 })
  const store = await new S3Store({
    client,
    location: { bucket, prefix: 'p/' },
    workDir: join(await tempDir(t), 'work'),
    casMode: 'single-writer',
    createBucket: false,
    pointerTtlMs: 0,
  }).init()
  t.teardown(() => store.close())
  const base = await serve(t, store)
  for (const path of ['/vod/gone/master.m3u8', '/titles/gone']) {
    const res = await fetch(`${base}${path}`)
    const text = await res.text()
    t.equal(res.status, 503, `${path}: a store failure, not a missing title`)
    t.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'CDN_ERR_STORE', path)
    t.notMatch(text, bucket, 'no bucket in the body')
  }
})

t.test('a version deleted while its metadata is cached: 404 without its validators, not 503', async (t) => {
  const env = requireS3(t)
  if (!env) return
  const { url, writer, v } = await published(t, env, 'del')
  const base = await serve(t, await openS3Store(t, env, { store: url }))
  const seg = `${base}/vod/del/${v}/240p/seg-00001.m4s`
  t.equal((await fetch(seg, { headers: { range: 'bytes=0-9' } })).status, 206)
  // What retire does first, before its pointer swap drops the version.
  await writer.deleteVersion('del', v)
  const gone = await fetch(seg, { headers: { range: 'bytes=0-9' } })
  t.equal(gone.status, 404)
  t.equal(((await gone.json()) as { error: { code: string } }).error.code, 'CDN_ERR_NOT_FOUND')
  for (const h of ['etag', 'last-modified', 'content-range']) t.equal(gone.headers.get(h), null, `no ${h}`)
  t.equal((await fetch(seg)).status, 404, 'and the metadata is read again')
})
