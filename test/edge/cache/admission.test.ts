/**
 * The disk tier's frequency admission (edge/cache/admission.ts) and its place in the tiered
 * store: a viewer's miss is written to memory only on its first write within the window and
 * to disk from its second; prefill's protected writes always go to disk; the edge builds it
 * from `--disk-admission`.
 */
import { crc32 } from 'node:zlib'
import t from 'tap'
import {
  Doorkeeper,
  diskAdmission,
  FrequencyAdmission,
  FrequencySketch,
  TinyLfuAdmission,
} from '../../../edge/cache/admission.js'
import { DiskIndex, DiskRecord } from '../../../edge/cache/disk-index.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { makeEntry } from '../../../edge/cache/entry.js'
import { MemoryStore } from '../../../edge/cache/memory-store.js'
import { TieredStore, writeTiers } from '../../../edge/cache/tiered-store.js'
import { edgeConfig } from '../../../edge/config/validate.js'
import { admissionFor } from '../../../edge/main.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put } from './store-contract.js'

t.test('the sketch counts keys and halves every count once per window', async (t) => {
  const s = new FrequencySketch(100)
  t.equal(s.record('/a'), 0)
  t.equal(s.record('/a'), 1)
  t.equal(s.record('/a'), 2)
  t.equal(s.record('/b'), 0, 'another key starts at 0')
  t.ok(s.bytes >= 4 * 100, 'four rows of at least the window')
  for (let i = 0; i < 96; i++) s.record(`/other/${i}`)
  t.equal(s.resets, 1, 'halved after 100 records')
  t.equal(s.record('/a'), 1, '3 halved to 1')
  t.equal(s.record('/b'), 0, '1 halved to 0')
  // Counters stop at 255 instead of wrapping.
  const big = new FrequencySketch(100_000)
  for (let i = 0; i < 300; i++) big.record('/hot')
  t.equal(big.record('/hot'), 255)
})

t.test('frequency admission: a key is admitted from its second write', async (t) => {
  const a = new FrequencyAdmission(1000)
  t.equal(a.admit('/x'), false)
  t.equal(a.admit('/x'), true)
  t.equal(a.admit('/y'), false)
  t.same([a.admitted, a.refused], [1, 2])
  t.equal(diskAdmission('all', 1e9, 0), undefined, 'all: no filter')
  t.equal(diskAdmission('frequency', 0, 0), undefined, 'no disk tier: no filter')
  const auto = diskAdmission('frequency', 20e9, 0) as FrequencyAdmission
  t.equal(auto.sketch.window, 200_000, 'ten times the objects of 1 MB the disk holds')
  t.equal((diskAdmission('frequency', 20e9, 5000) as FrequencyAdmission).sketch.window, 5000)
  t.ok(admissionFor(edgeConfig({ upstream: ['http://127.0.0.1:9'], diskAdmission: 'frequency' })))
  t.equal(admissionFor(edgeConfig({ upstream: ['http://127.0.0.1:9'], diskAdmission: 'all' })), undefined)
})

t.test('which tiers a write goes to', async (t) => {
  const refuse = { admit: () => false }
  t.equal(writeTiers({ key: '/a' }, false, refuse), 'memory')
  t.equal(writeTiers({ key: '/a', protected: true }, false, refuse), 'disk', 'prefill is always admitted')
  t.equal(writeTiers({ key: '/a' }, true, refuse), 'both', 'no disk tier: the admission is not asked')
  t.equal(writeTiers({ key: '/a' }, false), 'both')
})

t.test('the tiered store writes a first miss to memory only, a second to disk', async (t) => {
  const heuristicMaxMs = 86_400_000
  const disk = await DiskStore.open({
    dir: tempDir(t),
    maxBytes: 800_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs,
  })
  const memory = new MemoryStore({ maxBytes: 300_000, maxEntryShare: 0.2, heuristicMaxMs })
  const store = new TieredStore(memory, disk, new FrequencyAdmission(1000))
  t.teardown(() => store.close())
  await put(store, '/vod/a/v1/720p/seg-00001.m4s', Buffer.alloc(10_000, 1))
  t.ok(memory.has('/vod/a/v1/720p/seg-00001.m4s'), 'kept in memory')
  t.notOk(disk.has('/vod/a/v1/720p/seg-00001.m4s'), 'not written to disk on a first miss')
  await put(store, '/vod/a/v1/720p/seg-00001.m4s', Buffer.alloc(10_000, 1))
  t.ok(disk.has('/vod/a/v1/720p/seg-00001.m4s'), 'written to disk on the second')
  const body = Buffer.alloc(10_000, 2)
  const w = store.createWriter(
    meta('/vod/a/v1/720p/seg-00002.m4s', { bodyLength: body.length, protected: true }),
  )
  w.write(body)
  t.ok(await w.commit({ bodyLength: body.length, crc32: crc32(body) }))
  t.ok(disk.has('/vod/a/v1/720p/seg-00002.m4s'), 'a protected write goes to disk at once')
})

t.test('the sketch estimates without counting', async (t) => {
  const s = new FrequencySketch(1000)
  t.equal(s.estimate('/a'), 0)
  s.record('/a')
  s.record('/a')
  t.equal(s.estimate('/a'), 2)
  t.equal(s.estimate('/a'), 2, 'an estimate does not count')
  // Few collisions: of 500 keys counted once each, nearly all estimate exactly 1.
  for (let i = 0; i < 500; i++) s.record(`/k/${i}`)
  let exact = 0
  for (let i = 0; i < 500; i++) if (s.estimate(`/k/${i}`) === 1) exact++
  t.ok(exact >= 490, `${exact} of 500 exact`)
  t.equal(s.estimate('/never'), 0)
})

