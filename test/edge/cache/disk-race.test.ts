/**
 * The disk tier under interleavings: a read, a purge, a revalidation and a rewrite of one key
 * at once. Each race is made deterministic by a test hook (DiskStoreHooks) that pauses one
 * side at the critical point while the test runs the other side to completion; no sleeps.
 * The invariant: bytes served are the bytes of the record served with them, a purge is never
 * undone by an operation that started before it, and a file in place is never written to.
 */
import {
  closeSync,
  copyFileSync,
  openSync,
  renameSync,
  readdirSync,
  readlinkSync,
  readSync,
  statSync,
} from 'node:fs'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { objectDir, objectName } from '../../../edge/cache/disk-format.js'
import { type DiskStoreHooks, DiskStore } from '../../../edge/cache/disk-store.js'
import { MemoryStore } from '../../../edge/cache/memory-store.js'
import { TieredStore } from '../../../edge/cache/tiered-store.js'
import { DiskMirror, diskEvent } from '../../../edge/cluster/disk-mirror.js'
import type { Clock } from '../../../src/clock.js'
import { tempDir } from '../../helpers/edge.js'
import { meta, put } from './store-contract.js'

/** Real time, but wall-clock ahead, so files written now count as settled (ctime trusted). */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() }
const heuristicMaxMs = 86_400_000
const KEY = '/vod/race/v1/720p/seg-00001.m4s'

const openDisk = (dir: string, hooks: DiskStoreHooks = {}) =>
  DiskStore.open({
    dir,
    maxBytes: 50_000_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs,
    clock: aheadClock,
    hooks,
  })

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 37 + seed + (i >> 9)) & 0xff
  return b
}

function fileOf(dir: string, key: string): string {
  const name = objectName(key)
  return join(objectDir(dir, 'race', name), name)
}

/**
 * A one-shot pause: `hook` (set as a test hook) resolves `reached` and waits for `release()`.
 * Later calls pass straight through.
 */
function pause(): { hook: () => Promise<void>; reached: Promise<void>; release: () => void } {
  let arrive!: () => void
  let release!: () => void
  const reached = new Promise<void>((r) => (arrive = r))
  const gate = new Promise<void>((r) => (release = r))
  let used = false
  return {
    hook: async () => {
      if (used) return
      used = true
      arrive()
      await gate
    },
    reached,
    release,
  }
}

/** Fds of this process open on files under `dir` (temp files included, deleted or not). */
function fdsUnder(dir: string): string[] {
  const out: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(dir)) out.push(target)
    } catch {
      // Closed while listing (the listing's own fd).
    }
  }
  return out
}

t.test(
  'an fd opened while a same-size file was renamed over its path never serves the old bytes',
  async (t) => {
    const dir = tempDir(t)
    const hooks: DiskStoreHooks = {}
    const s = await openDisk(dir, hooks)
    t.teardown(() => s.close())
    const a = bytes(200_000, 1)
    const b = bytes(200_000, 2)
    t.ok(await put(s, KEY, a))
    const p = pause()
    hooks.opened = p.hook
    const first = s.get(KEY)
    await p.reached
    // The open has returned an fd of A; B replaces A at the path before the read goes on.
    t.ok(await put(s, KEY, b), 'the rewrite is committed')
    p.release()
    const early = await first
    t.ok(
      early === undefined || early.entry.body!.equals(a),
      'the read that started first: A or a miss, never a mix',
    )
    for (let i = 0; i < 3; i++) {
      const got = await s.get(KEY)
      t.ok(got, `read ${i} after the rewrite is a hit`)
      t.ok(got!.entry.body!.equals(b), `read ${i}: the new bytes under the new record`)
    }
    const sent = await s.getToSend(KEY)
    t.ok(sent!.entry.body!.equals(b), 'the pooled path too')
    sent!.release!()
    t.equal(s.stats().diskErrors, 0, 'no checksum failure, nothing dropped')
  },
)

t.test('a record never reads a file it does not describe', async (t) => {
  const dir = tempDir(t)
  const s = await openDisk(dir)
  t.teardown(() => s.close())
  const a = bytes(100_000, 3)
  t.ok(await put(s, KEY, a))
  t.ok((await s.get(KEY))!.entry.body!.equals(a), 'warm: the fd is cached and verified')
  // Someone else (an operator's restore, another tool) renames another object of the same
  // size over the path: this store's record no longer describes the file there.
  const elsewhere = tempDir(t)
  const other = await openDisk(elsewhere)
  t.ok(await put(other, KEY, bytes(100_000, 4)))
  await other.close()
  copyFileSync(fileOf(elsewhere, KEY), `${fileOf(dir, KEY)}.x`)
  renameSync(`${fileOf(dir, KEY)}.x`, fileOf(dir, KEY))
  for (let i = 0; i < 2; i++) {
    const got = await s.get(KEY)
    t.ok(got === undefined || got.entry.body!.equals(a), `read ${i}: never the other bytes under this record`)
  }
})

