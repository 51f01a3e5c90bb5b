/**
 * Small disk-tier hits on the raw hit path (edge/http/serve.ts rawDiskHit, disk-reader.ts
 * `resident`): a real edge whose memory tier is too small for the object, over a real upstream.
 * Only a body whose file is open, recently read and verified is read on the event loop; a cold
 * one, and one whose file changed, go the full way.
 */
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import t from 'tap'
import { Client } from 'undici'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { UNRESERVED_BODY_MAX } from '../../edge/inflight-budget.js'
import type { Clock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { startUpstream } from './upstream-server.js'

/**
 * Wall clock ahead of real time, so a file written now counts as settled (disk-reader `intact`);
 * monotonic time stands still, so a file read once stays hot (disk-reader HOT_MS, 5 s) however
 * long a busy machine takes between two requests: hotness is decided by the reads, not by the
 * machine's speed (what HOT_MS does over time is disk-read.test.ts's, with a clock it moves).
 */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => 0 }

/** A GET on a connection of its own (a connection node's http took stays node's): X-Cache and body. */
async function getAlone(base: string, path: string): Promise<{ cache: unknown; body: Buffer }> {
  const client = new Client(base)
  try {
    const res = await client.request({ path, method: 'GET' })
    return { cache: res.headers['x-cache'], body: Buffer.from(await res.body.arrayBuffer()) }
  } finally {
    await client.close()
  }
}

const BODY = Buffer.alloc(3000)
for (let i = 0; i < BODY.length; i++) BODY[i] = (i * 13) % 251

