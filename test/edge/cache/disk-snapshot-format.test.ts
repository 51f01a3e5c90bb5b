/**
 * The CDNIDX4 snapshot format and its loader: a round trip restores every record as a scan of
 * the files finds it (a lazily built entry equal to the eagerly loaded one), and a truncated,
 * damaged, foreign or inconsistent snapshot is refused (undefined: the start then scans).
 */
import { readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DiskRecord } from '../../../edge/cache/disk-record.js'
import { scanObjects } from '../../../edge/cache/disk-scan.js'
import {
  BLOCK_HEAD,
  encodeBlock,
  encodeJsonBlock,
  encodeRecords,
  MAGIC,
  RecordBlock,
  type SnapshotHeader,
  type SnapshotRecord,
} from '../../../edge/cache/disk-snapshot-format.js'
import { restore, SNAPSHOT_FILE } from '../../../edge/cache/disk-snapshot.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put } from './store-contract.js'

const OPTS = { heuristicMaxMs: 86_400_000 }
const open = (dir: string) =>
  DiskStore.open({ dir, maxBytes: 100_000_000, protectedShare: 0.5, maxFds: 8, ...OPTS })
const key = (title: string, n: number) => `/vod/${title}/v1/360p/seg-${n}.m4s`

/** A cache of 60 objects over three titles (one protected object, one key outside /vod/), settled, closed. */
async function cache(t: Test): Promise<string> {
  const dir = tempDir(t)
  const s = await open(dir)
  for (const title of ['a', 'b', 'c'])
    for (let n = 0; n < 20; n++) await put(s, key(title, n), Buffer.from(`${title} ${n}`))
  await put(s, '/robots.txt', Buffer.from('no'))
  t.ok(s.index.protect(key('b', 3), 'b', 0), 'one object protected')
  const past = new Date(Date.now() - 3_600_000)
  for (const title of readdirSync(join(dir, 'objects')))
    for (const b of readdirSync(join(dir, 'objects', title)))
      utimesSync(join(dir, 'objects', title, b), past, past)
  await s.close()
  return dir
}

async function restored(dir: string) {
  const errors: unknown[] = []
  const r = await restore(dir, OPTS, (err) => errors.push(err))
  return { r, errors }
}

t.test('a round trip restores each record as a scan finds it, its entry built on first use', async (t) => {
  const dir = await cache(t)
  const { r, errors } = await restored(dir)
  t.same(errors, [])
  t.ok(r, 'the snapshot is used')
  t.same(r!.toScan, [], 'every bucket vouched for')
  const scanned = new Map(
    (await scanObjects(dir, OPTS, (err) => t.fail(String(err)))).map((f) => [f.rec.key, f.rec]),
  )
  t.equal(r!.trusted.length, 61)
  t.equal(scanned.size, 61)
  for (const rec of r!.trusted) {
    const eager = scanned.get(rec.key)!
    t.ok(eager, `${rec.key} is on disk`)
    t.notOk(rec.built, 'not built at load')
    t.equal(rec.title, eager.title)
    t.equal(rec.size, eager.size)
    t.equal(rec.file, eager.file)
    t.same(rec.id, eager.id)
    t.same(JSON.parse(rec.metaBytes().toString()), eager.entry.meta, 'the meta bytes are the meta')
    t.notOk(rec.built, 'file, id and meta bytes do not build the entry')
    t.same(rec.entry.meta, eager.entry.meta)
    t.same(rec.entry.block, eager.entry.block)
    t.ok(rec.built)
    t.equal(rec.file, eager.file, 'the same file once built')
    t.same(rec.id, eager.id)
    t.same(JSON.parse(rec.metaBytes().toString()), eager.entry.meta)
  }
  const prot = r!.trusted.filter((rec) => rec.protected).map((rec) => rec.key)
  t.same(prot, [key('b', 3)], 'protection restored')
  t.equal(r!.trusted.find((rec) => rec.key === '/robots.txt')!.title, undefined, 'no title outside /vod/')
  t.same(
    r!.trusted.slice(-1).map((rec) => rec.key),
    [key('b', 3)],
    'records in the index order (protected last)',
  )
})

t.test('a truncated snapshot is refused, wherever it ends', async (t) => {
  const dir = await cache(t)
  const whole = readFileSync(join(dir, SNAPSHOT_FILE))
  const headEnd = MAGIC.length + BLOCK_HEAD + whole.readUInt32LE(MAGIC.length)
  for (const cut of [0, 5, MAGIC.length + 3, headEnd, headEnd + 100, whole.length - 20, whole.length - 1]) {
    writeFileSync(join(dir, SNAPSHOT_FILE), whole.subarray(0, cut))
    t.equal((await restored(dir)).r, undefined, `cut at ${cut} of ${whole.length}`)
  }
  writeFileSync(join(dir, SNAPSHOT_FILE), whole)
  t.ok((await restored(dir)).r, 'whole again: used')
})

t.test('a damaged byte anywhere is refused', async (t) => {
  const dir = await cache(t)
  const whole = readFileSync(join(dir, SNAPSHOT_FILE))
  for (const at of [
    2,
    MAGIC.length + 1,
    MAGIC.length + 6,
    MAGIC.length + 8,
    200,
    whole.length >> 1,
    whole.length - 3,
  ]) {
    const bad = Buffer.from(whole)
    bad[at] = bad[at]! ^ 0x20
    writeFileSync(join(dir, SNAPSHOT_FILE), bad)
    t.equal((await restored(dir)).r, undefined, `byte ${at} of ${whole.length}`)
  }
})