t.test('a disk read that started before a purge does not put the object back in memory', async (t) => {
  const dir = tempDir(t)
  const hooks: DiskStoreHooks = {}
  const memory = new MemoryStore({ maxBytes: 1_000_000, maxEntryShare: 0.5, heuristicMaxMs })
  const disk = await openDisk(dir, hooks)
  const s = new TieredStore(memory, disk)
  t.teardown(() => s.close())
  const body = bytes(50_000, 5)
  t.ok(await put(disk, KEY, body), 'on disk only')
  const p = pause()
  hooks.opened = p.hook
  const read = s.get(KEY)
  await p.reached
  t.equal(await s.purgeTitle('race'), 1)
  p.release()
  t.equal(await read, undefined, 'the read across the purge is a miss')
  t.notOk(memory.has(KEY), 'not promoted into memory')
  t.notOk(s.has(KEY), 'held nowhere')
})

t.test('a write that started before a purge is not stored by its commit', async (t) => {
  const dir = tempDir(t)
  const memory = new MemoryStore({ maxBytes: 1_000_000, maxEntryShare: 0.5, heuristicMaxMs })
  const disk = await openDisk(dir)
  const s = new TieredStore(memory, disk)
  t.teardown(() => s.close())
  const body = bytes(50_000, 6)
  const { crc32 } = await import('node:zlib')
  const w = s.createWriter(meta(KEY, { bodyLength: body.length }))
  w.write(body)
  await s.purgeTitle('race')
  t.equal(await w.commit({ bodyLength: body.length, crc32: crc32(body) }), undefined, 'nothing stored')
  t.notOk(memory.has(KEY), 'not in memory')
  t.notOk(disk.has(KEY), 'not on disk')
  const k2 = '/vod/other/v1/720p/seg-00001.m4s'
  const w2 = s.createWriter(meta(k2, { bodyLength: body.length }))
  w2.write(body)
  await s.delete(KEY)
  t.ok(
    await w2.commit({ bodyLength: body.length, crc32: crc32(body) }),
    'a purge of another key leaves it alone',
  )
  t.ok(await put(s, KEY, body), 'a write that starts after the purge is stored')
})

t.test(
  "a cluster worker's disk read across a purge does not put the object back in its memory",
  async (t) => {
    const dir = tempDir(t)
    const primary = await openDisk(dir)
    t.teardown(() => primary.close())
    const hooks: DiskStoreHooks = {}
    const mirror = new DiskMirror({ maxFds: 8, heuristicMaxMs, clock: aheadClock, hooks })
    // The primary's index changes reach the worker's mirror as events (as primary.ts sends them).
    primary.index.listener = {
      added: (rec) => mirror.apply([diskEvent(rec, 'add')]),
      removed: (rec) => mirror.apply([diskEvent(rec, 'remove')]),
    }
    const memory = new MemoryStore({ maxBytes: 1_000_000, maxEntryShare: 0.5, heuristicMaxMs })
    const worker = new TieredStore(memory, mirror)
    t.teardown(() => worker.close())
    const body = bytes(40_000, 7)
    t.ok(await put(primary, KEY, body))
    t.ok(mirror.has(KEY), 'mirrored')
    const p = pause()
    hooks.opened = p.hook
    const read = worker.get(KEY)
    await p.reached
    // The cluster's purge: the primary's disk first, then the worker's ask (worker-main.ts).
    await primary.purgeTitle('race')
    await worker.purgeTitle('race')
    p.release()
    t.equal(await read, undefined, 'a miss')
    t.notOk(memory.has(KEY), "not back in the worker's memory")
  },
)

/** A 304's refresh: the same object with a new date and max-age. */
function refreshed(over: Partial<ReturnType<typeof meta>>) {
  return meta(KEY, { headers: { 'cache-control': 'public, max-age=600', etag: '"e"' }, ...over })
}