t.test('the doorkeeper remembers keys until cleared', async (t) => {
  const d = new Doorkeeper(1000)
  t.ok(d.bytes >= 1000, 'eight bits per key')
  t.equal(d.add(1, 3), false, 'new')
  t.equal(d.add(1, 3), true, 'seen')
  t.ok(d.has(1, 3))
  t.notOk(d.has(2, 5))
  d.clear()
  t.notOk(d.has(1, 3), 'cleared')
})

t.test(
  'TinyLFU: requests counted through the doorkeeper; a candidate admitted over a less frequent victim',
  async (t) => {
    const a = new TinyLfuAdmission(1000)
    t.equal(a.frequency('/x'), 0)
    a.record('/x')
    t.equal(a.frequency('/x'), 1, 'first request: the doorkeeper only')
    t.equal(a.sketch.estimate('/x'), 0, 'the sketch not yet')
    a.record('/x')
    a.record('/x')
    t.equal(a.frequency('/x'), 3, 'then the sketch counts')
    a.record('/y')
    t.equal(a.admit('/y'), true, 'room on disk (no victim asked): admitted')
    t.equal(
      a.admit('/y', () => undefined),
      true,
      'no victim: admitted',
    )
    t.equal(
      a.admit('/y', () => '/x'),
      false,
      'seen once against a victim seen three times: refused',
    )
    t.equal(
      a.admit('/x', () => '/y'),
      true,
      'three against one: admitted',
    )
    t.equal(
      a.admit('/y', () => '/y2'),
      true,
      'one against a victim never seen: admitted',
    )
    a.record('/z')
    t.equal(
      a.admit('/z', () => '/y'),
      false,
      'a tie keeps the victim',
    )
    t.same([a.admitted, a.refused], [4, 2])
    // Aging: once per window the counts halve and the doorkeeper forgets.
    for (let i = 0; i < 1000; i++) a.record(`/other/${i}`)
    t.equal(a.sketch.resets, 1)
    t.equal(a.frequency('/x'), 1, 'two halved to one, the doorkeeper cleared')
    t.equal(a.frequency('/y'), 0)
    const built = diskAdmission('tinylfu', 20e9, 0) as TinyLfuAdmission
    t.ok(built instanceof TinyLfuAdmission)
    t.equal(built.sketch.window, 200_000)
    t.ok(
      admissionFor(edgeConfig({ upstream: ['http://127.0.0.1:9'], diskAdmission: 'tinylfu' })) instanceof
        TinyLfuAdmission,
    )
  },
)

t.test('the disk index names the victim an add would evict', async (t) => {
  const index = DiskIndex.forTier({ maxBytes: 300, protectedShare: 0.5 }, () => undefined)
  const rec = (key: string, size: number) =>
    new DiskRecord(
      { key, file: '', id: { dev: 0, ino: 0, size: 0, mtimeMs: 0 }, size, protected: false },
      makeEntry(meta(key), undefined, { heuristicMaxMs: 0 }),
    )
  index.add(rec('/vod/a/v1/720p/seg-00001.m4s', 100))
  index.add(rec('/vod/b/v1/720p/seg-00001.m4s', 100))
  t.equal(index.victim(100), undefined, 'room for 100 more')
  t.equal(index.victim(101)?.key, '/vod/a/v1/720p/seg-00001.m4s', 'the least recently used')
  index.touch(index.get('/vod/a/v1/720p/seg-00001.m4s')!)
  t.equal(index.victim(101)?.key, '/vod/b/v1/720p/seg-00001.m4s', 'after a use, the other')
  t.equal(index.size, 2, 'asking evicts nothing')
})

t.test('the tiered store counts requests and admits against the disk tier’s victim', async (t) => {
  const heuristicMaxMs = 86_400_000
  const disk = await DiskStore.open({
    dir: tempDir(t),
    maxBytes: 35_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs,
  })
  const memory = new MemoryStore({ maxBytes: 300_000, maxEntryShare: 0.2, heuristicMaxMs })
  const admission = new TinyLfuAdmission(1000)
  const store = new TieredStore(memory, disk, admission)
  t.teardown(() => store.close())
  const key = (n: number) => `/vod/t${n}/v1/720p/seg-00001.m4s`
  const body = Buffer.alloc(10_000, 1)
  // Three objects fill the disk; the first is asked for often.
  for (const n of [1, 2, 3]) {
    store.noteRequest(key(n))
    await put(store, key(n), body)
  }
  for (let i = 0; i < 3; i++) store.noteRequest(key(1))
  t.ok(
    [1, 2, 3].every((n) => disk.has(key(n))),
    'room: every miss admitted',
  )
  t.equal(disk.victimKey(10_000), key(1), 'the least recently used is the victim')
  // A one-off newcomer does not displace it.
  store.noteRequest(key(4))
  await put(store, key(4), body)
  t.notOk(disk.has(key(4)), 'refused: seen once, the victim four times')
  t.ok(memory.has(key(4)), 'kept in memory')
  t.ok(disk.has(key(1)), 'the victim stays')
  // Asked for more often than the victim, it is admitted.
  for (let i = 0; i < 5; i++) store.noteRequest(key(4))
  await put(store, key(4), body)
  t.ok(disk.has(key(4)), 'admitted once more frequent than the victim')
  t.notOk(disk.has(key(1)), 'the victim evicted')
  t.same([admission.admitted, admission.refused], [4, 1])
})
