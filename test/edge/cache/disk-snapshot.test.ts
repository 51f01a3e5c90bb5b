/**
 * The index snapshot: a restart takes the records of every bucket whose directory is as the
 * snapshot recorded it, and scans the others; files added, removed or replaced after the
 * snapshot are found, and a snapshot that cannot be used means a full scan.
 */
import { spawn } from 'node:child_process'
import {
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { encodeTrailer, objectDir, objectName } from '../../../edge/cache/disk-format.js'
import { SNAPSHOT_FILE } from '../../../edge/cache/disk-snapshot.js'
import {
  BLOCK_HEAD,
  encodeJsonBlock,
  MAGIC,
  type SnapshotHeader,
} from '../../../edge/cache/disk-snapshot-format.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { fileIdOf } from '../../../edge/cache/file-id.js'
import { tempDir } from '../../helpers/edge.js'
import { until } from '../../helpers/wait.js'
import { meta, put } from './store-contract.js'
import { repoPath } from '../../helpers/repo.js'

const open = (dir: string) =>
  DiskStore.open({ dir, maxBytes: 100_000_000, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86_400_000 })

const key = (title: number, n: number) => `/vod/t${title}/v1/360p/seg-${n}.m4s`
const body = (title: number, n: number) => Buffer.from(`object ${title}/${n}`)
const fileOf = (dir: string, k: string) =>
  join(objectDir(dir, /^\/vod\/([^/]+)/.exec(k)![1], objectName(k)), objectName(k))

/** Sets every bucket directory's mtime an hour back, as if the snapshot came long after the writes. */
function settle(dir: string): void {
  const past = new Date(Date.now() - 3_600_000)
  for (const title of readdirSync(join(dir, 'objects')))
    for (const b of readdirSync(join(dir, 'objects', title)))
      utimesSync(join(dir, 'objects', title, b), past, past)
}

/** Writes an object file directly in the on-disk format (temp name, then renamed into place). */
function writeObject(dir: string, k: string, b: Buffer, etag: string): void {
  const m = { ...meta(k, { bodyLength: b.length, crc32: crc32(b) }), headers: { ...meta(k).headers, etag } }
  const file = fileOf(dir, k)
  writeFileSync(`${file}.new`, Buffer.concat([b, encodeTrailer(m)]))
  renameSync(`${file}.new`, file)
}

async function fill(dir: string): Promise<void> {
  const s = await open(dir)
  const puts: Array<Promise<unknown>> = []
  for (let title = 0; title < 4; title++)
    for (let n = 0; n < 500; n++) puts.push(put(s, key(title, n), body(title, n)))
  await Promise.all(puts)
  t.equal(s.stats().disk!.objects, 2000)
  settle(dir)
  await s.close()
}

t.test('a restart from the snapshot finds what changed after it, bucket by bucket', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  // After the snapshot: one object added, one removed, one replaced (same key, new body and headers).
  writeObject(dir, key(0, 9999), Buffer.from('added later'), '"added"')
  unlinkSync(fileOf(dir, key(1, 7)))
  writeObject(dir, key(2, 3), Buffer.from('replaced'), '"replaced"')

  const s = await open(dir)
  t.teardown(() => s.close())
  t.equal(s.restored.scanned, 3, 'only the three changed buckets were scanned')
  t.ok(s.restored.trusted > 100, `the others came from the snapshot (${s.restored.trusted})`)
  await s.validated
  t.equal(s.stats().disk!.objects, 2000, '2000 + 1 added - 1 removed')
  t.equal((await s.get(key(0, 9999)))?.entry.body?.toString(), 'added later', 'the added file is found')
  t.notOk(s.has(key(1, 7)), 'the removed file is gone')
  const replaced = await s.get(key(2, 3))
  t.equal(replaced?.entry.body?.toString(), 'replaced', 'the replaced file is read anew')
  t.equal(replaced?.entry.etag, '"replaced"', 'with its new headers')
  t.equal((await s.get(key(3, 499)))?.entry.body?.toString(), 'object 3/499', 'a snapshot record reads')
})

t.test('a body changed in place under the snapshot is caught at its first read', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  const file = fileOf(dir, key(1, 1))
  const raw = readFileSync(file)
  raw[0] = raw[0]! ^ 0xff
  writeFileSync(file, raw)
  const s = await open(dir)
  t.teardown(() => s.close())
  t.equal(s.restored.scanned, 0, 'the bucket looks unchanged')
  t.notOk(await s.get(key(1, 1)), 'the crc32 check refuses it')
  t.notOk(s.has(key(1, 1)), 'and drops it')
})