t.test('updateMeta racing a full rewrite never truncates nor mislabels the rewrite', async (t) => {
  const dir = tempDir(t)
  const hooks: DiskStoreHooks = {}
  const s = await openDisk(dir, hooks)
  t.teardown(() => s.close())
  const a = bytes(30_000, 8)
  const b = bytes(70_000, 9)
  t.ok(await put(s, KEY, a))
  const p = pause()
  hooks.metaSource = p.hook
  const update = s.updateMeta(KEY, refreshed({ bodyLength: a.length }))
  await p.reached
  t.ok(await put(s, KEY, b), 'the rewrite lands while the revalidation is under way')
  p.release()
  await update
  const got = await s.get(KEY)
  t.ok(got, 'still a hit')
  t.equal(got!.entry.meta.bodyLength, got!.entry.body!.length, 'record and body agree')
  t.ok(got!.entry.body!.equals(b), 'the rewrite is whole')
  t.equal(s.stats().diskErrors, 0, 'nothing failed a checksum')
})

t.test('updateMeta writes a new file and renames it; the file in place is never written', async (t) => {
  const dir = tempDir(t)
  const s = await openDisk(dir)
  let closed = false
  t.teardown(() => (closed ? undefined : s.close()))
  const a = bytes(30_000, 10)
  t.ok(await put(s, KEY, a))
  const file = fileOf(dir, KEY)
  const before = statSync(file)
  const held = openSync(file, 'r')
  t.teardown(() => closeSync(held))
  const updated = await s.updateMeta(KEY, refreshed({ bodyLength: a.length }))
  t.ok(updated, 'refreshed')
  t.equal(updated!.meta.headers['cache-control'], 'public, max-age=600')
  t.not(statSync(file).ino, before.ino, 'a new inode at the path')
  const old = Buffer.alloc(before.size)
  t.equal(readSync(held, old, 0, before.size, 0), before.size, 'the old file keeps its whole length')
  t.ok(old.subarray(0, a.length).equals(a), 'and its body')
  t.match(old.subarray(a.length).toString('utf8'), /max-age=60"/, 'and its old trailer')
  const got = await s.get(KEY)
  t.ok(got!.entry.body!.equals(a), 'the body is kept')
  t.equal(got!.entry.meta.headers['cache-control'], 'public, max-age=600', 'under the new meta')
  // A restart (one edge per cache directory: this one closes first, writing its snapshot).
  closed = true
  await s.close()
  const again = await openDisk(dir)
  t.teardown(() => again.close())
  t.equal(again.lookup(KEY)?.meta.headers['cache-control'], 'public, max-age=600', 'what a restart finds')
})

t.test('an aborted write closes its temp file (no FileHandle left to the garbage collector)', async (t) => {
  const dir = tempDir(t)
  const s = await openDisk(dir)
  t.teardown(() => s.close())
  const w = s.createWriter(meta(KEY, { bodyLength: 10 }))
  // The first chunk's write is queued; the abort comes before it has run (an upstream error
  // right after the first bytes).
  w.write(bytes(5, 11))
  await w.abort()
  t.same(fdsUnder(dir), [], 'no fd left open under the cache directory')
  const w2 = s.createWriter(meta(KEY, { bodyLength: 10 }))
  w2.write(bytes(5, 12))
  w2.write(bytes(5, 13))
  w2.write(bytes(50_000_000, 14).subarray(0, 1))
  t.ok(
    await w2.commit({ bodyLength: 5, crc32: 0 }).then((e) => e === undefined),
    'a bad commit stores nothing',
  )
  t.same(fdsUnder(dir), [], 'nor after a failed commit')
})

t.test('no FileHandle is closed on garbage collection after aborted writes', async (t: Test) => {
  // Node's DEP0137 warning names a FileHandle that was never closed. Run the abort path, drop
  // every reference, collect, and let the finalizers' warnings (emitted on the next turn) come.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const warnings: string[] = []
  const listen = (w: Error & { code?: string }) => {
    if (w.code === 'DEP0137' || /garbage collection/i.test(w.message)) warnings.push(w.message)
  }
  process.on('warning', listen)
  t.teardown(() => process.off('warning', listen))
  const dir = tempDir(t)
  const s = await openDisk(dir)
  await abortMany(s, 20)
  await s.close()
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
  t.same(warnings, [])
})

async function abortMany(s: DiskStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const w = s.createWriter(meta(`${KEY}?n=${i}`, { bodyLength: 10 }))
    w.write(bytes(5, i))
    await w.abort()
  }
}
