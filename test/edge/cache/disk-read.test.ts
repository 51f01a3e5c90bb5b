/**
 * The disk tier's hit read path: pooled body buffers lent for one response, the
 * crc32 checked once per fd and again whenever the file's ctime or size moved, synchronous
 * preads only for small hot files (--disk-sync-read-max), the threadpool for everything else.
 * Bytes must stay right whatever the path.
 */
import { spawnSync } from 'node:child_process'
import fs, { closeSync, copyFileSync, existsSync, openSync, renameSync, utimesSync, writeSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import t from 'tap'
import { BufferPool } from '../../../edge/cache/buffer-pool.js'
import { objectDir, objectName } from '../../../edge/cache/disk-format.js'
import { DEFAULT_SYNC_READ_MAX } from '../../../edge/cache/disk-reader.js'
import { CRC_ONLY_MAX } from '../../../edge/cache/disk-verify.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import type { BodyStream } from '../../../edge/cache/store.js'
import { type Clock, ManualClock } from '../../../src/clock.js'
import { tempDir } from '../../helpers/edge.js'
import { put } from './store-contract.js'
import { repoPath } from '../../helpers/repo.js'

/** Real time, but wall-clock ahead, so files written now count as settled (ctime old enough). */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() }

const open = (dir: string, clock?: Clock, syncReadMax?: number) =>
  DiskStore.open({
    dir,
    maxBytes: 50_000_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs: 86_400_000,
    ...(clock ? { clock } : {}),
    ...(syncReadMax !== undefined ? { syncReadMax } : {}),
  })

/** One chunk of a stream, read as the response reads it; `inline`: the read called back at once. */
function readChunk(st: BodyStream, buf: Buffer, off: number): Promise<{ inline: boolean }> {
  return new Promise((resolve, reject) => {
    let inline = true
    st.read(buf, off, (err) => (err ? reject(err as Error) : resolve({ inline })))
    inline = false
  })
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 37 + seed + (i >> 9)) & 0xff
  return b
}

function fileOf(dir: string, title: string, key: string): string {
  const name = objectName(key)
  return join(objectDir(dir, title, name), name)
}

t.test('buffer pool: a buffer is reused only after its one release', async (t) => {
  const pool = new BufferPool(1 << 20)
  t.ok(pool.pools(100_000))
  t.notOk(pool.pools(300_000), 'objects above a quarter of the pool are not pooled')
  const a = pool.lend(100_000)
  const b = pool.lend(100_000)
  t.equal(a.buf.length, 100_000)
  t.not(a.buf.buffer, b.buf.buffer, 'two leases never share memory')
  a.release()
  a.release()
  const c = pool.lend(104_000)
  t.equal(c.buf.buffer, a.buf.buffer, 'same size class: reused')
  const d = pool.lend(104_000)
  t.not(d.buf.buffer, a.buf.buffer, 'a double release did not put it in the pool twice')
  t.equal(pool.reused, 1)
  for (const l of [b, c, d]) l.release()
  t.ok(pool.idleBytesHeld <= 1 << 20)
  const many = Array.from({ length: 20 }, () => pool.lend(200_000))
  for (const l of many) l.release()
  t.ok(pool.idleBytesHeld <= 1 << 20, 'idle bytes stay bounded')
})

t.test('getToSend: right bytes on the cold and the hot path, concurrent leases apart', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const keys = ['/vod/a/v1/720p/seg-00001.m4s', '/vod/a/v1/720p/seg-00002.m4s']
  const bodies = [bytes(300_001, 1), bytes(300_001, 2)]
  for (let i = 0; i < 2; i++) t.ok(await put(s, keys[i]!, bodies[i]!))
  for (let round = 0; round < 5; round++) {
    const got = await Promise.all([s.getToSend(keys[0]!), s.getToSend(keys[1]!), s.getToSend(keys[0]!)])
    t.ok(got[0]!.entry.body!.equals(bodies[0]!), `round ${round}: first`)
    t.ok(got[1]!.entry.body!.equals(bodies[1]!), `round ${round}: second`)
    t.ok(got[2]!.entry.body!.equals(bodies[0]!), `round ${round}: third`)
    t.equal(typeof got[0]!.release, 'function')
    for (const g of got) g!.release!()
  }
  t.ok(s.pool.reused > 0, 'buffers come back')
  const plain = await s.get(keys[1]!)
  t.equal(plain!.release, undefined, 'get never lends')
  t.ok(plain!.entry.body!.equals(bodies[1]!))
  t.equal(s.stats().diskErrors, 0)
})

