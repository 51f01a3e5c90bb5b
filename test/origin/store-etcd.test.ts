/**
 * Two origins' stores on one Swift bucket (which has no conditional writes) with the catalogue
 * in etcd: both publish the same title at once, round after round. Each round both read the
 * same pointer revision before either swaps; exactly one swap wins, the loser's publish re-reads
 * and wins on its retry (swapWithRetry), no version is lost, and a third origin reading the
 * title meanwhile only ever sees whole versions. Job claims race the same way; neither the
 * pointer nor the claims are in the bucket.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { PointerRead, OriginStore } from '../../origin/store/store.js'
import type { S3Store } from '../../origin/store/s3-store.js'
import type { VersionEntry } from '../../origin/store/content-store.js'
import { parseVodPath } from '../../src/http/paths.js'
import { requireEtcd } from '../helpers/etcd.js'
import { freshS3Url, openS3Store, requireS3 } from '../helpers/object-store.js'
import { tempDir } from '../helpers/origin.js'

const cli = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'dist/src/cli/main.js')

async function stage(store: OriginStore, id: string): Promise<{ dir: string; version: VersionEntry }> {
  const dir = await store.createStaging(`race-${id}`)
  await mkdir(join(dir, '240p'), { recursive: true })
  await writeFile(join(dir, '240p', 'init.mp4'), randomBytes(64))
  await writeFile(join(dir, '240p', 'seg-00001.m4s'), randomBytes(2000))
  await writeFile(join(dir, '240p', 'index.m3u8'), '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\nseg-00001.m4s\n')
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
    bytes: 2064,
    renditions: [],
  }
  await writeFile(join(dir, 'version.json'), JSON.stringify(version))
  return { dir, version }
}

async function read(store: OriginStore, path: string): Promise<Buffer | undefined> {
  const obj = await store.open(parseVodPath(path)!)
  if (!obj) return undefined
  const body = await obj.read(0, obj.size - 1)
  if (Buffer.isBuffer(body)) return body
  const chunks: Buffer[] = []
  for await (const c of body as Readable) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** The version the master names, after checking every object of it is there. */
async function wholeVersionOf(store: OriginStore, title: string): Promise<string> {
  const master = (await read(store, `/vod/${title}/master.m3u8`))!.toString()
  const v = /^(v[^/]+)\/240p\/index\.m3u8$/m.exec(master)![1]!
  for (const f of ['index.m3u8', 'init.mp4', 'seg-00001.m4s'])
    if (!(await read(store, `/vod/${title}/${v}/240p/${f}`))) throw new Error(`${v}/240p/${f} missing`)
  return v
}

interface Swap {
  who: string
  won: boolean
}

/**
 * Records every swap of `store`, and holds its first pointer read of a round until the other
 * racer has read too (`gate`), so both swap from the same revision.
 */
function instrument(
  store: S3Store,
  who: string,
  swaps: Swap[],
  gate: { wait?: (who: string) => Promise<void> },
) {
  const readPointer = store.readPointer.bind(store)
  const swapPointer = store.swapPointer.bind(store)
  store.readPointer = async (title: string): Promise<PointerRead> => {
    const r = await readPointer(title)
    await gate.wait?.(who)
    return r
  }
  store.swapPointer = async (...args: Parameters<S3Store['swapPointer']>) => {
    const won = await swapPointer(...args)
    swaps.push({ who, won })
    return won
  }
}

/** A gate both racers pass together, once each. */
function barrier(): (who: string) => Promise<void> {
  const arrived = new Set<string>()
  let release!: () => void
  const all = new Promise<void>((r) => (release = r))
  return async (who) => {
    if (arrived.has(who)) return
    arrived.add(who)
    if (arrived.size === 2) release()
    await all
  }
}

let seq = 0
const versionId = () => `v20260102T00000${seq++ % 10}Z-${randomBytes(3).toString('hex')}`