t.test(
  'a small hot disk hit is answered raw, the same bytes and headers; a changed file is not',
  async (t) => {
    const path = '/vod/small/v1/720p/seg-00001.m4s'
    const origin = await startUpstream(t, {
      [path]: async (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').header('etag', '"small-1"').send(BODY),
    })
    const edge = await startEdge(t, { upstream: origin.url, memorySize: 1_000, clock: aheadClock })
    const store = edge.app.edge.store as TieredStore
    const disk = store.disk
    const raw = edge.app.edge.raw!
    // Each request on a connection of its own: a connection node's http took stays node's.
    const fetch = async (method: 'GET' | 'HEAD' = 'GET') => {
      const client = new Client(edge.url)
      try {
        const res = await client.request({ path, method })
        const body = Buffer.from(await res.body.arrayBuffer())
        return { status: res.statusCode, headers: res.headers, body }
      } finally {
        await client.close()
      }
    }
    t.equal((await fetch()).headers['x-cache'], 'MISS')
    await settled(edge)
    t.ok(disk.has(path), 'the miss was committed to disk')
    t.notOk(store.getInMemory(path), 'memory does not hold it')

    const answered0 = raw.answered
    const handed0 = raw.handedOver
    const async0 = disk.reads.async
    const cold = await fetch()
    t.equal(cold.headers['x-cache'], 'HIT-DISK')
    t.ok(cold.body.equals(BODY))
    t.equal(disk.reads.async, async0 + 1, 'a cold file is read on the threadpool first')
    t.equal(raw.answered, answered0 + 1, 'then the request is answered raw')
    t.equal(raw.handedOver, handed0, 'the connection stays on the raw path')

    const sync0 = disk.reads.sync
    const hot = await fetch()
    t.equal(raw.answered, answered0 + 2, 'then answered raw')
    t.equal(disk.reads.sync, sync0 + 1, 'one read on the loop')
    t.equal(hot.status, 200)
    t.equal(hot.headers['x-cache'], 'HIT-DISK')
    t.equal(hot.headers.etag, '"small-1"')
    t.equal(hot.headers['content-length'], String(BODY.length))
    t.ok(hot.body.equals(BODY), 'the stored bytes')
    for (const name of ['etag', 'cache-control', 'content-type', 'x-cache'])
      t.equal(hot.headers[name], cold.headers[name], `${name} as node's http wrote it`)

    const head = await rawHead(Number(new URL(edge.url).port), path)
    t.equal(raw.answered, answered0 + 3, 'HEAD answered raw')
    t.match(head, /^HTTP\/1\.1 200 OK\r\n/)
    t.match(head, new RegExp(`\r\ncontent-length: ${BODY.length}\r\n`, 'i'))
    t.match(head, /\r\nx-cache: HIT-DISK\r\n/i)
    await until(() => edge.app.edge.budget.bytes === 0)
    t.equal(edge.app.edge.budget.bytes, 0, 'nothing left reserved once written')

    // The file changes in place (not something the edge ever does): its ctime moves, so the next
    // read is checked again, fails, drops the record and the request goes upstream.
    const file = disk.record(path)!.file
    writeFileSync(file, Buffer.alloc(BODY.length, 0x55), { flag: 'r+' })
    const errors0 = disk.stats().diskErrors ?? 0
    const after = await fetch()
    t.equal(after.headers['x-cache'], 'MISS', 'a changed file is a miss')
    t.ok(after.body.equals(BODY), 'never the changed bytes')
    t.equal(raw.answered, answered0 + 3, 'not answered raw')
    t.equal(disk.stats().diskErrors, errors0 + 1, 'the mismatch counted')
    t.equal(origin.count(path), 2)
  },
)

t.test(
  'a small disk hit is answered raw without a reservation, even with the in-flight budget full; a larger one is reserved',
  async (t) => {
    const small = '/vod/budget/v1/720p/index.m3u8'
    const large = '/vod/budget/v1/720p/seg-00001.m4s'
    const bodies = new Map([
      [small, BODY.subarray(0, UNRESERVED_BODY_MAX)],
      [large, Buffer.alloc(UNRESERVED_BODY_MAX + 1, 0x2a)],
    ])
    const origin = await startUpstream(t, {
      [small]: async (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').send(bodies.get(small)),
      [large]: async (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').send(bodies.get(large)),
    })
    const edge = await startEdge(t, { upstream: origin.url, memorySize: 1_000, clock: aheadClock })
    const raw = edge.app.edge.raw!
    const budget = edge.app.edge.budget
    let reserved = 0
    budget.on('reserve', () => reserved++)
    const fetch = (path: string) => getAlone(edge.url, path)
    for (const path of [small, large]) {
      t.equal((await fetch(path)).cache, 'MISS')
      await settled(edge)
      t.equal((await fetch(path)).cache, 'HIT-DISK', 'cold: the full way, which warms the fd')
    }
    await until(() => budget.bytes === 0)

    const answered0 = raw.answered
    const reserved0 = reserved
    const big = await fetch(large)
    t.equal(raw.answered, answered0 + 1, 'the larger hot body: answered raw')
    t.ok(big.body.equals(bodies.get(large)!))
    t.equal(reserved, reserved0 + 1, 'and reserved while it was written')
    await until(() => budget.bytes === 0)

    // Every byte of the budget taken: a small body still goes raw, reserving nothing.
    const hold = budget.tryTake(budget.limit)!
    t.ok(hold, 'the whole budget held')
    const reserved1 = reserved
    const got = await fetch(small)
    t.equal(got.cache, 'HIT-DISK')
    t.ok(got.body.equals(bodies.get(small)!), 'the stored bytes')
    t.equal(raw.answered, answered0 + 2, 'answered raw')
    t.equal(reserved, reserved1, 'nothing reserved for it')
    t.equal(budget.bytes, budget.limit, 'the budget as it was')
    hold.release()
  },
)

t.test(
  'a small disk hit gone cold (not read for 5 s) is read on the threadpool, and its connection stays raw',
  async (t) => {
    const path = '/vod/cold/v1/720p/index.m3u8'
    const origin = await startUpstream(t, {
      [path]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
    })
    // Wall clock ahead (files settle at once); monotonic time can jump (hotness, disk-reader HOT_MS).
    let skew = 0
    const clock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() + skew }
    const edge = await startEdge(t, { upstream: origin.url, memorySize: 1_000, clock })
    const disk = (edge.app.edge.store as TieredStore).disk
    const raw = edge.app.edge.raw!
    const once = async () => {
      const client = new Client(edge.url)
      try {
        return (await client.request({ path, method: 'GET' })).body.arrayBuffer()
      } finally {
        await client.close()
      }
    }
    await once()
    await settled(edge)
    await once()
    skew += 6_000
    // Several clients on connections of their own at once, each asking twice.
    const answered0 = raw.answered
    const handed0 = raw.handedOver
    const async0 = disk.reads.async
    const clients = Array.from({ length: 4 }, () => new Client(edge.url, { pipelining: 1 }))
    t.teardown(() => Promise.all(clients.map((c) => c.close())))
    const get = async (c: Client) => {
      const res = await c.request({ path, method: 'GET' })
      return { cache: res.headers['x-cache'], body: Buffer.from(await res.body.arrayBuffer()) }
    }
    const first = await Promise.all(clients.map(get))
    const second = await Promise.all(clients.map(get))
    for (const r of [...first, ...second]) {
      t.equal(r.cache, 'HIT-DISK')
      t.ok(r.body.equals(BODY), 'the stored bytes')
    }
    t.equal(raw.answered, answered0 + 8, 'every request answered raw')
    t.equal(raw.handedOver, handed0, "no connection handed to node's http")
    t.equal(disk.reads.async, async0 + 1, 'one threadpool read for all of them')
    t.equal(origin.count(path), 1)
  },
)

/** A HEAD on a connection of its own, as a player sends it (undici's HEAD asks Connection: close); its head. */
function rawHead(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = ''
    const s = connect({ port, host: '127.0.0.1' }, () =>
      s.write(`HEAD ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
    )
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      got += d
      if (!got.includes('\r\n\r\n')) return
      s.destroy()
      resolve(got)
    })
    s.on('error', reject)
  })
}

t.test('a small disk body read for a waiting raw request is told as the disk hit it was', async (t) => {
  // Memory takes the body: the threadpool read promotes it, and the request asked again finds it
  // in memory. Its answer still says HIT-DISK (it was read from disk); the next one is HIT-MEM.
  const path = '/vod/promoted/v1/720p/seg-00001.m4s'
  const origin = await startUpstream(t, {
    [path]: async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=600').header('etag', '"p"').send(BODY),
  })
  const edge = await startEdge(t, { upstream: origin.url, clock: aheadClock })
  const store = edge.app.edge.store as TieredStore
  const raw = edge.app.edge.raw!
  const fetch = () => getAlone(edge.url, path)
  t.equal((await fetch()).cache, 'MISS')
  await settled(edge)
  await store.memory.delete(path)
  t.ok(store.disk.has(path) && !store.getInMemory(path), 'on disk only')
  const stats = edge.app.edge.stats
  const disk0 = stats.snapshot().requests['hit-disk']
  const mem0 = stats.snapshot().requests['hit-mem']
  const answered0 = raw.answered
  const h1 = stats.protocols.h1
  const first = await fetch()
  t.equal(first.cache, 'HIT-DISK', 'read from disk, promoted, answered raw: a disk hit')
  t.equal(stats.protocols.h1, h1 + 1, 'one HTTP/1.1 request counted, not one per ask')
  t.ok(first.body.equals(BODY))
  t.equal(raw.answered, answered0 + 1, 'answered on the raw path')
  t.ok(store.getInMemory(path), 'promoted to memory')
  t.equal(stats.snapshot().requests['hit-disk'], disk0 + 1, 'counted as a disk hit')
  t.equal(stats.snapshot().requests['hit-mem'], mem0, 'not as a memory hit')
  t.equal((await fetch()).cache, 'HIT-MEM', 'the next one is a memory hit')
  t.equal(origin.count(path), 1)
})
