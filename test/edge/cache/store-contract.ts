/**
 * The CacheStore contract, run against every implementation (memory, disk, tiered) by
 * their own test files. A store factory gets a fresh directory per subtest.
 */
import { crc32 } from 'node:zlib'
import type { Test } from 'tap'
import type { EntryMeta } from '../../../edge/cache/entry.js'
import type { CacheStore } from '../../../edge/cache/store.js'

export type StoreFactory = (t: Test) => Promise<CacheStore>

export function meta(key: string, over: Partial<EntryMeta> = {}): EntryMeta {
  return {
    key,
    status: 200,
    headers: {
      'cache-control': 'public, max-age=60',
      date: new Date(Date.UTC(2026, 0, 1)).toUTCString(),
      etag: '"e"',
    },
    requestTime: Date.UTC(2026, 0, 1),
    responseTime: Date.UTC(2026, 0, 1),
    bodyLength: 0,
    crc32: 0,
    ...over,
  }
}

export async function put(store: CacheStore, key: string, body: Buffer, chunk = 7000) {
  const w = store.createWriter(meta(key, { bodyLength: body.length }))
  for (let i = 0; i < body.length; i += chunk) w.write(body.subarray(i, i + chunk))
  return w.commit({ bodyLength: body.length, crc32: crc32(body) })
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

export function storeContract(t: Test, make: StoreFactory): void {
  t.test('a committed write is read back byte for byte with its meta', async (t) => {
    const store = await make(t)
    const body = bytes(50_000, 1)
    const e = await put(store, '/vod/a/v1/720p/seg-00001.m4s', body)
    t.ok(e, 'committed')
    const got = await store.get('/vod/a/v1/720p/seg-00001.m4s')
    t.ok(got)
    t.ok(got!.entry.body!.equals(body))
    t.equal(got!.entry.meta.status, 200)
    t.equal(got!.entry.etag, '"e"')
    t.equal(got!.entry.title, 'a')
    t.ok(store.has('/vod/a/v1/720p/seg-00001.m4s'))
    t.same(store.titles(), ['a'])
    t.same([...store.titleIndex('a').keys()], ['v1'])
  })

  t.test('an aborted or short write leaves nothing', async (t) => {
    const store = await make(t)
    const w = store.createWriter(meta('/x'))
    w.write(Buffer.from('hello'))
    w.abort()
    t.notOk(await store.get('/x'))
    const body = bytes(1000, 2)
    const w2 = store.createWriter(meta('/y', { bodyLength: 2000 }))
    w2.write(body)
    t.notOk(await w2.commit({ bodyLength: 2000, crc32: crc32(body) }), 'length mismatch refused')
    t.notOk(await store.get('/y'))
    t.notOk(store.has('/y'))
  })

  t.test('an empty body is an object too', async (t) => {
    const store = await make(t)
    t.ok(await put(store, '/empty', Buffer.alloc(0)))
    const got = await store.get('/empty')
    t.equal(got?.entry.body?.length, 0)
  })

  t.test('a rewrite replaces the object', async (t) => {
    const store = await make(t)
    await put(store, '/k', bytes(100, 3))
    const b2 = bytes(200, 4)
    await put(store, '/k', b2)
    t.ok((await store.get('/k'))!.entry.body!.equals(b2))
    t.equal(store.stats().memory?.objects ?? store.stats().disk?.objects, 1)
  })

  t.test('updateMeta keeps the body and replaces the headers', async (t) => {
    const store = await make(t)
    const body = bytes(3000, 5)
    await put(store, '/vod/a/master.m3u8', body)
    const m = meta('/vod/a/master.m3u8', {
      headers: { 'cache-control': 'max-age=5', date: 'x', etag: '"f"' },
    })
    t.ok(await store.updateMeta('/vod/a/master.m3u8', m))
    const got = await store.get('/vod/a/master.m3u8')
    t.equal(got!.entry.etag, '"f"')
    t.ok(got!.entry.body!.equals(body))
  })

  t.test('delete and purgeTitle remove only what they name', async (t) => {
    const store = await make(t)
    for (const k of ['/vod/a/v1/720p/seg-00001.m4s', '/vod/a/master.m3u8', '/vod/b/master.m3u8', '/other'])
      await put(store, k, bytes(500, 6))
    t.equal(await store.purgeTitle('a'), 2)
    t.notOk(await store.get('/vod/a/master.m3u8'))
    t.notOk(store.has('/vod/a/v1/720p/seg-00001.m4s'))
    t.ok(await store.get('/vod/b/master.m3u8'))
    t.same(store.titles(), ['b'])
    t.ok(await store.delete('/other'))
    t.notOk(await store.delete('/other'))
    t.notOk(await store.get('/other'))
  })

  t.test('the byte bound holds under many writes (LRU eviction)', async (t) => {
    const store = await make(t)
    for (let i = 0; i < 60; i++)
      await put(store, `/vod/t/v1/720p/seg-${String(i).padStart(5, '0')}.m4s`, bytes(20_000, i))
    const s = store.stats()
    for (const tier of [s.memory, s.disk]) {
      if (!tier) continue
      t.ok(tier.bytes <= tier.capacityBytes, `${tier.bytes} <= ${tier.capacityBytes}`)
      t.ok(tier.evictions > 0, 'evicted')
    }
    t.ok(await store.get('/vod/t/v1/720p/seg-00059.m4s'), 'the newest stays')
  })
}