t.test('a body changed in place after it was verified is caught (ctime moves)', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, aheadClock)
  const key = '/vod/b/v1/720p/seg-00001.m4s'
  const body = bytes(200_000, 3)
  t.ok(await put(s, key, body))
  // Verified and trusted: the next reads skip the crc32.
  for (let i = 0; i < 3; i++) {
    const g = await s.getToSend(key)
    t.ok(g!.entry.body!.equals(body))
    g!.release!()
  }
  // Flip one byte in place (same inode, same size) and put the mtime back: ctime still moves.
  const file = fileOf(dir, 'b', key)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.from([body[1000]! ^ 0xff]), 0, 1, 1000)
  closeSync(fd)
  utimesSync(file, new Date(2020, 0, 1), new Date(2020, 0, 1))
  t.notOk(await s.getToSend(key), 'corrupt body is a miss')
  t.notOk(s.has(key), 'and the object is dropped')
  t.ok(s.errorsByCode.get('ECHECKSUM')! >= 1, 'counted as a checksum error')
})

/** Counts node's fstatSync calls (every module's, the disk reader's included) while `fn` runs. */
async function countFstats<T>(fn: () => Promise<T> | T): Promise<{ value: T; fstats: number }> {
  const real = fs.fstatSync
  let fstats = 0
  fs.fstatSync = ((...args: Parameters<typeof real>) => {
    fstats++
    return real(...args)
  }) as typeof real
  syncBuiltinESMExports()
  try {
    return { value: await fn(), fstats }
  } finally {
    fs.fstatSync = real
    syncBuiltinESMExports()
  }
}

t.test('a small body is checked by its crc32 on every read, without an fstat', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, aheadClock)
  const key = '/vod/k/v1/720p/index.m3u8'
  const body = bytes(CRC_ONLY_MAX, 7)
  t.ok(await put(s, key, body))
  for (let i = 0; i < 2; i++) (await s.getToSend(key))!.release!()
  const hot = await countFstats(() => s.getResident(key))
  t.ok(hot.value!.entry.body!.equals(body), 'resident: the stored bytes')
  t.equal(hot.fstats, 0, 'one pread, no fstat')
  const pooled = await countFstats(() => s.getToSend(key))
  t.ok(pooled.value!.entry.body!.equals(body))
  pooled.value!.release!()
  t.equal(pooled.fstats, 0, 'the full way, on a cached fd: no fstat either')

  // One byte over: the fstat (and the crc32 only while the file is not verified unchanged).
  const larger = '/vod/k/v1/720p/seg-00001.m4s'
  t.ok(await put(s, larger, bytes(CRC_ONLY_MAX + 1, 8)))
  for (let i = 0; i < 2; i++) (await s.getToSend(larger))!.release!()
  t.equal((await countFstats(() => s.getResident(larger))).fstats, 1, 'a larger body: one fstat')

  // A byte flipped in place: the next resident read checks the crc32, drops the record.
  const fd = openSync(fileOf(dir, 'k', key), 'r+')
  writeSync(fd, Buffer.from([body[9]! ^ 0xff]), 0, 1, 9)
  closeSync(fd)
  t.equal(s.getResident(key), undefined, 'the changed bytes are never served')
  t.notOk(s.has(key), 'the record is dropped')
  t.equal(s.errorsByCode.get('ECHECKSUM'), 1, 'counted as a checksum error')
  await s.close()
})

