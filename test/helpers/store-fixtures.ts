/**
 * What the origin store tests share: a staged version as an ingest leaves it, reading an object
 * back whole, and a `cdn origin` process on the test object store.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Test } from 'tap'
import type { VersionEntry } from '../../origin/store/content-store.js'
import type { OriginStore } from '../../origin/store/store.js'
import { parseVodPath } from '../../src/http/paths.js'
import type { S3TestEnv } from './object-store.js'
import { tempDir } from './origin.js'
import { cli } from './repo.js'

let seq = 0
/** A version id unique in this run, in the store's shape (`vYYYYMMDDThhmmssZ-…`). */
export function testVersionId(day = '20260101'): string {
  return `v${day}T00000${seq++ % 10}Z-${randomBytes(3).toString('hex')}`
}

/** A staged version as an ingest leaves it: a master, one rendition of one segment, its manifest. */
export async function stageVersion(
  store: OriginStore,
  id: string,
  segBytes = 1000,
): Promise<{ dir: string; version: VersionEntry; seg: Buffer }> {
  const dir = await store.createStaging(`test-${id}`)
  const seg = randomBytes(segBytes)
  await mkdir(join(dir, '240p'), { recursive: true })
  await writeFile(join(dir, '240p', 'init.mp4'), randomBytes(64))
  await writeFile(join(dir, '240p', 'seg-00001.m4s'), seg)
  await writeFile(
    join(dir, '240p', 'index.m3u8'),
    '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\nseg-00001.m4s\n#EXT-X-ENDLIST\n',
  )
  await writeFile(
    join(dir, 'master.m3u8'),
    `#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n${id}/240p/index.m3u8\n`,
  )
  const version: VersionEntry = {
    id,
    createdAt: new Date().toISOString(),
    format: 'fmp4',
    segmentSeconds: 4,
    durationSec: 4,
    bytes: segBytes + 64,
    renditions: [],
  }
  await writeFile(join(dir, 'version.json'), JSON.stringify(version))
  return { dir, version, seg }
}

/** A body the store returned (a buffer or a stream), whole. */
export async function bytesOf(body: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** The bytes the store serves at a /vod path (a range when given), or undefined when it has none. */
export async function readPath(
  store: OriginStore,
  path: string,
  range?: [number, number],
): Promise<Buffer | undefined> {
  const obj = await store.open(parseVodPath(path)!)
  if (!obj) return undefined
  return bytesOf(await obj.read(range?.[0] ?? 0, range?.[1] ?? obj.size - 1))
}

/** The version a master read names, after checking every object of it opens. */
export async function wholeVersionOf(store: OriginStore, title: string): Promise<string> {
  const master = (await readPath(store, `/vod/${title}/master.m3u8`))!.toString()
  const v = /^(v[^/]+)\/240p\/index\.m3u8$/m.exec(master)![1]!
  for (const f of ['index.m3u8', 'init.mp4', 'seg-00001.m4s'])
    if (!(await readPath(store, `/vod/${title}/${v}/240p/${f}`))) throw new Error(`${v}/240p/${f} missing`)
  return v
}

export interface CliOrigin {
  proc: ChildProcess
  base: string
  /** What the process printed on stdout so far. */
  log(): string
}

/**
 * A `cdn origin` process (the built CLI) over `url` on the test object store, on a free port,
 * killed on teardown; resolves with its base URL once it says it listens.
 */
export async function startCliOrigin(
  t: Test,
  env: S3TestEnv,
  url: string,
  id: string,
  opts: { args?: string[]; env?: Record<string, string>; logLevel?: string } = {},
): Promise<CliOrigin> {
  const work = await tempDir(t)
  const args = [
    'origin',
    '--store',
    url,
    '--s3-endpoint',
    env.endpoint,
    '--id',
    id,
    '--port',
    '0',
    '--work-dir',
    work,
  ]
  const proc = spawn(process.execPath, [cli, ...args, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      CDN_LOG_LEVEL: opts.logLevel ?? 'warn',
      ...opts.env,
    },
  })
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  let out = ''
  let err = ''
  proc.stdout.setEncoding('utf8')
  proc.stderr.setEncoding('utf8')
  proc.stderr.on('data', (d: string) => (err += d))
  const base = await new Promise<string>((res, rej) => {
    proc.stdout.on('data', (d: string) => {
      out += d
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) res(m[1]!)
    })
    proc.on('exit', (code) => rej(new Error(`origin ${id} exited ${code}: ${out}${err}`)))
  })
  return { proc, base, log: () => out }
}
