/**
 * Eviction order of the disk index at a few thousand objects, against a plain reference model
 * (arrays, O(n) per step): ordinary objects go least recently used first, touches and rewrites
 * move an object to the recent end; protected objects go only when the share is full, least
 * popular title first and oldest first within it; a snapshot's record order is the LRU order.
 */
import t from 'tap'
import { DiskIndex, DiskRecord } from '../../../edge/cache/disk-index.js'
import { meta } from './store-contract.js'

const OPTS = { heuristicMaxMs: 86_400_000 }
const N = 3000

function rec(key: string, size = 1): DiskRecord {
  const id = { dev: 0, ino: 0, size, mtimeMs: 0 }
  return new DiskRecord({ key, file: key, size, id, protected: false }, meta(key), OPTS)
}

/** A deterministic pseudo-random sequence (xorshift). */
function rng(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

t.test('ordinary objects: least recently used first, at 3,000 objects', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(N, N, (r) => evicted.push(r.key))
  /** Reference: keys, least recently used first. */
  const model: string[] = []
  const modelEvicted: string[] = []
  const touchModel = (k: string) => {
    model.splice(model.indexOf(k), 1)
    model.push(k)
  }
  const addModel = (k: string) => {
    const at = model.indexOf(k)
    if (at >= 0) model.splice(at, 1)
    model.push(k)
    while (model.length > N) modelEvicted.push(model.shift()!)
  }
  const key = (i: number) => `/vod/t${i % 7}/v1/360p/seg-${i}.m4s`
  for (let i = 0; i < N; i++) {
    index.add(rec(key(i)))
    addModel(key(i))
  }
  const random = rng(12345)
  let next = N
  for (let step = 0; step < 6000; step++) {
    const r = random()
    if (r < 0.5) {
      // A hit on a held object (the head, the tail and the middle all get hit).
      const k = model[Math.floor(random() * model.length)]!
      index.touch(index.get(k)!)
      touchModel(k)
    } else if (r < 0.6) {
      // A rewrite of a held object (a new record for the key).
      const k = model[Math.floor(random() * model.length)]!
      index.add(rec(k))
      addModel(k)
    } else {
      // A new object: one eviction.
      index.add(rec(key(next)))
      addModel(key(next++))
    }
  }
  t.ok(modelEvicted.length > 2000, `many evictions (${modelEvicted.length})`)
  t.same(evicted, modelEvicted, 'evicted in exactly the reference order')
  t.same(
    index.records().map((r) => r.key),
    model,
    'the records (what a snapshot writes) are in LRU order',
  )
  t.equal(index.size, N)
  t.equal(index.bytes, N)
  t.equal(index.evictions, modelEvicted.length)
  const built = index.records().filter((r) => r.built).length
  t.equal(built, 0, 'the index never built an entry')
})

t.test('protected share: least popular title first, oldest first within it', async (t) => {
  const evicted: string[] = []
  const index = new DiskIndex(10 * N, N, (r) => evicted.push(r.key))
  const titles = 10
  const key = (title: number, i: number) => `/vod/p${title}/v1/360p/seg-${i}.m4s`
  // 300 objects per title, protected at rank = title number (9 is the least popular).
  for (let i = 0; i < 300; i++)
    for (let title = 0; title < titles; title++) {
      index.add(rec(key(title, i)))
      index.protect(key(title, i), `p${title}`, title)
    }
  t.equal(index.protectedBytes, N, 'the share is full')
  // Touch the first 100 of title 9: they become its newest.
  for (let i = 0; i < 100; i++) index.touch(index.get(key(9, i))!)
  // 400 more protected objects of the most popular title evict 400 of the least popular ones.
  for (let i = 300; i < 700; i++) {
    index.add(rec(key(0, i)))
    index.protect(key(0, i), 'p0', 0)
  }
  const expected = [
    ...Array.from({ length: 200 }, (_, i) => key(9, 100 + i)),
    ...Array.from({ length: 100 }, (_, i) => key(9, i)),
    ...Array.from({ length: 100 }, (_, i) => key(8, i)),
  ]
  t.same(evicted, expected, 'title 9 oldest first (its touched ones last), then title 8')
  t.equal(index.protectedBytesOf('p9'), 0)
  t.equal(index.protectedBytesOf('p8'), 200)
  t.equal(index.unprotectTitle('p8'), 200, 'released')
  // Released objects are ordinary and most recent: ordinary pressure takes them in their order.
  evicted.length = 0
  index.setLimit(index.bytes - 50, N)
  t.same(
    evicted,
    Array.from({ length: 50 }, (_, i) => key(8, 100 + i)),
    'released: oldest first',
  )
})