t.test('another version or format is refused', async (t) => {
  const dir = await cache(t)
  const whole = readFileSync(join(dir, SNAPSHOT_FILE))
  const other = Buffer.from(whole)
  other.write('CDNIDX5\n', 0, 'latin1')
  for (const bytes of [
    other,
    Buffer.from(`CDNIDX3 {"at":${Date.now()}}\nE 0\n`),
    Buffer.from('something else\n'),
    Buffer.alloc(0),
  ]) {
    writeFileSync(join(dir, SNAPSHOT_FILE), bytes)
    t.equal((await restored(dir)).r, undefined, bytes.subarray(0, 8).toString('latin1'))
  }
})

/** A record of bucket 0 for the crafted snapshots below. */
function rec(k: string, bucket = 0): SnapshotRecord {
  return {
    bucket,
    name: 'ab'.repeat(32),
    size: 10,
    protected: false,
    id: { dev: 1, ino: 2, size: 10, mtimeMs: 3.5 },
    key: k,
    meta: Buffer.from(JSON.stringify(meta(k))),
  }
}

t.test('blocks that check out but do not hold together are refused', async (t) => {
  const dir = await cache(t)
  const whole = readFileSync(join(dir, SNAPSHOT_FILE))
  const headEnd = MAGIC.length + BLOCK_HEAD + whole.readUInt32LE(MAGIC.length)
  const header = JSON.parse(whole.toString('utf8', MAGIC.length + BLOCK_HEAD, headEnd)) as SnapshotHeader
  const H = encodeJsonBlock('H', header)
  const R = encodeBlock('R', encodeRecords([rec('/vod/a/x'), rec('/vod/a/y')]))
  const E = (records: number) => encodeJsonBlock('E', { records })
  const cases: Array<[string, Buffer[]]> = [
    ['the count is not the records written', [H, R, E(3)]],
    ['bytes after the end', [H, R, E(2), Buffer.from('x')]],
    ['a block after the end', [H, R, E(2), E(2)]],
    ['no header first', [R, E(2)]],
    ['a header that is not one', [encodeJsonBlock('H', { at: 'x' }), E(0)]],
    ['an unknown kind', [H, encodeBlock('X' as 'R', Buffer.alloc(16)), E(0)]],
    ['a bucket the header does not have', [H, encodeBlock('R', encodeRecords([rec('/vod/a/x', 1e6)])), E(1)]],
    [
      'a record block shorter than its lengths',
      [H, encodeBlock('R', encodeRecords([rec('/vod/a/x')]).subarray(0, 200)), E(1)],
    ],
    ['a record block too short for its counts', [H, encodeBlock('R', Buffer.alloc(8)), E(0)]],
    ['a length beyond the file', [H, encodeBlock('R', Buffer.alloc(16)).subarray(0, 12), E(0)]],
  ]
  for (const [what, blocks] of cases) {
    writeFileSync(join(dir, SNAPSHOT_FILE), Buffer.concat([MAGIC, ...blocks]))
    t.equal((await restored(dir)).r, undefined, what)
  }
  writeFileSync(join(dir, SNAPSHOT_FILE), Buffer.concat([MAGIC, H, R, E(2)]))
  const r = (await restored(dir)).r
  t.ok(r, 'the same blocks, whole: used')
  t.equal(r!.trusted.length + r!.toScan.length > 0, true)
})

t.test('a record block round trip: keys of any script, numbers exact', async (t) => {
  const keys = ['/vod/a/é.m4s', '/vod/a/x', '/vod/日本/y', '/k']
  const recs = keys.map((k, i) => ({ ...rec(k, i % 2), size: 2 ** 40 + i, protected: i === 1 }))
  const d = RecordBlock.decode(encodeRecords(recs), ['/r/a/00/', '/r/b/01/'])!
  t.same(d.keys, keys)
  t.equal(d.block.n, 4)
  t.same(
    [...d.block.size],
    recs.map((r) => r.size),
  )
  t.same([...d.block.flags], [0, 1, 0, 0])
  t.equal(d.block.file(1), `/r/b/01/${'ab'.repeat(32)}`)
  t.same(d.block.id(3), { dev: 1, ino: 2, size: 10, mtimeMs: 3.5 })
  t.same(d.block.meta(2), meta('/vod/日本/y'))
  const record = new DiskRecord({ key: d.keys[0]!, title: 'a', block: d.block, slot: 0, opts: OPTS })
  t.equal(record.size, 2 ** 40)
  t.same(record.entry.meta, meta('/vod/a/é.m4s'), 'built from its block')
  t.throws(() => encodeRecords([{ ...rec('/x'), name: 'not hex' }]), 'a name that is not 32 bytes of hex')
  const misaligned = Buffer.concat([Buffer.alloc(1), encodeRecords(recs)]).subarray(1)
  t.equal(RecordBlock.decode(misaligned, ['/r/']), undefined, 'a payload not at an aligned offset')
})
