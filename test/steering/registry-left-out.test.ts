/**
 * steering_registry_left_out against a real etcd (scripts/etcd.sh): every key the registry watch
 * refuses (a bad record, past --registry-max-edges, at a URL another edge holds) is counted on
 * steering's /metrics while it is refused, and no longer once it is fixed, deleted or taken in.
 * Each step waits for the watch to apply it: a later record (a "sentinel") joining or leaving
 * steering's fleet, which the watch applies after every event before it (etcd's order).
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
      'bad-record': await metricAt(at, 'steering_registry_left_out', { reason: 'bad-record' }),
      full: await metricAt(at, 'steering_registry_left_out', { reason: 'full' }),
      'duplicate-url': await metricAt(at, 'steering_registry_left_out', { reason: 'duplicate-url' }),
    }
  }
  let n = 0
  /** Puts a new valid record and waits until steering has it: every earlier event is applied. */
  const sentinel = async () => {
    const id = `sentinel-${++n}`
    await put(id, recordOf(id, await deadUrl()))
    await until(() => hasEdge(s, id))
  }
  return { s, fileUrl, put, del, leftOut, sentinel }
}

t.test('every reason is exported, at 0, with a registry and without one', async (t) => {
  const plain = await startSteering(t, [{ id: 'a', url: await deadUrl(), site: 'rome', ...PLACES.rome }])
  const text = await (await fetch(`${plain.url}/metrics`)).text()
  for (const reason of ['bad-record', 'full', 'duplicate-url'])
    t.match(text, `steering_registry_left_out{reason="${reason}"} 0`, `${reason}, no registry`)
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { leftOut } = await setup(t, endpoints)
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'an empty registry')
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

t.test('a full registry counts the keys it refuses', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const { s, put, del, leftOut } = await setup(t, endpoints, 2)
  for (const id of ['a', 'b']) await put(id, recordOf(id, await deadUrl()))
  await until(() => hasEdge(s, 'b'))
  for (const id of ['c', 'd']) await put(id, recordOf(id, await deadUrl()))
  // No record can join past the bound: an edge leaving is the sign every earlier put is applied.
  await del('a')
  await until(() => !hasEdge(s, 'a'))
  t.same(
    await leftOut(),
    { 'bad-record': 0, full: 2, 'duplicate-url': 0 },
    'c and d refused (and still out once a left: the watch keeps no refused value)',
  )

  await put('c', recordOf('c', await deadUrl()))
  await until(() => hasEdge(s, 'c'))
  t.same(await leftOut(), { 'bad-record': 0, full: 1, 'duplicate-url': 0 }, 'c put again: taken in')

  await del('d')
  await del('b')
  await until(() => !hasEdge(s, 'b'))
  t.same(await leftOut(), { 'bad-record': 0, full: 0, 'duplicate-url': 0 }, 'd deleted')
})
