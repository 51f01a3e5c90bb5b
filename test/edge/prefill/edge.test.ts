/**
 * Prefill on a real edge in front of a real origin: every object a hit afterwards with zero
 * upstream requests (counted at the origin), /status titlesComplete, popularity counted on
 * the request path, protection against a flood of one-off traffic, and bad input.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { admin, edge, get, originGets, setup, storeObjects, TOKEN, waitJob } from './edge-setup.js'

t.test('after a prefill every object of the title is a hit with zero upstream requests', async (t) => {
  const origin = await setup(t, ['alpha', 'beta'])
  const e = await edge(t, origin, { memorySize: 1e6 })
  const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
  t.equal(r.status, 202)
  const v = await waitJob(e.url, r.json.id)
  t.equal(v.state, 'completed', v.reason ?? '')
  t.match(v.titles, [{ title: 'alpha', state: 'complete' }])
  const objects = await storeObjects(origin.store, 'alpha')
  t.equal(v.objects.total, objects.length, 'the plan names every object the origin has')

  const before = await originGets(origin)
  const tiers = new Set<string>()
  for (const p of objects) {
    const got = await get(e.url, p)
    t.equal(got.status, 200)
    t.match(got.cache, /^HIT/, `${p} is a hit (${got.cache})`)
    if (!p.endsWith('.m3u8')) tiers.add(got.cache)
    const file = join(origin.store, 'titles', p.slice('/vod/'.length))
    t.ok(got.body.equals(await readFile(file)), `${p} byte-identical`)
  }
  t.equal((await originGets(origin)) - before, 0, 'zero upstream requests after the prefill')
  t.same([...tiers], ['HIT-DISK'], 'a prefill writes media to the disk tier, not the memory viewers use')

  const status = (await admin(e.url, 'GET', '/status')).json
  t.same(status.titlesComplete, ['alpha'])

  // A title the origin does not have is no demand: its 404s are not counted.
  t.equal((await get(e.url, '/vod/nosuch/master.m3u8')).status, 404)
  const pop = (await admin(e.url, 'GET', '/admin/popularity')).json
  t.match(pop.popularity[0], { title: 'alpha', requests: objects.length }, 'each request counted once')
  t.same(
    pop.popularity.map((p: { title: string }) => p.title),
    ['alpha'],
    'a title answered 404 is not ranked',
  )

  const again = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
  const v2 = await waitJob(e.url, again.json.id)
  t.equal(v2.state, 'completed')
  t.equal(v2.bytes.fetched, 0, 'the same title again fetches nothing')
  t.ok((await originGets(origin)) - before <= 1, 'at most the short-lived master is asked again')
})

t.test('a flood of one-off requests for other content does not evict a prefilled title', async (t) => {
  const origin = await setup(t, ['alpha', 'beta', 'gamma', 'delta'])
  const alpha = await storeObjects(origin.store, 'alpha')
  // Disk for about two titles, half of it protected; memory too small to hide anything.
  const e = await edge(t, origin, { memorySize: 64_000, diskSize: 6e6, protectedShare: 0.5 })
  const r = await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] })
  t.equal((await waitJob(e.url, r.json.id)).state, 'completed')
  for (const title of ['beta', 'gamma', 'delta'])
    for (const p of await storeObjects(origin.store, title)) t.equal((await get(e.url, p)).status, 200)
  const metrics = (await (await fetch(`${e.url}/metrics`)).text()).split('\n')
  const evictions = metrics.filter((l) => l.startsWith('cdn_edge_evictions_total{') && l.includes('disk'))
  t.ok(
    evictions.some((l) => Number(l.split(' ').pop()) > 0),
    'the flood did evict ordinary objects',
  )
  t.same((await admin(e.url, 'GET', '/status')).json.titlesComplete, ['alpha'])
  const before = await originGets(origin)
  for (const p of alpha) t.match((await get(e.url, p)).cache, /^HIT/, p)
  t.equal((await originGets(origin)) - before, 0, 'alpha is still held whole')
})

t.test('the operator API refuses bad input with 400 naming the field, and needs the token', async (t) => {
  const origin = await setup(t, ['alpha'])
  const e = await edge(t, origin)
  t.equal((await admin(e.url, 'POST', '/admin/prefill', { titles: ['alpha'] }, null)).status, 401)
  t.equal((await admin(e.url, 'GET', '/admin/popularity', undefined, 'wrong-token')).status, 401)
  for (const [body, field] of [
    ['{"titles": ["alpha"', 'body'],
    ['{"titles": ["alpha"], "speed": 1}', 'speed'],
    ['{"titles": ["alpha"], "maxBytesPerSecond": -1}', 'maxBytesPerSecond'],
    ['{"popularity": [{"title": "alpha", "weight": "high"}]}', 'popularity[0].weight'],
  ] as const) {
    const r = await admin(e.url, 'POST', '/admin/prefill', body)
    t.equal(r.status, 400, body)
    t.equal(r.json.error?.field, field)
  }
  t.equal((await admin(e.url, 'GET', '/admin/prefill/pf-none')).status, 404)
  t.equal((await admin(e.url, 'DELETE', '/admin/prefill/pf-none')).status, 404)
  const prefix = await admin(e.url, 'GET', '/admin/popularity', undefined, TOKEN.slice(0, -1))
  t.equal(prefix.status, 401, 'the token less its last character is refused')
})
