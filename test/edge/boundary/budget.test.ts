/**
 * Every byte budgeted: misses and disk reads reserve their bytes in the in-flight budget and
 * wait when it is spent; a client that does not read pins at most what it was given (counted),
 * pauses a stream too large to keep, or is dropped from one another client shares.
 */
import { once } from 'node:events'
import t from 'tap'
import { CLIENT_WINDOW_BYTES } from '../../../edge/inflight-budget.js'
import { startEdge } from '../../helpers/edge.js'
import { metricAt, until } from '../../helpers/wait.js'
import { budgetIdle, get, nonReader, streamUpstream } from './streams.js'

const MB = 1024 * 1024

async function body(url: string, init?: RequestInit): Promise<{ status: number; length: number }> {
  const r = await fetch(url, init)
  return { status: r.status, length: (await r.arrayBuffer()).byteLength }
}

t.test('misses wait for the budget instead of allocating past it', async (t) => {
  const sizes: Record<string, number> = {}
  for (let i = 0; i < 10; i++) sizes[`/vod/b/v1/720p/seg-${i}.m4s`] = MB
  const up = await streamUpstream(t, sizes)
  const edge = await startEdge(t, { upstream: up.url, inflightBudget: 3 * MB })
  const budget = edge.app.edge.budget
  const queued = once(budget, 'queued')
  const results = await Promise.all(Object.keys(sizes).map((p) => body(edge.url + p)))
  await queued
  t.same(
    results,
    Object.keys(sizes).map(() => ({ status: 200, length: MB })),
    'every miss answered whole',
  )
  t.ok(budget.peak <= 3 * MB, `at most the budget in flight (peak ${budget.peak})`)
  await budgetIdle(budget)
  t.equal(budget.bytes, 0, 'everything released once the flights are over')
})

t.test(
  'disk reads are reserved until their response is over; a waiter gets 503 at its timeout',
  async (t) => {
    const size = 16 * MB
    const paths = ['/vod/d/v1/720p/a.m4s', '/vod/d/v1/720p/b.m4s', '/vod/d/v1/720p/c.m4s']
    const up = await streamUpstream(t, Object.fromEntries(paths.map((p) => [p, size])))
    const edge = await startEdge(t, {
      upstream: up.url,
      memorySize: 0,
      maxObjectSize: 64 * MB,
      inflightBudget: 40 * MB,
      waiterTimeout: 2000,
    })
    const budget = edge.app.edge.budget
    for (const p of paths) t.equal((await body(edge.url + p)).length, size, `filled ${p}`)
    await budgetIdle(budget)
    // Two clients that never read: each disk body stays reserved while its response is open.
    const slow = [await nonReader(t, edge.url, get(paths[0]!)), await nonReader(t, edge.url, get(paths[1]!))]
    while (budget.bytes < 2 * size) await once(budget, 'reserve')
    t.equal(budget.bytes, 2 * size, 'two bodies held for two slow clients')
    const queued = once(budget, 'queued')
    const third = body(edge.url + paths[2]!)
    await queued
    const refused = await third
    t.equal(refused.status, 503, 'the third read waited, then was refused at its timeout')
    t.ok(budget.peak <= 40 * MB, `never past the budget (peak ${budget.peak})`)
    const pool = (edge.app.edge.store as unknown as { disk: { pool: { lentBytesHeld: number } } }).disk.pool
    t.equal(pool.lentBytesHeld, 2 * size, 'the two bodies are lent from the pool')
    for (const s of slow) s.destroy()
    await budgetIdle(budget)
    t.equal(pool.lentBytesHeld, 0, 'a response whose client went away gives its buffer back at once')
    t.equal((await body(edge.url + paths[2]!)).length, size, 'served once the slow clients are gone')
  },
)

t.test('a disk read whose client left while it waited for the budget gives its buffer back', async (t) => {
  const size = 16 * MB
  const path = '/vod/g/v1/720p/a.m4s'
  const up = await streamUpstream(t, { [path]: size })
  const edge = await startEdge(t, {
    upstream: up.url,
    memorySize: 0,
    maxObjectSize: 64 * MB,
    inflightBudget: 20 * MB,
  })
  const budget = edge.app.edge.budget
  const pool = (edge.app.edge.store as unknown as { disk: { pool: { lentBytesHeld: number } } }).disk.pool
  t.equal((await body(edge.url + path)).length, size, 'filled')
  await budgetIdle(budget)
  const diskHits = () => metricAt(`${edge.url}/metrics`, 'cdn_edge_requests_total', { result: 'hit-disk' })
  const slow = await nonReader(t, edge.url, get(path))
  while (budget.bytes < size) await once(budget, 'reserve')
  // A second client asks, waits for the budget, and goes away before its turn comes.
  const queued = once(budget, 'queued')
  const gone = await nonReader(t, edge.url, get(path))
  await queued
  gone.destroy()
  slow.destroy()
  // Its turn comes after it left: the body is read and answered to a closed response.
  await until(async () => (await diskHits()) >= 2)
  await budgetIdle(budget)
  t.equal(pool.lentBytesHeld, 0, 'every lent body is back in the pool')
})

