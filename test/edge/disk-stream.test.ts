/**
 * Large disk hits are sent in chunks (edge/http/serve.ts sendStream) once their file is verified and
 * hot: a real edge whose memory tier is too small for the object, over a real upstream.
 */
import t from 'tap'
import { request } from 'undici'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import type { Clock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { startUpstream } from './upstream-server.js'

/** Real time, wall clock ahead, so a file written now counts as settled (see disk-store `intact`). */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() }

const BODY = Buffer.alloc(5 * 1024 * 1024 + 12_345)
for (let i = 0; i < BODY.length; i++) BODY[i] = (i * 31 + (i >> 11)) & 0xff

t.test('a large disk hit streams in chunks with the same bytes and headers', async (t) => {
  const path = '/vod/big/v1/1080p/seg-00001.m4s'
  const origin = await startUpstream(t, {
    [path]: async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=600').header('etag', '"big-1"').send(BODY),
  })
  const edge = await startEdge(t, { upstream: origin.url, memorySize: 1_000_000, clock: aheadClock })
  const disk = (edge.app.edge.store as TieredStore).disk
  const fetch = async (headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') => {
    const res = await request(`${edge.url}${path}`, { headers, method })
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
  }
  t.equal((await fetch()).headers['x-cache'], 'MISS')
  await settled(edge)
  t.ok(disk.has(path), 'the miss was committed to disk')
  const whole = await fetch()
  t.equal(whole.headers['x-cache'], 'HIT-DISK', 'read whole once (verifies the file)')
  t.equal(disk.streamed, 0)

  const lentBefore = disk.pool.lent
  const streamed = await Promise.all([fetch(), fetch(), fetch()])
  t.equal(disk.streamed, 3, 'then streamed')
  // Six chunks each: one buffer per response, refilled once the socket took each chunk.
  t.equal(disk.pool.lent - lentBefore, 3, 'one buffer lent per streamed response, not one per chunk')
  // Every buffer comes back once its response is over (never: the test times out).
  await until(() => disk.pool.lentBytesHeld === 0)
  for (const r of streamed) {
    t.equal(r.status, 200)
    t.equal(r.headers['x-cache'], 'HIT-DISK')
    t.equal(r.headers['content-length'], String(BODY.length))
    t.equal(r.headers.etag, '"big-1"')
    t.ok(r.body.equals(BODY), 'streamed body is the object')
  }
  const head = await fetch({}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], String(BODY.length))
  t.equal(head.body.length, 0)
  const range = await fetch({ range: 'bytes=1000-1999' })
  t.equal(range.status, 206, 'a range is answered from a whole read')
  t.ok(range.body.equals(BODY.subarray(1000, 2000)))
  const cond = await fetch({ 'if-none-match': '"big-1"' })
  t.equal(cond.status, 304)
  t.equal(origin.count(path), 1, 'one upstream fetch in all')
  t.equal(disk.stats().diskErrors, 0)

  // A client that goes away half-way: the edge carries on serving the object.
  const gone = await request(`${edge.url}${path}`)
  gone.body.destroy()
  const after = await fetch()
  t.ok(after.body.equals(BODY), 'served whole after an aborted stream')
})