t.test('a small file renamed over by a new record never serves the old body', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, aheadClock)
  const key = '/vod/r/v1/720p/index.m3u8'
  const a = bytes(1447, 1)
  const b = bytes(1447, 2)
  t.ok(await put(s, key, a))
  for (let i = 0; i < 2; i++) (await s.getToSend(key))!.release!()
  t.ok(s.getResident(key)!.entry.body!.equals(a), 'resident: fd open, hot, verified')
  // The same key rewritten: B, same size, renamed over A's path; A's fd is still cached.
  t.ok(await put(s, key, b))
  const after = s.getResident(key)
  t.ok(after === undefined || after.entry.body!.equals(b), 'never A under the new record')
  const got = await s.getToSend(key)
  t.ok(got!.entry.body!.equals(b), 'the full way reads B')
  got!.release!()
  t.ok(s.getResident(key)!.entry.body!.equals(b), 'then resident: B')

  // Someone else renames a copy of A back over the path: the record (B's) no longer
  // describes the file there; what is served is B or a miss, never A.
  const elsewhere = tempDir(t)
  const other = await open(elsewhere, aheadClock)
  t.ok(await put(other, key, a))
  await other.close()
  copyFileSync(fileOf(elsewhere, 'r', key), `${fileOf(dir, 'r', key)}.x`)
  renameSync(`${fileOf(dir, 'r', key)}.x`, fileOf(dir, 'r', key))
  for (let i = 0; i < 3; i++) {
    const r = s.getResident(key)
    t.ok(r === undefined || r.entry.body!.equals(b), `resident ${i}: never A under B's record`)
    const g = await s.get(key)
    t.ok(g === undefined || g.entry.body!.equals(b), `get ${i}: never A under B's record`)
  }
  t.equal(s.errorsByCode.get('ECHECKSUM'), undefined, 'nothing read as a checksum failure')
  await s.close()
})

t.test('a file that changed while unverified is caught on its first read', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const key = '/vod/c/v1/720p/seg-00001.m4s'
  const body = bytes(100_000, 4)
  t.ok(await put(s, key, body))
  const file = fileOf(dir, 'c', key)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.from([body[5]! ^ 1]), 0, 1, 5)
  closeSync(fd)
  t.notOk(await s.get(key))
  t.notOk(s.has(key))
})

t.test('stream: only a verified, unchanged body; chunks read right; the fd outlives eviction', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, aheadClock)
  const key = '/vod/big/v1/720p/seg-00001.m4s'
  const body = bytes(3_000_017, 7)
  t.ok(await put(s, key, body))
  t.equal(s.stream(key, 1), undefined, 'never read through an fd yet: not streamed')
  const first = await s.getToSend(key)
  first!.release!()
  t.equal(s.stream(key, 4_000_000), undefined, 'smaller than the minimum: not streamed')
  const st = s.stream(key, 1)
  t.ok(st, 'verified: streamed')
  t.equal(st!.length, body.length)
  const out = Buffer.alloc(body.length)
  for (let off = 0; off < body.length; off += 256 * 1024) {
    const lease = st!.lend(Math.min(256 * 1024, body.length - off))
    await readChunk(st!, lease.buf, off)
    lease.buf.copy(out, off)
    lease.release()
  }
  t.ok(out.equals(body), 'chunks make the body')
  // Other files push this one's fd out of the fd LRU (8): the open stream keeps it readable.
  for (let i = 0; i < 10; i++) {
    const k = `/vod/other/v1/720p/seg-${i}.m4s`
    t.ok(await put(s, k, bytes(1000, i)))
    ;(await s.getToSend(k))?.release?.()
  }
  const tail = Buffer.alloc(100)
  await readChunk(st!, tail, body.length - 100)
  t.ok(tail.equals(body.subarray(body.length - 100)), 'still readable after its fd left the LRU')
  st!.close()
  st!.close()
  t.equal(s.streamed, 1)

  // A changed file (ctime moves) is never streamed: it is read whole, checked, and dropped.
  ;(await s.getToSend(key))?.release?.()
  const again = s.stream(key, 1)
  t.ok(again, 'streamable again')
  again?.close()
  const fd = openSync(fileOf(dir, 'big', key), 'r+')
  writeSync(fd, Buffer.from([body[10]! ^ 0xff]), 0, 1, 10)
  closeSync(fd)
  t.equal(s.stream(key, 1), undefined, 'modified since verified: not streamed')
  t.equal(await s.getToSend(key), undefined, 'the whole read finds the corruption')
  t.equal(s.has(key), false, 'and drops it')
})

