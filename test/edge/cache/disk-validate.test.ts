/**
 * A restart from a stale snapshot: the tier serves at once while the buckets that changed since
 * the snapshot are scanned in the background (scanBeforeReady 0 forces it at this size). An
 * object written after the snapshot is served with its own bytes once its bucket is scanned; one
 * deleted after it is never served, not even before its bucket is scanned; a key written or
 * purged while the scan runs keeps what happened to it. Restored records build their entry on
 * first use only.
 */
import { existsSync, readdirSync, renameSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { encodeTrailer, objectDir, objectName } from '../../../edge/cache/disk-format.js'
import { DiskStore, type DiskStoreHooks } from '../../../edge/cache/disk-store.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put } from './store-contract.js'

const open = (dir: string, hooks?: DiskStoreHooks) =>
  DiskStore.open({
    dir,
    maxBytes: 100_000_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs: 86_400_000,
    scanBeforeReady: 0,
    ...(hooks ? { hooks } : {}),
  })

const key = (title: number, n: number) => `/vod/t${title}/v1/360p/seg-${n}.m4s`
const body = (title: number, n: number) => Buffer.from(`object ${title}/${n}`)
const fileOf = (dir: string, k: string) =>
  join(objectDir(dir, /^\/vod\/([^/]+)/.exec(k)![1], objectName(k)), objectName(k))

/** Writes an object file directly in the on-disk format (temp name, then renamed into place). */
function writeObject(dir: string, k: string, b: Buffer, etag: string): void {
  const m = { ...meta(k, { bodyLength: b.length, crc32: crc32(b) }), headers: { ...meta(k).headers, etag } }
  const file = fileOf(dir, k)
  writeFileSync(`${file}.new`, Buffer.concat([b, encodeTrailer(m)]))
  renameSync(`${file}.new`, file)
}

/** 800 objects over 2 titles, bucket times set an hour back, closed (the snapshot written). */
async function fill(dir: string): Promise<void> {
  const s = await open(dir)
  for (let title = 0; title < 2; title++)
    for (let n = 0; n < 400; n++) await put(s, key(title, n), body(title, n))
  const past = new Date(Date.now() - 3_600_000)
  for (const title of readdirSync(join(dir, 'objects')))
    for (const b of readdirSync(join(dir, 'objects', title)))
      utimesSync(join(dir, 'objects', title, b), past, past)
  await s.close()
}

t.test('a stale snapshot is validated while the tier serves', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  // After the snapshot: added, deleted, replaced; and two keys raced while the scan runs.
  const added = key(0, 9999)
  const deleted = key(1, 7)
  const replaced = key(0, 3)
  const written = key(1, 20)
  const purged = key(1, 21)
  writeObject(dir, added, Buffer.from('added later'), '"added"')
  unlinkSync(fileOf(dir, deleted))
  writeObject(dir, replaced, Buffer.from('replaced'), '"replaced"')
  writeObject(dir, written, Buffer.from('on disk before the start'), '"old"')
  writeObject(dir, purged, Buffer.from('purged while scanning'), '"purged"')

  const seen: string[] = []
  const box: { s?: DiskStore } = {}
  let ready!: () => void
  const opened = new Promise<void>((resolve) => (ready = resolve))
  const hooks: DiskStoreHooks = {
    validating: async (keys) => {
      await opened
      // Before any changed bucket is indexed: the snapshot's records of them are not served.
      if (!seen.length) {
        t.notOk(box.s!.has(deleted), 'a file deleted after the snapshot is not held')
        t.notOk(await box.s!.get(deleted), 'nor served')
        t.notOk(await box.s!.get(replaced), 'the replaced object is a miss until its bucket is scanned')
        t.ok(await box.s!.get(key(0, 100)), 'while an unchanged bucket serves from the snapshot')
      }
      seen.push(...keys)
      // The scan read these files; the edge writes one anew and purges another meanwhile.
      if (keys.includes(written)) await put(box.s!, written, Buffer.from('written while scanning'))
      if (keys.includes(purged)) await box.s!.delete(purged)
    },
  }
  const s = (box.s = await open(dir, hooks))
  ready()
  t.teardown(() => s.close())
  const changed = new Set(
    [added, deleted, replaced, written, purged].map((k) => fileOf(dir, k).split('/').at(-2)),
  )
  t.ok(
    s.restored.scanned >= changed.size,
    `the changed buckets are left to the background scan (${s.restored.scanned})`,
  )
  await s.validated
  t.ok(seen.includes(added) && seen.includes(written) && seen.includes(purged), 'they were scanned')
  t.equal((await s.get(added))?.entry.body?.toString(), 'added later', 'an added object: its bytes')
  const got = await s.get(replaced)
  t.equal(got?.entry.body?.toString(), 'replaced', 'a replaced object: its new bytes')
  t.equal(got?.entry.etag, '"replaced"', 'and headers')
  t.notOk(await s.get(deleted), 'a deleted object is never served')
  t.equal(
    (await s.get(written))?.entry.body?.toString(),
    'written while scanning',
    'the scan did not put back the file it had read under a newer write',
  )
  t.notOk(s.has(purged), 'the scan did not undo a purge')
  t.notOk(existsSync(fileOf(dir, purged)), 'and the purged file went')
  t.equal(s.stats().disk!.objects, 800 + 1 - 1 - 1, 'every object indexed once')
})

t.test('restored records build their entry on first use', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  const s = await open(dir)
  t.teardown(() => s.close())
  t.equal(s.restored.scanned, 0)
  t.notOk(s.index.get(key(0, 1))!.built, 'not built at start')
  t.equal((await s.get(key(0, 1)))?.entry.body?.toString(), 'object 0/1')
  t.ok(s.index.get(key(0, 1))!.built, 'built by the first read')
  t.notOk(s.index.get(key(0, 2))!.built, 'others still not')
  // A snapshot written with built and unbuilt records restores both.
  await s.close()
  const again = await open(dir)
  t.equal(again.stats().disk!.objects, 800)
  t.equal((await again.get(key(0, 1)))?.entry.body?.toString(), 'object 0/1')
  t.equal((await again.get(key(1, 399)))?.entry.body?.toString(), 'object 1/399')
  await again.close()
})
