/**
 * Origins for tests. `ingestedStore` builds a store holding the titles asked for, reusing one
 * cached ingest per parameter set under .cache/fixtures, named by the transcoder's code and the
 * parameters (fixtures/cache.ts: an ingest costs seconds of CPU, so it is made once, by one
 * process, and copied after). `startOrigin` serves a store on 127.0.0.1, port 0.
 * Edge, steering and prefill tests import these; keep the signatures.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { cacheName, once } from '../../fixtures/cache.js'
import { fixtureFfmpeg, fixturesCacheDir, sampleSource } from '../../fixtures/media.js'
import { buildOriginApp, type OriginApp, type OriginAppConfig } from '../../origin/app.js'
import { ContentStore, type TitleEntry } from '../../origin/store/content-store.js'
import { ingest } from '../../origin/transcode/ingest.js'

const CACHE_TITLE = 'fixture'

export interface TitleFixture {
  id: string
  seconds: number
  width?: number
  height?: number
  fps?: number
  ladder?: string[]
  format?: 'fmp4' | 'ts'
  segmentSeconds?: number
}

/** Ingests (once per transcoder version) and returns the cached store root holding title `fixture`. */
export async function cachedIngest(f: Omit<TitleFixture, 'id'>): Promise<string> {
  const params = {
    seconds: f.seconds,
    width: f.width ?? 854,
    height: f.height ?? 480,
    fps: f.fps ?? 30,
    ladder: f.ladder ?? null,
    format: f.format ?? 'fmp4',
    segmentSeconds: f.segmentSeconds ?? 4,
  }
  const target = join(fixturesCacheDir(), cacheName('ingest', params))
  const ready = (dir: string) => existsSync(join(dir, 'titles', CACHE_TITLE, 'title.json'))
  return once(target, ready, () => makeIngest(target, params, f.ladder))
}

async function makeIngest(
  target: string,
  params: {
    seconds: number
    width: number
    height: number
    fps: number
    format: 'fmp4' | 'ts'
    segmentSeconds: number
  },
  ladder: string[] | undefined,
): Promise<void> {
  const source = await sampleSource({
    seconds: params.seconds,
    width: params.width,
    height: params.height,
    fps: params.fps,
  })
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await ingest(source, {
      title: CACHE_TITLE,
      store: tmp,
      ladder,
      format: params.format,
      segmentSeconds: params.segmentSeconds,
      ffmpeg: fixtureFfmpeg(),
    })
    await rm(join(tmp, 'staging'), { recursive: true, force: true })
    // Made under the lock of once(): no other process writes this target.
    await rename(tmp, target)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/** Copies the cached title into `storeRoot` under a new id. */
export async function copyTitle(cachedRoot: string, storeRoot: string, id: string): Promise<TitleEntry> {
  const from = join(cachedRoot, 'titles', CACHE_TITLE)
  const to = join(storeRoot, 'titles', id)
  await mkdir(join(storeRoot, 'titles'), { recursive: true })
  await cp(from, to, { recursive: true })
  const entry = JSON.parse(await readFile(join(to, 'title.json'), 'utf8')) as TitleEntry
  entry.id = id
  await writeFile(join(to, 'title.json'), `${JSON.stringify(entry, null, 2)}\n`)
  return entry
}

/**
 * A fresh temp directory removed on t.teardown. (tap's fixture plugin, which provides
 * t.testdir(), is disabled in package.json.)
 */
export async function tempDir(t: Test, prefix = 'cdn-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A store directory in a per-test temp dir holding the titles asked for. */
export async function ingestedStore(t: Test, opts: { titles: TitleFixture[] }): Promise<string> {
  const root = join(await tempDir(t), 'store')
  await new ContentStore(root).init()
  for (const { id, ...params } of opts.titles) await copyTitle(await cachedIngest(params), root, id)
  return root
}

export interface StartedOrigin {
  url: string
  app: OriginApp
  /** The store root directory. */
  store: string
  contentStore: ContentStore
}

/** A real origin (fastify) on 127.0.0.1, port 0, closed on t.teardown. */
export async function startOrigin(
  t: Test,
  opts: { store: string } & Partial<OriginAppConfig>,
): Promise<StartedOrigin> {
  const { store, ...config } = opts
  const contentStore = await new ContentStore(store).init()
  const app = buildOriginApp({ config, store: contentStore, ffmpeg: fixtureFfmpeg() })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (!addr || typeof addr === 'string') throw new Error('origin did not bind a TCP port')
  return { url: `http://127.0.0.1:${addr.port}`, app, store, contentStore }
}
