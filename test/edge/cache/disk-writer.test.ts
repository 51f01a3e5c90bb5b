/**
 * The disk writer's batches (edge/cache/disk-writer.ts, issue 19): an upstream body arrives in
 * small chunks, and each file write is a round trip through libuv's pool that the event loop
 * pays for, so chunks are gathered and written a batch at a time, the last batch with the
 * trailer. The object written that way reads back whole and verified.
 */
import { readdirSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import t, { type Test } from 'tap'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { DiskWriter, WRITE_BATCH_BYTES, writeAll } from '../../../edge/cache/disk-writer.js'
import { tempDir } from '../../helpers/edge.js'
import { until } from '../../helpers/wait.js'
import { meta } from './store-contract.js'

const open = (dir: string) =>
  DiskStore.open({ dir, maxBytes: 64_000_000, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86_400_000 })

const KEY = '/vod/w/v1/720p/seg-00001.m4s'

/** `n` chunks of `size` bytes, each filled with its index. */
function chunks(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.alloc(size, i))
}

t.test('16 KB chunks are written a batch at a time, the rest with the trailer', async (t) => {
  const s = await open(tempDir(t))
  t.teardown(() => s.close())
  const parts = chunks((WRITE_BATCH_BYTES / 16_384) * 2 + 3, 16_384)
  const body = Buffer.concat(parts)
  const w = s.createWriter(meta(KEY, { bodyLength: body.length }))
  t.type(w, DiskWriter)
  const writer = w as DiskWriter
  for (const p of parts.slice(0, 10)) writer.write(p)
  t.equal(writer.fileWrites, 0, 'ten chunks: nothing written yet')
  for (const p of parts.slice(10)) writer.write(p)
  t.equal(writer.fileWrites, 2, `${parts.length} chunks of 16 KB: one write per ${WRITE_BATCH_BYTES} bytes`)
  const entry = await writer.commit({ bodyLength: body.length, crc32: crc32(body) })
  t.ok(entry, 'committed')
  t.equal(writer.fileWrites, 3, 'the last three chunks went with the trailer')
  const got = await s.get(KEY)
  t.ok(got?.entry.body?.equals(body), 'the object reads back whole (its crc32 checked)')
})

t.test('many tiny chunks are batched by count too', async (t) => {
  const s = await open(tempDir(t))
  t.teardown(() => s.close())
  const parts = chunks(600, 10)
  const body = Buffer.concat(parts)
  const w = s.createWriter(meta(KEY, { bodyLength: body.length })) as DiskWriter
  for (const p of parts) w.write(p)
  t.equal(w.fileWrites, 2, '600 chunks of 10 bytes: a write per 256 chunks')
  t.ok(await w.commit({ bodyLength: body.length, crc32: crc32(body) }))
  t.ok((await s.get(KEY))?.entry.body?.equals(body))
})

/** A store in a temp dir and a writer of a 100-byte object given its first 50 bytes. */
async function halfWritten(t: Test) {
  const dir = tempDir(t)
  const s = await open(dir)
  t.teardown(() => s.close())
  const w = s.createWriter(meta(KEY, { bodyLength: 100 })) as DiskWriter
  w.write(Buffer.alloc(50, 1))
  const temps = () =>
    readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.tmp'))
  return { s, w, temps }
}

t.test('a short body is refused, and a batch never written leaves no temp file', async (t) => {
  const { s, w, temps } = await halfWritten(t)
  t.equal(await w.commit({ bodyLength: 100, crc32: 0 }), undefined, 'length mismatch refused')
  t.equal(w.fileWrites, 0, 'nothing was written')
  t.notOk(s.has(KEY))
  t.same(temps(), [], 'no temp file')
})

t.test('the temp file is opened with the first bytes, before any batch is written', async (t) => {
  const { w, temps } = await halfWritten(t)
  await until(() => temps().length === 1)
  t.equal(w.fileWrites, 0, 'open, nothing written yet')
  await w.abort()
  t.same(temps(), [], 'an abort removes it')
})

t.test('writeAll writes again what a writev left, from the byte it stopped at', async (t) => {
  // A file handle whose writev takes at most `max` bytes per call (what a filesystem may do
  // without an error); the real short write is in disk-full.test.ts.
  const out: Buffer[] = []
  const calls: number[] = []
  const fh = (max: number) => ({
    writev: async (bufs: Buffer[]) => {
      const all = Buffer.concat(bufs).subarray(0, max)
      out.push(all)
      calls.push(bufs.length)
      return { bytesWritten: all.length, buffers: bufs }
    },
  })
  const bufs = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')]
  await writeAll(fh(4), bufs)
  t.equal(Buffer.concat(out).toString(), 'abcdefghij', 'every byte once, in order')
  t.same(calls, [3, 2, 1], 'each retry starts inside the buffer where the last one stopped')
  await t.rejects(writeAll(fh(0), bufs), { code: 'EIO' }, 'a writev that writes nothing fails')
})