t.test('sync reads only for small bodies of hot files; the bound is an option', async (t) => {
  const dir = tempDir(t)
  // Wall clock ahead (files settle at once); monotonic time moves only when told (hotness).
  const clock = new ManualClock(Date.now() + 60_000)
  const s = await open(dir, clock)
  const small = '/vod/s/v1/720p/seg-00001.m4s'
  const large = '/vod/s/v1/720p/seg-00002.m4s'
  const bodies = new Map([
    [small, bytes(DEFAULT_SYNC_READ_MAX, 1)],
    [large, bytes(DEFAULT_SYNC_READ_MAX + 1, 2)],
  ])
  for (const [k, b] of bodies) t.ok(await put(s, k, b))
  const read = async (key: string) => {
    const before = { ...s.reads }
    const got = await s.getToSend(key)
    t.ok(got!.entry.body!.equals(bodies.get(key)!), `${key}: right bytes`)
    got!.release!()
    return s.reads.sync > before.sync ? 'sync' : s.reads.async > before.async ? 'async' : 'none'
  }
  t.equal(await read(small), 'async', 'small, never read: the threadpool')
  t.equal(await read(small), 'sync', 'small and read just now: one pread on the loop')
  t.equal(await read(large), 'async', 'one byte over the bound, cold')
  t.equal(await read(large), 'async', 'one byte over the bound, hot: still the threadpool')
  clock.advance(5_000)
  t.equal(await read(small), 'async', 'small but not read for 5 s: the threadpool')
  t.equal(await read(small), 'sync', 'hot again')
  t.same(
    s.stats().diskReads,
    { sync: 2, async: 4, sendfile: 0, sendfileLoop: 0 },
    'counted in the stats (the metric)',
  )
  await s.close()

  // 0: nothing on the loop. A huge bound: the old policy (any hot file read synchronously).
  const off = await open(dir, clock, 0)
  for (let i = 0; i < 3; i++) (await off.getToSend(small))!.release!()
  t.same(
    off.reads,
    { sync: 0, async: 3, sendfile: 0, sendfileLoop: 0 },
    '--disk-sync-read-max 0: every read on the threadpool',
  )
  await off.close()
  const old = await open(dir, clock, 256e6)
  for (let i = 0; i < 3; i++) (await old.getToSend(large))!.release!()
  t.same(
    old.reads,
    { sync: 2, async: 1, sendfile: 0, sendfileLoop: 0 },
    'a bound above the object: hot reads on the loop',
  )
  await old.close()
})

t.test('stream chunks go to the threadpool unless they fit the bound and the file is hot', async (t) => {
  const dir = tempDir(t)
  const clock = new ManualClock(Date.now() + 60_000)
  const key = '/vod/big/v1/720p/seg-00001.m4s'
  const body = bytes(1_000_003, 9)
  const chunks = async (s: DiskStore) => {
    const st = s.stream(key, 1)!
    const out = Buffer.alloc(body.length)
    const modes: boolean[] = []
    for (let off = 0; off < body.length; off += 256 * 1024) {
      const lease = st.lend(Math.min(256 * 1024, body.length - off))
      modes.push((await readChunk(st, lease.buf, off)).inline)
      lease.buf.copy(out, off)
      lease.release()
    }
    st.close()
    t.ok(out.equals(body), 'the chunks make the body')
    return modes
  }
  const s = await open(dir, clock)
  t.ok(await put(s, key, body))
  ;(await s.getToSend(key))!.release!()
  t.same(await chunks(s), [false, false, false, false], 'default bound: every chunk later, on the threadpool')
  t.same(
    s.reads,
    { sync: 0, async: 5, sendfile: 0, sendfileLoop: 0 },
    'one whole read and four chunks, none on the loop',
  )
  await s.close()

  const old = await open(dir, clock, 256e6)
  ;(await old.getToSend(key))!.release!()
  t.same(await chunks(old), [true, true, true, true], 'hot with a bound above a chunk: on the loop')
  clock.advance(5_000)
  t.same(await chunks(old), [false, false, false, false], 'not read for 5 s: the threadpool')
  await old.close()
})

