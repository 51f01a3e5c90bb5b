/**
 * Negative and error caching: a 404/410 from the upstream is served from cache for at least
 * --not-found-ttl; 5xx only when the operator sets --error-ttl; never what says no-store.
 */
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { startUpstream } from './upstream-server.js'

t.test('404 and 410 are cached for the floor; no-store ones never', async (t) => {
  const clock = new ManualClock(Date.now())
  const up = await startUpstream(t, {
    '/vod/t/missing.m4s': (_req, reply) => reply.code(404).send({ error: 'not here' }),
    '/vod/t/gone.m4s': (_req, reply) => reply.code(410).header('cache-control', 'max-age=60').send('gone'),
    '/vod/t/private.m4s': (_req, reply) => reply.code(404).header('cache-control', 'no-store').send('no'),
  })
  const edge = await startEdge(t, { upstream: up.url, clock, notFoundTtl: 5000 })
  const get = async (p: string) => {
    const r = await fetch(`${edge.url}${p}`)
    await r.arrayBuffer()
    await settled(edge)
    return { status: r.status, cache: r.headers.get('x-cache') }
  }
  t.same(await get('/vod/t/missing.m4s'), { status: 404, cache: 'MISS' })
  t.same(await get('/vod/t/missing.m4s'), { status: 404, cache: 'HIT-MEM' }, 'served from cache')
  t.equal(up.count('/vod/t/missing.m4s'), 1)
  clock.advance(6000)
  t.equal((await get('/vod/t/missing.m4s')).cache, 'MISS', 'refetched after the floor')
  t.equal(up.count('/vod/t/missing.m4s'), 2)

  // The upstream's own longer lifetime wins over the floor.
  await get('/vod/t/gone.m4s')
  clock.advance(30_000)
  t.same(await get('/vod/t/gone.m4s'), { status: 410, cache: 'HIT-MEM' })

  await get('/vod/t/private.m4s')
  t.equal((await get('/vod/t/private.m4s')).cache, 'MISS', 'no-store is never stored')
  t.equal(up.count('/vod/t/private.m4s'), 2)
})

t.test('5xx: never stored by default; stored for --error-ttl when set', async (t) => {
  const clock = new ManualClock(Date.now())
  const up = await startUpstream(t, {
    '/vod/t/a.m4s': (_req, reply) => reply.code(503).send('busy'),
  })
  const plain = await startEdge(t, { upstream: up.url, clock, upstreamMaxFails: 0 })
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${plain.url}/vod/t/a.m4s`)
    t.equal(r.status, 503)
    await r.arrayBuffer()
    await settled(plain)
  }
  t.equal(up.count('/vod/t/a.m4s'), 2, 'every request reached the upstream')

  const shield = await startEdge(t, { upstream: up.url, clock, upstreamMaxFails: 0, errorTtl: 2000 })
  const statuses: (string | null)[] = []
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${shield.url}/vod/t/a.m4s`)
    t.equal(r.status, 503)
    t.equal(await r.text(), 'busy')
    statuses.push(r.headers.get('x-cache'))
    await settled(shield)
  }
  t.same(statuses, ['MISS', 'HIT-MEM', 'HIT-MEM'])
  t.equal(up.count('/vod/t/a.m4s'), 3, 'the shielded edge asked once')
  clock.advance(3000)
  t.equal((await fetch(`${shield.url}/vod/t/a.m4s`)).headers.get('x-cache'), 'MISS', 'expired')
})
