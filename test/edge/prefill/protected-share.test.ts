/** The disk index's protected share as prefill drives it: protect, release, rank-ordered eviction. */
import t from 'tap'
import { DiskRecord, DiskIndex } from '../../../edge/cache/disk-index.js'
import type { CacheEntry } from '../../../edge/cache/entry.js'

function rec(title: string, n: number, size: number, protectedFlag = false): DiskRecord {
  const key = `/vod/${title}/v1/360p/seg-0000${n}.m4s`
  const id = { dev: 0, ino: 0, size, mtimeMs: 0 }
  return new DiskRecord({ key, file: key, size, id, protected: protectedFlag }, {
    title,
  } as unknown as CacheEntry)
}

t.test('ordinary traffic never evicts protected objects', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(1000, 500, (r) => evicted.push(r.key))
  for (let i = 0; i < 4; i++) t.ok(index.add(rec('hot', i, 100)))
  for (let i = 0; i < 4; i++) t.ok(index.protect(rec('hot', i, 100).key, 'hot', 0))
  t.equal(index.protectedBytes, 400)
  for (let i = 0; i < 50; i++) index.add(rec(`oneoff${i}`, 0, 100))
  t.ok(index.bytes <= 1000)
  t.same(
    evicted.filter((k) => k.includes('/hot/')),
    [],
    'the flood evicted only ordinary objects',
  )
  t.same(index.protectedTitles(), [{ title: 'hot', rank: 0, bytes: 400 }])
  t.equal(index.protectedBytesOf('hot'), 400)
})

t.test('inside the share the least popular title goes first; released titles become ordinary', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(10_000, 500, (r) => evicted.push(r.key))
  for (let i = 0; i < 2; i++) index.add(rec('top', i, 100, true))
  for (let i = 0; i < 2; i++) index.add(rec('low', i, 100, true))
  for (let i = 0; i < 2; i++) index.protect(rec('top', i, 100).key, 'top', 0)
  for (let i = 0; i < 2; i++) index.protect(rec('low', i, 100).key, 'low', 7)
  index.add(rec('mid', 0, 100))
  index.add(rec('mid', 1, 100))
  index.protect(rec('mid', 0, 100).key, 'mid', 3)
  index.protect(rec('mid', 1, 100).key, 'mid', 3)
  t.same(
    evicted,
    [rec('low', 0, 100).key],
    'over the share by 100 bytes: the oldest object of the lowest-ranked title',
  )
  t.equal(index.unprotectTitle('low'), 1)
  t.equal(index.protectedBytes, 400)
  t.equal(index.get(rec('low', 1, 100).key)?.protected, false, 'released, still held')
  t.notOk(index.protect('/vod/none/x', 'none', 1), 'protecting what is not held says so')
})
