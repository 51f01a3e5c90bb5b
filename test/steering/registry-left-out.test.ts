/**
 * cdn_steering_registry_left_out against a real etcd (scripts/etcd.sh): every key the registry watch
 * refuses (a bad record, past --registry-max-edges, at a URL another edge holds) is counted on
 * steering's /metrics while it is refused, and no longer once it is fixed, deleted or taken in.
 * A key refused as full is taken in once an edge leaves room for it, without being put again (an
 * edge keeps its key alive with a lease and never puts it again), with its latest value, and never
 * once deleted. Each step waits for the watch to apply it: a later record (a "sentinel") joining
 * or leaving steering's fleet, which the watch applies after every event before it (etcd's order),
 * or, with no room for one, the gauge reaching the count.
 */
import t, { type Test } from 'tap'
import { etcdClient } from '../../src/fleet-registry.js'
import { requireEtcd, testPrefix } from '../helpers/etcd.js'
import { deadUrl, PLACES, startSteering } from '../helpers/steering.js'
import { metricAt, until } from '../helpers/wait.js'

const recordOf = (id: string, url: string) =>
  JSON.stringify({ id, url, site: 'rome', ...PLACES.rome, capacityBytesPerSec: 1e9, tier: 1 })

const hasEdge = (s: { health: { configs: readonly { id: string }[] } }, id: string) =>
  s.health.configs.some((e) => e.id === id)

/** A steering app watching a fresh prefix, its file one edge ("file-1"), and an etcd client. */
async function setup(t: Test, endpoints: string[], maxEdges?: number) {
  const prefix = testPrefix()
  const client = etcdClient(endpoints)
  t.teardown(() => client.close())
  const fileUrl = await deadUrl()
  const s = await startSteering(t, [{ id: 'file-1', url: fileUrl, site: 'far', lat: -40, lon: 170 }], {
    registryEtcd: endpoints,
    registryPrefix: prefix,
    ...(maxEdges ? { registryMaxEdges: maxEdges } : {}),
  })
  const put = (id: string, value: string) => client.put(`${prefix}${id}`).value(value)
  const del = (id: string) => client.delete().key(`${prefix}${id}`)
  /** The gauge by reason, as /metrics shows it. */
  const leftOut = async () => {
    const at = `${s.url}/metrics`
    return {
      'bad-record': await metricAt(at, 'cdn_steering_registry_left_out', { reason: 'bad-record' }),
      full: await metricAt(at, 'cdn_steering_registry_left_out', { reason: 'full' }),
      'duplicate-url': await metricAt(at, 'cdn_steering_registry_left_out', { reason: 'duplicate-url' }),
    }
  }
  let n = 0
  /** Puts a new valid record and waits until steering has it: every earlier event is applied. */
  const sentinel = async () => {
    const id = `sentinel-${++n}`
    await put(id, recordOf(id, await deadUrl()))
    await until(() => hasEdge(s, id))
  }
  /** Waits until the gauge counts `n` keys refused as full: the watch applied their puts. */
  const refused = (n: number) => until(async () => (await leftOut()).full === n)
  return { s, client, prefix, fileUrl, put, del, leftOut, sentinel, refused }
}

t.test('the dead URLs a test takes are never the same', async (t) => {
  // Each edge here stands at a URL of its own: one handed out twice is a duplicate, left out.
  const urls = new Set<string>()
  for (let i = 0; i < 500; i++) urls.add(await deadUrl())
  t.equal(urls.size, 500)
})

t.test('every reason is exported, at 0, with a registry and without one', async (t) => {
  const plain = await startSteering(t, [{ id: 'a', url: await deadUrl(), site: 'rome', ...PLACES.rome }])
  const text = await (await fetch(`${plain.url}/metrics`)).text()
  for (const reason of ['bad-record', 'full', 'duplicate-url'])
    t.match(text, `cdn_steering_registry_left_out{reason="${reason}"} 0`, `${reason}, no registry`)
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, leftOut } = await setup(t, endpoints)
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'an empty registry')
  t.match(await (await fetch(`${s.url}/metrics`)).text(), /^cdn_steering_registry_watch_stale_total 0$/m)
})

t.test('a duplicate URL counts while left out, and not once its holder leaves', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, fileUrl, put, del, leftOut, sentinel } = await setup(t, endpoints)
  const url = await deadUrl()
  await put('a', recordOf('a', url))
  await until(() => hasEdge(s, 'a'))
  await put('b', recordOf('b', `${url}/`))
  await sentinel()
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 1 }, 'b: a holds its URL')

  await put('f', recordOf('f', fileUrl))
  await sentinel()
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 2 }, "f: at the file's URL")

  await del('a')
  await until(() => hasEdge(s, 'b') && !hasEdge(s, 'a'))
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 1 }, 'b taken in')

  await del('f')
  await sentinel()
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'f deleted')
})