t.test('a slow client of a kept miss pins the buffer, counted, until its response is over', async (t) => {
  const path = '/vod/p/v1/720p/seg-1.m4s'
  const size = 16 * MB
  const up = await streamUpstream(t, { [path]: size })
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: 64 * MB, memorySize: 0 })
  const budget = edge.app.edge.budget
  const slow = await nonReader(t, edge.url, get(path))
  t.equal(await up.ended(path), 'finished', 'the upstream is read whole (the object is kept)')
  await edge.app.edge.flights.settled('p')
  t.equal(edge.app.edge.flights.size, 0, 'the flight is over')
  t.equal(budget.bytes, size, 'the slow client still holds the body, and it is counted')
  const store = edge.app.edge.store
  t.equal(store.stats().poolBytes, size, 'the body is a pooled buffer, lent while the client holds it')
  slow.destroy()
  await budgetIdle(budget)
  t.equal(budget.bytes, 0)
  const fresh = await body(edge.url + path)
  t.equal(fresh.length, size, 'a disk hit reuses the buffer once it is back')
  t.equal(store.stats().poolBytes, size, 'one buffer, reused: the pool did not grow')
})

t.test('a client that never reads pauses a stream too large to keep', async (t) => {
  const path = '/vod/u/v1/720p/huge.m4s'
  const size = 256 * MB
  const up = await streamUpstream(t, { [path]: size })
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: MB })
  const budget = edge.app.edge.budget
  const stalled = once(budget, 'stall').then(() => 'stalled' as const)
  const slow = await nonReader(t, edge.url, get(path))
  const first = await Promise.race([stalled, up.ended(path)])
  t.equal(first, 'stalled', 'the edge paused the upstream before it sent everything')
  // The stream is stored as slices of the keep limit as it passes: the one in progress counts too.
  t.ok(budget.bytes <= CLIENT_WINDOW_BYTES + MB, `one window and one slice reserved (${budget.bytes})`)
  slow.destroy()
  t.equal(await up.ended(path), 'cut', 'the client gone, the upstream fetch is abandoned')
  t.ok(up.written < size, `the upstream sent ${up.written} of ${size} bytes`)
  await budgetIdle(budget)
})

t.test('a client a window behind a shared uncached stream is dropped; the other is served', async (t) => {
  const path = '/vod/s/v1/720p/huge.m4s'
  const size = 64 * MB
  const up = await streamUpstream(t, { [path]: size })
  const gate = up.hold(path)
  const edge = await startEdge(t, { upstream: up.url, maxObjectSize: MB })
  const budget = edge.app.edge.budget
  const slow = await nonReader(t, edge.url, get(path))
  // The second request joins the first one's flight while the upstream holds its headers.
  while (up.requests.get(path) !== 1) await new Promise((r) => setImmediate(r))
  const fast = body(edge.url + path)
  while (edge.app.edge.flights.current(path)?.sinks.size !== 2) await new Promise((r) => setImmediate(r))
  const dropped = once(budget, 'drop')
  gate.release()
  t.same(await fast, { status: 200, length: size }, 'the reading client got every byte')
  await dropped
  t.equal(budget.drops, 1, 'the client that does not read was dropped')
  slow.destroy()
  t.equal(up.requests.get(path), 1, 'one upstream fetch for both')
})

t.test('a relayed answer moves at the pace of its client', async (t) => {
  const size = 256 * MB
  const up = await streamUpstream(t, { '/beacon': size })
  const edge = await startEdge(t, { upstream: up.url, passThrough: ['POST'], publicPath: ['/beacon'] })
  const budget = edge.app.edge.budget
  const stalled = once(budget, 'stall').then(() => 'stalled' as const)
  const slow = await nonReader(
    t,
    edge.url,
    'POST /beacon HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\n\r\n',
  )
  const first = await Promise.race([stalled, up.ended('/beacon')])
  t.equal(first, 'stalled', 'the relay stopped reading the upstream')
  t.equal(budget.bytes, CLIENT_WINDOW_BYTES, 'one window reserved')
  slow.destroy()
  t.equal(await up.ended('/beacon'), 'cut', 'the upstream answer is abandoned with its client')
  await budgetIdle(budget)
})
