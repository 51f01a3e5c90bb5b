/**
 * One contract, two backends: the local directory and the S3-compatible object store (Swift
 * with s3api, scripts/object-store.sh), the latter with its pointers in the bucket and with its
 * catalogue in etcd (scripts/etcd.sh). Publish, re-publish, the pointer's compare-and-swap
 * (one of two racing swaps wins), concurrent publishes of one title (no version lost, readers
 * always see one whole version), retire's deletion, and a publishing process killed with
 * SIGKILL before its pointer switch (the old version stays served).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ContentStore, type TitleEntry } from '../../origin/store/content-store.js'
import { retireVersions } from '../../origin/store/retire.js'
import type { OriginStore } from '../../origin/store/store.js'
import { parseVodPath } from '../../src/http/paths.js'
import { requireEtcd } from '../helpers/etcd.js'
import { tempDir } from '../helpers/origin.js'
import { freshS3Url, openS3Store, requireS3, s3StoreOptions, s3TestEnv } from '../helpers/object-store.js'
import { readPath, stageVersion, testVersionId, wholeVersionOf } from '../helpers/store-fixtures.js'
import { root } from '../helpers/repo.js'

const repo = root

interface Backend {
  name: string
  /** A fresh empty store, and the options a child process opens the same store with. */
  make(t: Test): Promise<{ store: OriginStore; childOptions: Record<string, unknown> } | undefined>
}

const backends: Backend[] = [
  {
    name: 'local directory',
    async make(t) {
      const root = join(await tempDir(t), 'store')
      return { store: await new ContentStore(root).init(), childOptions: { store: root } }
    },
  },
  {
    name: 's3 (Swift s3api)',
    async make(t) {
      const env = requireS3(t)
      if (!env) return undefined
      const url = freshS3Url()
      const store = await openS3Store(t, env, { store: url, partSize: 5 * 1024 * 1024 })
      return { store, childOptions: { ...s3StoreOptions(env, url), s3PointerTtl: 0 } }
    },
  },
  {
    name: 's3 (Swift s3api) with the catalogue in etcd',
    async make(t) {
      const env = requireS3(t)
      const etcd = env && requireEtcd(t)
      if (!env || !etcd) return undefined
      const url = freshS3Url()
      const store = await openS3Store(t, env, { store: url, etcd })
      t.equal(store.casMode, 'etcd')
      return {
        store,
        childOptions: { ...s3StoreOptions(env, url), s3PointerTtl: 0, s3Cas: 'etcd', s3Etcd: etcd },
      }
    },
  },
]

