import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { objectDir, objectName } from '../../../edge/cache/disk-format.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put, storeContract } from './store-contract.js'

const open = (dir: string, maxBytes = 700_000) =>
  DiskStore.open({ dir, maxBytes, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86_400_000 })

t.test('disk store contract', async (t) => storeContract(t, async (t) => open(tempDir(t))))

t.test('a restart rebuilds the index; temp, partial and corrupt files are dropped', async (t) => {
  const dir = tempDir(t)
  const a = await open(dir)
  const body = Buffer.alloc(10_000, 1)
  await put(a, '/vod/a/v1/720p/seg-00001.m4s', body)
  await put(a, '/vod/a/v1/720p/seg-00002.m4s', body)
  await put(a, '/vod/b/master.m3u8', body)
  await a.close()
  // A temp file left by a crash, a truncated object and a file with a flipped body byte.
  const name1 = objectName('/vod/a/v1/720p/seg-00001.m4s')
  const d1 = objectDir(dir, 'a', name1)
  writeFileSync(join(d1, `.${name1}.dead.tmp`), 'partial')
  const name2 = objectName('/vod/a/v1/720p/seg-00002.m4s')
  const f2 = join(objectDir(dir, 'a', name2), name2)
  writeFileSync(f2, readFileSync(f2).subarray(0, 5000))
  const nameB = objectName('/vod/b/master.m3u8')
  const fB = join(objectDir(dir, 'b', nameB), nameB)
  const raw = readFileSync(fB)
  raw[10] = raw[10]! ^ 0xff
  writeFileSync(fB, raw)

  const b = await open(dir)
  t.equal(b.stats().disk!.objects, 2, 'temp and truncated dropped at scan')
  t.notOk(
    readdirSync(d1).some((n) => n.endsWith('.tmp')),
    'temp file deleted',
  )
  t.ok((await b.get('/vod/a/v1/720p/seg-00001.m4s'))!.entry.body!.equals(body))
  t.notOk(await b.get('/vod/b/master.m3u8'), 'checksum mismatch is a miss')
  t.notOk(b.has('/vod/b/master.m3u8'), 'and the file is dropped')
  t.ok(b.stats().diskErrors! >= 1, 'counted')
})

t.test('protected objects survive ordinary traffic', async (t) => {
  const s = await open(tempDir(t), 400_000)
  const w = s.createWriter(meta('/vod/p/v1/720p/seg-00001.m4s', { protected: true }))
  const body = Buffer.alloc(100_000, 3)
  w.write(body)
  const { crc32 } = await import('node:zlib')
  t.ok(await w.commit({ bodyLength: body.length, crc32: crc32(body) }))
  for (let i = 0; i < 20; i++)
    await put(s, `/vod/o/v1/720p/seg-${String(i).padStart(5, '0')}.m4s`, Buffer.alloc(50_000, i))
  t.ok(s.has('/vod/p/v1/720p/seg-00001.m4s'), 'protected object kept')
  t.ok(s.stats().disk!.bytes <= 400_000)
})

t.test('an unwritable directory is counted, not thrown', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'not-a-dir')
  writeFileSync(file, 'x')
  const s = await open(file)
  t.notOk(await put(s, '/vod/a/master.m3u8', Buffer.alloc(100)))
  t.ok(s.stats().diskErrors! >= 1)
  const ro = join(dir, 'ro')
  mkdirSync(join(ro, 'objects'), { recursive: true })
  const s2 = await open(ro)
  chmodSync(join(ro, 'objects'), 0o500)
  t.teardown(() => chmodSync(join(ro, 'objects'), 0o700))
  const e = await put(s2, '/vod/a/master.m3u8', Buffer.alloc(100))
  // root may write anyway; either way nothing throws and the store answers.
  t.ok(e === undefined ? s2.stats().diskErrors! >= 1 : s2.has('/vod/a/master.m3u8'))
})