t.test('a bad record counts until it is fixed or deleted', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut, sentinel } = await setup(t, endpoints)
  const url = await deadUrl()
  await put('bad', '{')
  await put('other', recordOf('not-its-key', url))
  await sentinel()
  t.same(await leftOut(), { 'bad-record': 2, full: 0, 'duplicate-url': 0 }, 'not JSON; id not its key')

  await put('bad', recordOf('bad', url))
  await until(() => hasEdge(s, 'bad'))
  t.same(await leftOut(), { 'bad-record': 1, full: 0, 'duplicate-url': 0 }, 'fixed: taken in')

  await put('bad', JSON.stringify({ id: 'bad' }))
  await until(() => !hasEdge(s, 'bad'))
  t.same(await leftOut(), { 'bad-record': 2, full: 0, 'duplicate-url': 0 }, 'broken again: out again')

  await del('bad')
  await del('other')
  await sentinel()
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'deleted')
})

t.test('a full registry counts the keys it refuses until there is room', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut, refused } = await setup(t, endpoints, 2)
  for (const id of ['a', 'b']) await put(id, recordOf(id, await deadUrl()))
  await until(() => hasEdge(s, 'b'))
  for (const id of ['c', 'd']) await put(id, recordOf(id, await deadUrl()))
  await refused(2)
  t.same(await leftOut(), { 'bad-record': 0, full: 2, 'duplicate-url': 0 }, 'c and d refused')

  await del('a')
  await until(() => hasEdge(s, 'c') && !hasEdge(s, 'a'))
  t.same(await leftOut(), { 'bad-record': 0, full: 1, 'duplicate-url': 0 }, 'a left: c taken in')

  await del('d')
  await refused(0)
  t.notOk(hasEdge(s, 'd'), 'd deleted')
})

t.test('a key refused as full is taken in once an edge leaves, not put again', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, client, prefix, leftOut, refused } = await setup(t, endpoints, 1)
  // Two edges as edge/registry.ts registers them: each key put once, on a lease kept alive.
  const [a, b] = [client.lease(60), client.lease(60)]
  t.teardown(() => Promise.all([a.revoke(), b.revoke()]).catch(() => undefined))
  const bUrl = await deadUrl()
  await a.put(`${prefix}a`).value(recordOf('a', await deadUrl()))
  await until(() => hasEdge(s, 'a'))
  await b.put(`${prefix}b`).value(recordOf('b', bUrl))
  await refused(1)
  t.notOk(hasEdge(s, 'b'), 'b refused: one edge at most')

  await a.revoke()
  await until(() => hasEdge(s, 'b'))
  t.notOk(hasEdge(s, 'a'), 'a left (its lease revoked)')
  t.equal(s.health.configs.find((e) => e.id === 'b')?.url, bUrl, "b's record, read back from etcd")
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'nothing refused')
})

t.test('a key refused as full and deleted before there is room is not brought back', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut, sentinel, refused } = await setup(t, endpoints, 2)
  for (const id of ['a', 'x']) await put(id, recordOf(id, await deadUrl()))
  await until(() => hasEdge(s, 'x'))
  // b refused before c (a lower revision): taken in first, were it brought back.
  for (const id of ['b', 'c']) await put(id, recordOf(id, await deadUrl()))
  await refused(2)
  await del('b')
  await refused(1)

  await del('a')
  await del('x')
  await until(() => hasEdge(s, 'c'))
  t.notOk(hasEdge(s, 'b'), 'b stays out: deleted')
  await sentinel()
  t.same(
    s.health.configs.map((e) => e.id).sort(),
    ['c', 'file-1', 'sentinel-1'],
    'room for one more: the sentinel, not b',
  )
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'nothing refused')
})

t.test('a key refused as full and put again is taken in with its latest value', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut, refused } = await setup(t, endpoints, 2)
  for (const id of ['a1', 'a2']) await put(id, recordOf(id, await deadUrl()))
  await until(() => hasEdge(s, 'a2'))
  const [first, latest] = [await deadUrl(), await deadUrl()]
  await put('b', recordOf('b', first))
  await put('b', recordOf('b', latest))
  await put('c', recordOf('c', await deadUrl()))
  // c's refusal counted: b's second put (before it) is applied too.
  await refused(2)

  await del('a1')
  await until(() => hasEdge(s, 'b'))
  t.equal(s.health.configs.find((e) => e.id === 'b')?.url, latest, "b at its latest put's URL")
  t.notOk(hasEdge(s, 'c'), 'room for one: b, refused first (its latest put is still before c)')
  t.same(await leftOut(), { 'bad-record': 0, full: 1, 'duplicate-url': 0 }, 'c still refused')

  await del('a2')
  await until(() => hasEdge(s, 'c'))
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'c taken in')
})

t.test('past maxEdges keys refused, the ones not counted are found by a full read', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut } = await setup(t, endpoints, 1)
  await put('a', recordOf('a', await deadUrl()))
  await until(() => hasEdge(s, 'a'))
  await put('b', recordOf('b', await deadUrl()))
  await put('c', recordOf('c', await deadUrl()))
  // a moving is the sign b and c (before it) are applied: b counted, c past the bound.
  const moved = await deadUrl()
  await put('a', recordOf('a', moved))
  await until(() => s.health.configs.some((e) => e.id === 'a' && e.url === moved))
  t.same(await leftOut(), { 'bad-record': 0, full: 1, 'duplicate-url': 0 }, 'at most maxEdges counted')

  await del('a')
  await until(() => hasEdge(s, 'b'))
  await del('b')
  await until(() => hasEdge(s, 'c'))
  t.same(s.health.configs.map((e) => e.id).sort(), ['c', 'file-1'], 'c taken in: a full read found it')
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'nothing refused')
})