for (const backend of backends) {
  t.test(backend.name, async (t) => {
    t.test('publish, read, ranges, catalogue', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const a = await stageVersion(store, testVersionId())
      const entry = await store.publish('show', a.dir, a.version, new Date())
      t.equal(entry.current, a.version.id)
      t.equal((await store.readTitle('show'))?.current, a.version.id, 'the pointer names the version')
      t.same(
        (await store.listTitles()).map((e) => e.id),
        ['show'],
      )
      t.match((await readPath(store, '/vod/show/master.m3u8'))?.toString(), `${a.version.id}/240p/index.m3u8`)
      const seg = `/vod/show/${a.version.id}/240p/seg-00001.m4s`
      t.same(await readPath(store, seg), a.seg, 'the segment bytes')
      t.same(await readPath(store, seg, [10, 19]), a.seg.subarray(10, 20), 'a byte range')
      const obj = (await store.open(parseVodPath(seg)!))!
      t.equal(obj.size, a.seg.length)
      t.match(obj.etag, /^".+"$/, 'a quoted strong ETag')
      t.ok(obj.lastModified.getTime() > 0)
      t.equal(
        await readPath(store, `/vod/show/${testVersionId()}/240p/seg-00001.m4s`),
        undefined,
        'unknown version',
      )
      t.equal(await readPath(store, '/vod/other/master.m3u8'), undefined, 'unknown title')
      t.equal(await store.readTitle('other'), undefined)
    })

    t.test('a re-publish switches the pointer; the old version stays servable', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const a = await stageVersion(store, testVersionId())
      await store.publish('show', a.dir, a.version, new Date())
      const b = await stageVersion(store, testVersionId())
      const entry = await store.publish('show', b.dir, b.version, new Date())
      t.equal(entry.current, b.version.id)
      t.same(entry.versions.map((v) => v.id).sort(), [a.version.id, b.version.id].sort())
      t.equal(await wholeVersionOf(store, 'show'), b.version.id, 'the master names the new version')
      t.same(
        await readPath(store, `/vod/show/${a.version.id}/240p/seg-00001.m4s`),
        a.seg,
        'old segment served',
      )
    })

    t.test('two swaps from one pointer: exactly one wins', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const a = await stageVersion(store, testVersionId())
      await store.publish('race', a.dir, a.version, new Date())
      const { entry, token } = await store.readPointer('race')
      const mk = (who: string): TitleEntry => ({ ...entry!, updatedAt: who })
      const results = await Promise.all([
        store.swapPointer('race', token, mk('x')),
        store.swapPointer('race', token, mk('y')),
      ])
      t.equal(results.filter(Boolean).length, 1, `one swap won: ${JSON.stringify(results)}`)
      const winner = results[0] ? 'x' : 'y'
      t.equal((await store.readTitle('race'))?.updatedAt, winner, 'the pointer is the winner’s')
      t.notOk(await store.swapPointer('race', token, mk('z')), 'a stale token never wins')
      t.notOk(await store.swapPointer('fresh', 'not-a-token', mk('z')), 'nor a token for a missing pointer')
    })

    t.test('concurrent publishes of one title: none lost, readers see whole versions', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const first = await stageVersion(store, testVersionId())
      await store.publish('busy', first.dir, first.version, new Date())
      const staged = await Promise.all([0, 1, 2].map(() => stageVersion(store, testVersionId())))
      let publishing = true
      const seen = new Set<string>()
      const reader = (async () => {
        while (publishing) seen.add(await wholeVersionOf(store, 'busy'))
      })()
      const entries = await Promise.all(
        staged.map((s) => store.publish('busy', s.dir, s.version, new Date())),
      )
      publishing = false
      await reader
      const final = (await store.readTitle('busy'))!
      const ids = [first, ...staged].map((s) => s.version.id)
      t.same(final.versions.map((v) => v.id).sort(), [...ids].sort(), 'every version is in the pointer')
      t.ok(
        staged.some((s) => s.version.id === final.current),
        'the current version is one of the publishes',
      )
      t.ok(
        entries.some((e) => e.current === final.current),
        'and it is what its publish returned',
      )
      t.ok(
        [...seen].every((v) => ids.includes(v)),
        `readers saw only whole versions: ${[...seen].join(' ')}`,
      )
      t.equal(await wholeVersionOf(store, 'busy'), final.current)
    })

    t.test('deleteVersion removes a version', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const a = await stageVersion(store, testVersionId())
      await store.publish('gone', a.dir, a.version, new Date())
      const b = await stageVersion(store, testVersionId())
      await store.publish('gone', b.dir, b.version, new Date())
      await store.deleteVersion('gone', a.version.id)
      t.equal(
        await readPath(store, `/vod/gone/${a.version.id}/240p/seg-00001.m4s`),
        undefined,
        'its objects are gone',
      )
      t.equal(await wholeVersionOf(store, 'gone'), b.version.id, 'the current version is untouched')
    })

    t.test('retire: out of the pointer first, deleted after the grace period', async (t) => {
      const made = await backend.make(t)
      if (!made) return
      const { store } = made
      const staged = []
      for (let i = 0; i < 3; i++) {
        const s = await stageVersion(store, testVersionId())
        s.version.createdAt = new Date(Date.UTC(2026, 0, 1 + i)).toISOString()
        await store.publish('old', s.dir, s.version, new Date())
        staged.push(s)
      }
      const [a, b, c] = staged.map((s) => s.version.id) as [string, string, string]
      const now = new Date(Date.UTC(2026, 1, 1))
      const first = await retireVersions(store, 'old', { keep: 2, graceMs: 3_600_000, now })
      t.same(first, { retired: [a], deleted: [], waiting: [a] })
      const entry = (await store.readTitle('old'))!
      t.same(entry.versions.map((v) => v.id).sort(), [b, c].sort(), 'the pointer keeps the 2 newest')
      t.ok(
        await readPath(store, `/vod/old/${a}/240p/seg-00001.m4s`),
        'the retired version is served in its grace',
      )
      const later = new Date(now.getTime() + 3_600_000)
      const second = await retireVersions(store, 'old', { keep: 2, graceMs: 3_600_000, now: later })
      t.same(second, { retired: [], deleted: [a], waiting: [] })
      t.equal(await readPath(store, `/vod/old/${a}/240p/seg-00001.m4s`), undefined, 'deleted after it')
      t.equal(await wholeVersionOf(store, 'old'), c, 'the current version is untouched')
      await t.rejects(retireVersions(store, 'none', { keep: 1, graceMs: 0, now }), {
        code: 'CDN_ERR_NOT_FOUND',
      })
    })

    t.test(
      'SIGKILL of a publishing process before its pointer switch: the old version is served',
      async (t) => {
        const made = await backend.make(t)
        if (!made) return
        const { store, childOptions } = made
        const a = await stageVersion(store, testVersionId())
        await store.publish('crash', a.dir, a.version, new Date())
        // The child publishes with the real (compiled) store, and stops at the pointer swap.
        const childDir = await tempDir(t)
        const child = join(childDir, 'publish-child.mjs')
        const b = testVersionId()
        await writeFile(
          child,
          `import { openStore } from ${JSON.stringify(join(repo, 'dist/origin/store/open-store.js'))}
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
const store = await openStore({ ...${JSON.stringify(childOptions)}, workDir: ${JSON.stringify(join(childDir, 'work'))} })
store.swapPointer = async () => { process.stdout.write('swapping\\n'); await new Promise(() => {}) }
const dir = await store.createStaging('child')
await mkdir(join(dir, '240p'), { recursive: true })
for (const f of ['init.mp4', 'seg-00001.m4s', 'index.m3u8']) await writeFile(join(dir, '240p', f), 'x'.repeat(100))
await writeFile(join(dir, 'master.m3u8'), '#EXTM3U\\n')
const version = { id: ${JSON.stringify(b)}, createdAt: new Date().toISOString(), format: 'fmp4', segmentSeconds: 4, durationSec: 4, bytes: 300, renditions: [] }
await writeFile(join(dir, 'version.json'), JSON.stringify(version))
await store.publish('crash', dir, version, new Date())
`,
        )
        const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        proc.stdout.setEncoding('utf8')
        await new Promise<void>((res, rej) => {
          proc.stdout.on('data', (d: string) => {
            out += d
            if (out.includes('swapping')) res()
          })
          proc.on('exit', (code) => rej(new Error(`the child exited (${code}) before its swap`)))
        })
        proc.kill('SIGKILL')
        await once(proc, 'close')
        t.equal(
          (await store.readTitle('crash'))?.current,
          a.version.id,
          'the pointer still names the old version',
        )
        t.equal(await wholeVersionOf(store, 'crash'), a.version.id, 'which is served whole')
        t.equal(
          await readPath(store, `/vod/crash/${b}/240p/seg-00001.m4s`),
          undefined,
          'the killed version is not served',
        )
        const c = await stageVersion(store, testVersionId())
        t.equal(
          (await store.publish('crash', c.dir, c.version, new Date())).current,
          c.version.id,
          'the next publish works',
        )
      },
    )
  })
}

t.test('the test store is real: a stored object reads back through a new store', async (t) => {
  const made = await backends[1]!.make(t)
  if (!made) return
  const a = await stageVersion(made.store, testVersionId(), 6 * 1024 * 1024)
  await made.store.publish('big', a.dir, a.version, new Date())
  const again = await openS3Store(t, s3TestEnv()!, {
    store: made.childOptions.store as string,
  })
  t.same(
    await readPath(again, `/vod/big/${a.version.id}/240p/seg-00001.m4s`),
    a.seg,
    'a multipart object (6 MiB, 5 MiB parts) reads back whole',
  )
})