t.test('a restored record holds its file identity, and a file replaced under it is a miss', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  const k = key(2, 5)
  const file = fileOf(dir, k)
  const rel = `t2/${file.split('/').at(-2)}`
  // Another file renamed over the object's path (a new inode); the snapshot's time of its bucket
  // set to the directory's new one, so the snapshot still vouches for the bucket.
  writeObject(dir, k, Buffer.from('another file'), '"other"')
  const past = new Date(Date.now() - 3_600_000)
  utimesSync(join(dir, 'objects', rel), past, past)
  const mtimeNs = statSync(join(dir, 'objects', rel), { bigint: true }).mtimeNs.toString()
  const snap = join(dir, SNAPSHOT_FILE)
  const file0 = readFileSync(snap)
  // The header block, right after the magic: its bucket time replaced, the rest as it was.
  const headLen = file0.readUInt32LE(MAGIC.length)
  const hEnd = MAGIC.length + BLOCK_HEAD + headLen
  const header = JSON.parse(file0.toString('utf8', MAGIC.length + BLOCK_HEAD, hEnd)) as SnapshotHeader
  header.buckets.find((b) => b[0] === rel)![1] = mtimeNs
  writeFileSync(snap, Buffer.concat([MAGIC, encodeJsonBlock('H', header), file0.subarray(hEnd)]))

  const s = await open(dir)
  t.teardown(() => s.close())
  t.equal(s.restored.scanned, 0, 'every bucket is taken from the snapshot')
  const other = s.index.get(key(2, 6))!
  t.same(other.id, fileIdOf(statSync(other.file)), 'a restored record holds its file identity')
  t.not(s.index.get(k)!.id.ino, statSync(file).ino, 'the replaced record holds the old inode')
  t.notOk(await s.get(k), 'the file of another inode is never read as the record')
  t.equal((await s.get(key(2, 6)))?.entry.body?.toString(), 'object 2/6', 'an untouched record reads')
})

t.test('a damaged or foreign snapshot means a full scan', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  // A snapshot of an older format (CDNIDX1 to 3, text lines) is not used either.
  writeFileSync(join(dir, SNAPSHOT_FILE), `CDNIDX3 {"at":${Date.now()}}\nE 0\n`)
  const old = await open(dir)
  t.equal(old.restored.scanned, -1, 'full scan of an older format')
  await old.close()
  writeFileSync(join(dir, SNAPSHOT_FILE), 'something else\n')
  const s = await open(dir)
  t.equal(s.restored.scanned, -1, 'full scan')
  t.equal(s.stats().disk!.objects, 2000)
  await s.close()
  const again = await open(dir)
  t.equal(again.restored.scanned, 0, 'the close wrote a good snapshot again')
  t.equal(again.stats().disk!.objects, 2000)
  await again.close()
})

t.test('a snapshot cut by a kill -9 leaves no temp file behind the next start', async (t) => {
  const dir = tempDir(t)
  await fill(dir)
  const leftovers = () => readdirSync(dir).filter((n) => n.startsWith(`.${SNAPSHOT_FILE}.tmp-`))
  // A process that writes the snapshot over and over (the compiled store, as a spawned edge runs
  // it), killed while a write is under way: until one kill leaves a temp file (a kill may land
  // between two writes).
  const store = repoPath('dist/edge/cache/disk-store.js')
  const script = `
    const { DiskStore } = await import(process.argv[1])
    const s = await DiskStore.open({ dir: process.argv[2], maxBytes: 100e6, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86400000 })
    for (;;) await s.snapshot()`
  while (leftovers().length === 0) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, store, dir], {
      stdio: 'ignore',
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    await until(() => leftovers().length > 0 || child.exitCode !== null, 1)
    child.kill('SIGKILL')
    await exited
  }
  t.ok(leftovers().length > 0, 'the cut write left its temp file')
  const s = await open(dir)
  t.teardown(() => s.close())
  t.same(leftovers(), [], 'the next start removed it')
  t.equal(s.stats().disk!.objects, 2000, 'and restored every object')
})

t.test('a title purged just before a kill -9 does not come back at the restart', async (t) => {
  const dir = tempDir(t)
  // The snapshot (written at close) still lists the title's objects.
  await fill(dir)
  // A process that purges a title and is killed the moment the purge is done (when an edge
  // answers the operator's DELETE), as a crash right after it would.
  const store = repoPath('dist/edge/cache/disk-store.js')
  const script = `
    const { DiskStore } = await import(process.argv[1])
    const s = await DiskStore.open({ dir: process.argv[2], maxBytes: 100e6, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86400000 })
    const n = await s.purgeTitle('t1')
    process.stdout.write(n + ' ' + s.dirSyncs)
    process.kill(process.pid, 'SIGKILL')`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, store, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const signal = await new Promise((resolve) => child.once('exit', (_code, sig) => resolve(sig)))
  t.equal(signal, 'SIGKILL')
  const [purged, synced] = out.split(' ').map(Number)
  t.equal(purged, 500, 'the purge removed the title')
  // The unlinks are durable before the answer: each directory they were in fsynced once.
  const dirs = new Set(Array.from({ length: 500 }, (_, n) => dirname(fileOf(dir, key(1, n)))))
  t.ok(dirs.size > 1, `the title's files were in ${dirs.size} directories`)
  t.equal(synced, dirs.size, 'each synced once, before the purge answered')

  const s = await open(dir)
  t.teardown(() => s.close())
  await s.validated
  const back = Array.from({ length: 500 }, (_, n) => key(1, n)).filter((k) => s.has(k))
  t.same(back, [], 'none of its objects is held again')
  t.equal(s.stats().disk!.objects, 1500, 'the other titles are')
})