t.test('a stream closed while a chunk is read on the threadpool keeps its fd until it is back', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, aheadClock)
  const key = '/vod/big/v1/720p/seg-00001.m4s'
  const body = bytes(600_000, 5)
  t.ok(await put(s, key, body))
  ;(await s.getToSend(key))!.release!()
  const st = s.stream(key, 1)!
  const buf = Buffer.alloc(256 * 1024)
  const done = readChunk(st, buf, 0)
  st.close()
  // Other files push the fd out of the LRU (8) meanwhile: it is closed only once the read is back.
  for (let i = 0; i < 10; i++) {
    const k = `/vod/other/v1/720p/seg-${i}.m4s`
    t.ok(await put(s, k, bytes(1000, i)))
    ;(await s.getToSend(k))?.release?.()
  }
  await done
  t.ok(buf.equals(body.subarray(0, buf.length)), 'the chunk read in flight has the right bytes')
  await t.rejects(readChunk(st, buf, 0), /stream closed/, 'no read after close')
  t.equal(s.stats().diskErrors, 0)
})

t.test(
  'a read that cannot open its file for want of descriptors (EMFILE) is a miss; the object stays',
  async (t) => {
    const dir = tempDir(t)
    const key = '/vod/fd/v1/720p/seg-00001.m4s'
    const body = bytes(100_000, 9)
    const s = await open(dir)
    t.ok(await put(s, key, body))
    await s.close()
    // A real EMFILE: a process with a low descriptor limit (the compiled store, as a spawned edge
    // runs it) opens the store, takes every descriptor left, then reads the object.
    const store = repoPath('dist/edge/cache/disk-store.js')
    const script = `
      import { closeSync, openSync } from 'node:fs'
      const { DiskStore } = await import(process.argv[1])
      const s = await DiskStore.open({ dir: process.argv[2], maxBytes: 50e6, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86400000 })
      const fill = []
      try { for (;;) fill.push(openSync('/dev/null', 'r')) } catch (err) { if (err.code !== 'EMFILE') throw err }
      const during = await s.get(process.argv[3])
      const heldDuring = s.has(process.argv[3])
      for (const fd of fill) closeSync(fd)
      const after = await s.get(process.argv[3])
      process.stdout.write(JSON.stringify({ filled: fill.length, during: during !== undefined, heldDuring,
        after: after ? after.entry.body.toString('base64') : null, errors: Object.fromEntries(s.errorsByCode) }))
      await s.close()`
    const child = spawnSync(
      'sh',
      [
        '-c',
        'ulimit -n 64 && exec "$@"',
        'sh',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
        store,
        dir,
        key,
      ],
      { encoding: 'utf8' },
    )
    t.equal(child.status, 0, child.stderr)
    const out = JSON.parse(child.stdout) as {
      filled: number
      during: boolean
      heldDuring: boolean
      after: string | null
      errors: Record<string, number>
    }
    t.ok(out.filled > 0, 'the descriptors were exhausted')
    t.equal(out.during, false, 'no descriptor: a miss')
    t.same(out.errors, { EMFILE: 1 }, 'counted as the disk error it is')
    t.equal(out.heldDuring, true, 'the object is still indexed')
    t.ok(out.after === body.toString('base64'), 'and read back whole once descriptors are free')
    t.ok(existsSync(fileOf(dir, 'fd', key)), 'its file was not unlinked')
  },
)
