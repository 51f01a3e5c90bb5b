/**
 * Steering's readiness (/readyz, kubernetes' readinessProbe): ready at once with a fleet file
 * alone; with a fleet registry, only once it has read it (a replica started while etcd is
 * unreachable has the file's edges alone, none in a registry-only fleet). /healthz, liveness,
 * answers 200 throughout.
 */
import t from 'tap'
import { requireEtcd, testPrefix } from '../helpers/etcd.js'
import { deadUrl, PLACES, startContractEdge, startSteering } from '../helpers/steering.js'
import { until } from '../helpers/wait.js'

async function get(url: string) {
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const fileEdge = async (t: Parameters<typeof startContractEdge>[0]) => {
  const e = await startContractEdge(t, 'rome-1')
  return [{ id: 'rome-1', url: e.url, site: 'rome', ...PLACES.rome }]
}

t.test('with a fleet file alone, ready at once', async (t) => {
  const s = await startSteering(t, await fileEdge(t))
  t.same(await get(`${s.url}/readyz`), { status: 200, body: { ok: true } })
})

t.test('with a registry it cannot reach: alive, not ready', async (t) => {
  const s = await startSteering(t, await fileEdge(t), {
    registryEtcd: [await deadUrl()],
    registryPrefix: testPrefix(),
    // How long steering waits for the registry's first read before it starts without it.
    checkTimeout: 1000,
  })
  const ready = await get(`${s.url}/readyz`)
  t.equal(ready.status, 503)
  t.match(ready.body, { error: { code: 'CDN_ERR_NOT_READY' } })
  t.same(await get(`${s.url}/healthz`), { status: 200, body: { ok: true } })
})

t.test('with a registry it has read: ready', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const s = await startSteering(t, await fileEdge(t), {
    registryEtcd: endpoints,
    registryPrefix: testPrefix(),
  })
  await until(async () => (await get(`${s.url}/readyz`)).status === 200)
  t.same(await get(`${s.url}/readyz`), { status: 200, body: { ok: true } })
})
