/**
 * Ladder-aware eviction (edge/cache/ladder.ts, disk-index.ts): under pressure the disk index
 * evicts the top renditions of cold titles before their low renditions, playlists and init
 * segments, and a low record only once it has been idle LOW_AGE_FACTOR times as long as the
 * oldest high one; with the option off it is plain LRU. The disk store is given it by
 * `--disk-low-rendition`.
 */
import t from 'tap'
import { DiskIndex, DiskRecord } from '../../../edge/cache/disk-index.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { makeEntry } from '../../../edge/cache/entry.js'
import { isLowRung, LOW_AGE_FACTOR } from '../../../edge/cache/ladder.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put } from './store-contract.js'

const seg = (title: string, rendition: string, n = 1) =>
  `/vod/${title}/v1/${rendition}/seg-${String(n).padStart(5, '0')}.m4s`

function rec(key: string, size = 100): DiskRecord {
  return new DiskRecord(
    { key, file: '', size, id: { dev: 0, ino: 0, size: 0, mtimeMs: 0 }, protected: false },
    makeEntry(meta(key, { bodyLength: size }), undefined, { heuristicMaxMs: 0 }),
  )
}

t.test('which keys are low in their ladder', async (t) => {
  t.ok(isLowRung(seg('a', '480p'), 480))
  t.ok(isLowRung(seg('a', '240p'), 480))
  t.notOk(isLowRung(seg('a', '720p'), 480))
  t.ok(isLowRung('/vod/a/v1/1080p/index.m3u8', 480), 'a media playlist of any rendition')
  t.ok(isLowRung('/vod/a/v1/1080p/init.mp4', 480), 'an init segment of any rendition')
  t.ok(isLowRung('/vod/a/master.m3u8', 480))
  t.ok(isLowRung(`${seg('a', '360p')}?v=1`, 480), 'a kept query does not hide the path')
  t.notOk(isLowRung('/other/path', 480))
  t.notOk(isLowRung(seg('a', '240p'), 0), 'off')
})

t.test('the top renditions of cold titles go before the low ones', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(500, 0, (r) => evicted.push(r.key), 480)
  // Oldest first: a low segment, then four top-rung segments.
  index.add(rec(seg('cold', '240p')))
  for (let n = 1; n <= 4; n++) index.add(rec(seg('cold', '1080p', n)))
  index.add(rec(seg('warm', '1080p')))
  t.same(evicted, [seg('cold', '1080p', 1)], 'the oldest top rendition, not the older low one')
  t.ok(index.get(seg('cold', '240p')), 'the low segment stays')

  const plain: string[] = []
  const lru = new DiskIndex(500, 0, (r) => plain.push(r.key), 0)
  lru.add(rec(seg('cold', '240p')))
  for (let n = 1; n <= 5; n++) lru.add(rec(seg('cold', '1080p', n)))
  t.same(plain, [seg('cold', '240p')], 'off: plain LRU evicts the oldest')
})

t.test('a low record idle long enough is evicted before a recently used top one', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(1000, 0, (r) => evicted.push(r.key), 480)
  const low = rec(seg('a', '480p'))
  index.add(low)
  const high = rec(seg('b', '720p'))
  index.add(high)
  // The high record is used again and again; the low one never.
  const others = Array.from({ length: 8 }, (_, i) => rec(seg('c', '240p', i + 1)))
  for (const o of others) index.add(o)
  for (let i = 0; i < 4 * LOW_AGE_FACTOR; i++) index.touch(high)
  index.add(rec(seg('d', '1080p')))
  t.same(evicted, [seg('a', '480p')], 'the idle low record, not the hot top one')
  t.ok(index.get(high.key))
  t.equal(index.size, 10)
  t.equal(index.records().length, 10, 'records lists both ordinary partitions')
})

t.test('the disk store evicts by the ladder with --disk-low-rendition', async (t) => {
  const store = await DiskStore.open({
    dir: tempDir(t),
    maxBytes: 60_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs: 86_400_000,
    lowRendition: 480,
  })
  t.teardown(() => store.close())
  await put(store, seg('a', '360p'), Buffer.alloc(10_000, 1))
  for (let n = 1; n <= 5; n++) await put(store, seg('a', '1080p', n), Buffer.alloc(10_000, 2))
  t.ok(store.has(seg('a', '360p')), 'the low rendition is kept')
  t.notOk(store.has(seg('a', '1080p', 1)), 'the oldest top rendition went')
})
