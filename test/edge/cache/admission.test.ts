/**
 * The disk tier's frequency admission (edge/cache/admission.ts) and its place in the tiered
 * store: a viewer's miss is written to memory only on its first write within the window and
 * to disk from its second; prefill's protected writes always go to disk; the edge builds it
 * from `--disk-admission`.
 */
import { crc32 } from 'node:zlib'
import t from 'tap'
import { diskAdmission, FrequencyAdmission, FrequencySketch } from '../../../edge/cache/admission.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { MemoryStore } from '../../../edge/cache/memory-store.js'
import { TieredStore, writeTiers } from '../../../edge/cache/tiered-store.js'
import { edgeConfig } from '../../../edge/config.js'
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