t.test('two origins on one Swift bucket, catalogue in etcd: one swap wins per round', async (t) => {
  const env = requireS3(t)
  const etcd = env && requireEtcd(t)
  if (!env || !etcd) return
  const url = freshS3Url()
  const [a, b, reader] = await Promise.all([
    openS3Store(t, env, { store: url, etcd }),
    openS3Store(t, env, { store: url, etcd }),
    openS3Store(t, env, { store: url, etcd }),
  ])
  t.same(
    [a.casMode, b.casMode, reader.casMode],
    ['etcd', 'etcd', 'etcd'],
    'Swift has no conditional PUT; the catalogue is in etcd',
  )
  const first = await stage(a, versionId())
  await a.publish('race', first.dir, first.version, new Date())
  const published = [first.version.id]

  const swaps: Swap[] = []
  const gate: { wait?: (who: string) => Promise<void> } = {}
  instrument(a, 'a', swaps, gate)
  instrument(b, 'b', swaps, gate)

  let racing = true
  const seen = new Set<string>()
  const reading = (async () => {
    while (racing) seen.add(await wholeVersionOf(reader, 'race'))
  })()

  for (let round = 0; round < 3; round++) {
    const [sa, sb] = await Promise.all([stage(a, versionId()), stage(b, versionId())])
    published.push(sa.version.id, sb.version.id)
    swaps.length = 0
    gate.wait = barrier()
    const [ea, eb] = await Promise.all([
      a.publish('race', sa.dir, sa.version, new Date()),
      b.publish('race', sb.dir, sb.version, new Date()),
    ])
    const firsts = [swaps.find((s) => s.who === 'a')!, swaps.find((s) => s.who === 'b')!]
    t.equal(firsts.filter((s) => s.won).length, 1, `round ${round}: exactly one first swap won`)
    const loser = firsts.find((s) => !s.won)!.who
    t.same(
      swaps.filter((s) => s.who === loser).map((s) => s.won),
      [false, true],
      `round ${round}: the loser (${loser}) re-read and won its retry`,
    )
    t.equal(swaps.length, 3, `round ${round}: three swaps in all`)
    const final = (await reader.readTitle('race'))!
    const loserVersion = loser === 'a' ? sa.version.id : sb.version.id
    t.equal(final.current, loserVersion, `round ${round}: the last swap (the retry) is current`)
    t.equal((loser === 'a' ? ea : eb).current, loserVersion, 'and its publish returned that pointer')
    t.same(final.versions.map((v) => v.id).sort(), [...published].sort(), `round ${round}: no publish lost`)
  }
  racing = false
  await reading
  t.ok(seen.size >= 1, `the reader saw versions: ${[...seen].join(' ')}`)
  t.ok(
    [...seen].every((v) => published.includes(v)),
    'the reader only saw whole published versions',
  )

  t.same(
    (await reader.listTitles()).map((e) => e.id),
    ['race'],
    'listTitles reads etcd',
  )
  t.equal(await reader.readJson('titles/race/title.json'), undefined, 'no pointer object in the bucket')

  const claims = await Promise.all([
    a.writeJson('_cdn/jobs/job-1.claim', { owner: 'a' }, { create: true }),
    b.writeJson('_cdn/jobs/job-1.claim', { owner: 'b' }, { create: true }),
  ])
  t.equal(claims.filter(Boolean).length, 1, `one job claim won: ${JSON.stringify(claims)}`)
  t.same(await reader.listKeys('_cdn/jobs/'), [], 'claims are in etcd, not in the bucket')
})

t.test('two `cdn origin` processes, neither a follower, share the etcd catalogue', async (t) => {
  const env = requireS3(t)
  const etcd = env && requireEtcd(t)
  if (!env || !etcd) return
  const url = freshS3Url()
  const start = async (id: string, how: 'flag' | 'env') => {
    const proc = spawn(
      process.execPath,
      [
        cli,
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
        await tempDir(t),
        '--s3-cas',
        'etcd',
        ...(how === 'flag' ? ['--s3-etcd', etcd.join(',')] : []),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: env.accessKeyId,
          AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
          CDN_LOG_LEVEL: 'info',
          ...(how === 'env' ? { CDN_S3_ETCD: etcd.join(',') } : {}),
        },
      },
    )
    t.teardown(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    })
    let out = ''
    proc.stdout.setEncoding('utf8')
    const base = await new Promise<string>((res, rej) => {
      proc.stdout.on('data', (d: string) => {
        out += d
        const m = /listening on (http:\/\/\S+)/.exec(out)
        if (m) res(m[1]!)
      })
      proc.on('exit', (code) => rej(new Error(`origin ${id} exited ${code}: ${out}`)))
    })
    return { base, log: () => out }
  }
  const [o1, o2] = await Promise.all([start('o1', 'flag'), start('o2', 'env')])
  const store = await openS3Store(t, env, { store: url, etcd })
  const s = await stage(store, versionId())
  await store.publish('shared', s.dir, s.version, new Date())
  for (const o of [o1, o2]) {
    t.match(o.log(), /the catalogue \(pointers, job claims\) in etcd/, 'the start log names the rule')
    const status = (await (await fetch(`${o.base}/status`)).json()) as { store: { casMode: string } }
    t.equal(status.store.casMode, 'etcd')
    const titles = (await (await fetch(`${o.base}/titles`)).json()) as { titles: { id: string }[] }
    t.same(
      titles.titles.map((x) => x.id),
      ['shared'],
      'the catalogue API lists what etcd holds',
    )
    const master = await fetch(`${o.base}/vod/shared/master.m3u8`)
    t.match(await master.text(), `${s.version.id}/240p/index.m3u8`, 'both serve the published version')
  }
})
