/**
 * Draining before close (SIGTERM with --drain-delay): the edge leaves the fleet registry,
 * /readyz answers 503 CDN_ERR_DRAINING and /status says `draining`, so kubernetes and steering
 * stop sending clients, while /healthz (liveness) and content answer as before until it closes.
 * The CLI cases run the built CLI (`npm run build` first).
 */
import t from 'tap'
import { startEdge } from '../helpers/edge.js'
import { etcdSetup, registeringRome } from '../helpers/etcd.js'
import { PLACES, startSteering } from '../helpers/steering.js'
import { until } from '../helpers/wait.js'
import { alive, childrenOf, once, startCluster } from './cluster-process.js'
import { startUpstream } from './upstream-server.js'

const SEGMENT = Buffer.alloc(3000, 7)
const routes = {
  '/vod/t/seg.ts': async (
    _req: unknown,
    reply: { header(k: string, v: string): { send(b: Buffer): void } },
  ) => reply.header('cache-control', 'max-age=60').send(SEGMENT),
}

async function json(url: string) {
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

t.test('a draining edge: /readyz 503, /status says so, content and /healthz as before', async (t) => {
  const up = await startUpstream(t, routes)
  const edge = await startEdge(t, { upstream: up.url })
  t.same(await json(`${edge.url}/readyz`), { status: 200, body: { ok: true } }, 'ready before')
  t.notOk((await json(`${edge.url}/status`)).body.draining, 'no draining field before')

  await edge.app.edge.drain()
  const ready = await json(`${edge.url}/readyz`)
  t.equal(ready.status, 503)
  t.match(ready.body, { error: { code: 'CDN_ERR_DRAINING' } })
  t.equal((await json(`${edge.url}/status`)).body.draining, true)
  t.same(await json(`${edge.url}/healthz`), { status: 200, body: { ok: true } }, 'alive: not restarted')
  const seg = await fetch(`${edge.url}/vod/t/seg.ts`)
  t.equal(seg.status, 200, 'content is still served')
  t.same(Buffer.from(await seg.arrayBuffer()), SEGMENT)
  await edge.app.edge.drain()
  t.ok(edge.app.edge.draining, 'draining again changes nothing')
})

t.test('steering takes a draining edge out of rotation at its next check', async (t) => {
  const up = await startUpstream(t, routes)
  const [rome, milan] = [await startEdge(t, { upstream: up.url }), await startEdge(t, { upstream: up.url })]
  const s = await startSteering(t, [
    { id: 'rome', url: rome.url, site: 'rome', ...PLACES.rome },
    { id: 'milan', url: milan.url, site: 'milan', ...PLACES.milan },
  ])
  await s.health.checkNow()
  const steer = async () => {
    const res = await fetch(`${s.url}/steer?title=t&lat=${PLACES.rome.lat}&lon=${PLACES.rome.lon}`)
    return ((await res.json()) as { edges: { id: string }[] }).edges.map((e) => e.id)
  }
  t.same(await steer(), ['rome', 'milan'], 'nearest first')
  await rome.app.edge.drain()
  await s.health.checkNow()
  t.same(await steer(), ['milan'], 'the draining edge is left out')
  const edges = (await json(`${s.url}/edges`)).body.edges as {
    id: string
    inRotation: boolean
    why: string
  }[]
  t.match(
    edges.find((e) => e.id === 'rome'),
    { inRotation: false, why: /^draining/ },
  )
})

t.test('a draining edge leaves the fleet registry while it still serves', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const up = await startUpstream(t, routes)
  const edge = await startEdge(t, { upstream: up.url, ...registeringRome(endpoints, prefix) })
  await until(async () => (await etcd.get(`${prefix}rome-1`).string()) !== null)
  await edge.app.edge.drain()
  t.equal(await etcd.get(`${prefix}rome-1`).string(), null, 'its key is gone once drain() resolves')
  t.equal((await fetch(`${edge.url}/vod/t/seg.ts`)).status, 200, 'and it still serves')
})

t.test('cdn edge --workers 2: SIGTERM drains the whole host', async (t) => {
  const up = await startUpstream(t, routes)
  const c = await startCluster(t, up.url, ['--drain-delay', '10m'])
  t.equal((await once(c.url, '/readyz')).status, 200)
  c.proc.kill('SIGTERM')
  // Each request on its own connection, dealt to each worker in turn: every one says so.
  await until(async () => (await once(c.url, '/readyz')).status === 503)
  for (let i = 0; i < 2; i++) {
    const r = await once(c.url, '/readyz')
    t.equal(r.status, 503, `worker ${i}: /readyz`)
    t.match(JSON.parse(r.body.toString()), { error: { code: 'CDN_ERR_DRAINING' } })
    t.equal((await once(c.url, '/vod/t/seg.ts')).status, 200, `worker ${i}: content`)
  }
  t.equal(JSON.parse((await once(c.url, '/status')).body.toString()).draining, true)
  t.match(c.stderr(), /SIGTERM, draining for 600000 ms, then closing/)
})

t.test('cdn edge: after the drain delay it closes and exits 0', async (t) => {
  const up = await startUpstream(t, routes)
  const c = await startCluster(t, up.url, ['--drain-delay', '1s'], { workers: 1 })
  c.proc.kill('SIGTERM')
  const { code } = await c.exit
  t.equal(code, 0)
  t.match(c.stderr(), /SIGTERM, draining for 1000 ms, then closing\n.*SIGTERM, closing/)
})

t.test('cdn edge: a second SIGINT or SIGTERM cuts the drain short and it closes, exiting 0', async (t) => {
  for (const [first, second] of [
    ['SIGTERM', 'SIGINT'],
    ['SIGTERM', 'SIGTERM'],
  ] as const) {
    const up = await startUpstream(t, routes)
    const c = await startCluster(t, up.url, ['--drain-delay', '10m'], { workers: 1 })
    c.proc.kill(first)
    await until(async () => (await once(c.url, '/readyz')).status === 503)
    c.proc.kill(second)
    const { code, signal } = await c.exit
    t.same({ code, signal }, { code: 0, signal: null }, `${first} then ${second}: a clean exit`)
    t.match(c.stderr(), new RegExp(`${second} while draining, closing`), `${first} then ${second}`)
  }
})

t.test('cdn edge --workers 2: a SIGTERM to the whole process group leaves the workers serving', async (t) => {
  const up = await startUpstream(t, routes)
  const c = await startCluster(t, up.url, ['--drain-delay', '10m'])
  const workers = childrenOf(c.pid)
  t.equal(workers.length, 2)
  // As systemd (KillMode=control-group) or a terminal's Ctrl-C does: every process gets it.
  for (const pid of workers) process.kill(pid, 'SIGTERM')
  c.proc.kill('SIGTERM')
  await until(async () => (await once(c.url, '/readyz')).status === 503)
  for (let i = 0; i < 2; i++)
    t.equal((await once(c.url, '/vod/t/seg.ts')).status, 200, `worker ${i}: content while draining`)
  t.same(childrenOf(c.pid), workers, 'the same workers: none was ended by the signal')
  t.ok(workers.every(alive))
})
