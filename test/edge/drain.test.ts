/**
 * Draining before close (SIGTERM with --drain-delay): the edge leaves the fleet registry,
 * /readyz answers 503 CDN_ERR_DRAINING and /status says `draining`, so kubernetes and steering
 * stop sending clients, while /healthz (liveness) and content answer as before until it closes.
 * The CLI cases run the built CLI (`npm run build` first).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect as h2Connect } from 'node:http2'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { startEdge } from '../helpers/edge.js'
import { etcdSetup, registeringRome } from '../helpers/etcd.js'
import { PLACES, startSteering } from '../helpers/steering.js'
import { h2Exchange, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'
import { open, parseResponses, type WireResponse } from './boundary/wire.js'
import { alive, childrenOf, once, procStat, startCluster, status } from './cluster-process.js'
import { startUpstream } from './upstream-server.js'
import { repoPath } from '../helpers/repo.js'

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

/** A keep-alive HTTP/1.1 connection: `get()` sends one request and resolves with its answer. */
function keepAlive(socket: Socket) {
  let buf = Buffer.alloc(0)
  let wanted = 0
  let waiter: ((r: WireResponse) => void) | undefined
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  // The edge ended the connection (its FIN), rather than reset it.
  let ended = false
  socket.once('end', () => (ended = true))
  socket.on('error', () => undefined)
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d])
    const { responses } = parseResponses(buf)
    if (responses.length >= wanted && waiter) waiter(responses[wanted - 1]!)
  })
  return {
    get(path: string): Promise<WireResponse> {
      wanted++
      const answer = new Promise<WireResponse>((resolve) => (waiter = resolve))
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
      return answer
    },
    closed,
    get ended() {
      return ended
    },
  }
}

t.test('a drain tells keep-alive clients to go: connection: close on HTTP/1.1', async (t) => {
  const up = await startUpstream(t, routes)
  const edge = await startEdge(t, { upstream: up.url })
  const port = Number(new URL(edge.url).port)
  t.equal((await fetch(`${edge.url}/vod/t/seg.ts`)).status, 200, 'cached')
  // A connection whose requests are raw hits (edge/http/raw-hits.ts), and one node's http holds
  // (its first request has a query: handed over for good).
  const c = keepAlive(await open(port))
  const answered = edge.app.edge.raw!.answered
  const hit = await c.get('/vod/t/seg.ts')
  t.equal(edge.app.edge.raw!.answered, answered + 1, 'a raw hit')
  const n = keepAlive(await open(port))
  const viaNode = await n.get('/vod/t/seg.ts?x=1')
  t.same(
    [hit.headers.connection, viaNode.headers.connection],
    ['keep-alive', 'keep-alive'],
    'kept alive before the drain',
  )
  // Another connection, idle across the drain start.
  const idle = keepAlive(await open(port))
  t.equal((await idle.get('/vod/t/seg.ts')).headers.connection, 'keep-alive')

  await edge.app.edge.drain()
  const after = await c.get('/vod/t/seg.ts')
  t.equal(after.status, 200, 'the request after the drain is answered')
  t.same(after.body, SEGMENT)
  t.equal(after.headers.connection, 'close', 'and told to go')
  await c.closed
  t.ok(c.ended, 'the edge closed the connection after the answer, cleanly (not a reset)')
  const nodeAfter = await n.get('/vod/t/seg.ts?x=1')
  t.same([nodeAfter.status, nodeAfter.headers.connection], [200, 'close'], "node's http connection too")
  await n.closed
  const fromIdle = await idle.get('/vod/t/seg.ts')
  t.same(
    [fromIdle.status, fromIdle.headers.connection],
    [200, 'close'],
    'an idle connection: at its next request',
  )
  await idle.closed
  // A connection opened during the drain: served, then closed.
  const late = keepAlive(await open(port))
  const first = await late.get('/vod/t/seg.ts')
  t.same([first.status, first.headers.connection], [200, 'close'], 'a new connection: its first answer')
  await late.closed
})

t.test('a drain sends each HTTP/2 session a GOAWAY; open streams finish', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, routes)
  const edge = await startEdge(t, { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key] })
  const session = h2Connect(edge.url, { ca: certs.caPem, servername: 'localhost' })
  session.on('error', () => undefined)
  t.teardown(() => session.destroy())
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
  const get = { ':path': '/vod/t/seg.ts', ':authority': 'localhost' }
  t.equal((await h2Exchange(session, get)).status, 200)
  await edge.app.edge.drain()
  await goaway
  t.pass('the session was sent a GOAWAY')
  await new Promise<void>((resolve) => session.once('close', () => resolve()))
  // A session opened during the drain: its first stream is answered, then the GOAWAY.
  const late = h2Connect(edge.url, { ca: certs.caPem, servername: 'localhost' })
  late.on('error', () => undefined)
  t.teardown(() => late.destroy())
  const lateGoaway = new Promise<void>((resolve) => late.once('goaway', () => resolve()))
  const r = await h2Exchange(late, get)
  t.equal(r.status, 200, 'its request is answered')
  t.equal(r.body.length, SEGMENT.length)
  await lateGoaway
  t.pass('then it was sent a GOAWAY')
})

t.test('a drain refuses no HTTP/2 request the client sent before it saw the GOAWAY', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, routes)
  const edge = await startEdge(t, { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key] })
  const get = { ':path': '/vod/t/seg.ts', ':authority': 'localhost' }
  await edge.app.edge.drain()
  // Three requests in one flight on a session opened during the drain: the first one's stream
  // tells the session to go; the two sent with it were refused (RST_STREAM REFUSED_STREAM).
  const late = h2Connect(edge.url, { ca: certs.caPem, servername: 'localhost' })
  late.on('error', () => undefined)
  t.teardown(() => late.destroy())
  const goaways: number[] = []
  late.on('goaway', (code) => goaways.push(code))
  const answers = await Promise.allSettled([
    h2Exchange(late, get),
    h2Exchange(late, get),
    h2Exchange(late, get),
  ])
  t.same(
    answers.map((a) => (a.status === 'fulfilled' ? [a.value.status, a.value.body.length] : String(a.reason))),
    [
      [200, SEGMENT.length],
      [200, SEGMENT.length],
      [200, SEGMENT.length],
    ],
    'every request sent before the GOAWAY is answered',
  )
  t.ok(goaways.length > 0 && goaways.every((c) => c === 0), 'and the session was told to go (NO_ERROR)')
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
  // Keep-alive connections, one dealt to each worker.
  const conns = [
    keepAlive(await open(Number(new URL(c.url).port))),
    keepAlive(await open(Number(new URL(c.url).port))),
  ]
  for (const k of conns) t.equal((await k.get('/vod/t/seg.ts')).headers.connection, 'keep-alive')
  c.proc.kill('SIGTERM')
  // Each request on its own connection, dealt to each worker in turn: every one says so.
  await until(async () => (await once(c.url, '/readyz')).status === 503)
  // Printed once every worker answered that it told its clients.
  await until(() => /keep-alive clients told to go/.test(c.stderr()))
  for (const [i, k] of conns.entries()) {
    const r = await k.get('/vod/t/seg.ts')
    t.same([r.status, r.headers.connection], [200, 'close'], `keep-alive connection ${i}: told to go`)
    await k.closed
  }
  for (let i = 0; i < 2; i++) {
    const r = await once(c.url, '/readyz')
    t.equal(r.status, 503, `worker ${i}: /readyz`)
    t.match(JSON.parse(r.body.toString()), { error: { code: 'CDN_ERR_DRAINING' } })
    t.equal((await once(c.url, '/vod/t/seg.ts')).status, 200, `worker ${i}: content`)
  }
  t.equal(JSON.parse((await once(c.url, '/status')).body.toString()).draining, true)
  t.match(c.stderr(), /SIGTERM, draining for 600000 ms, then closing/)
})

t.test('cdn edge --workers 2: a worker given its init just before the drain is told too', async (t) => {
  // A worker that gets its init while this file exists stops there (stop-at-init.mjs).
  const marker = join(mkdtempSync(join(tmpdir(), 'cdn-drain-')), 'stop')
  t.teardown(() => rmSync(dirname(marker), { recursive: true, force: true }))
  const preload = repoPath('test/edge/stop-at-init.mjs')
  const up = await startUpstream(t, routes)
  const c = await startCluster(t, up.url, ['--drain-delay', '10m'], {
    env: {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`,
      CDN_TEST_STOP_AT_INIT: marker,
    },
  })
  writeFileSync(marker, '')
  const [first] = childrenOf(c.pid)
  process.kill(first!, 'SIGKILL')
  // Its replacement, stopped with its init (not draining) in hand, not listening.
  let fresh: number | undefined
  await until(() => (fresh = childrenOf(c.pid).find((p) => procStat(p)?.state === 'T')) !== undefined)
  t.teardown(() => void (alive(fresh!) && process.kill(fresh!, 'SIGCONT')))
  c.proc.kill('SIGTERM')
  await until(async () => (await once(c.url, '/readyz')).status === 503)
  process.kill(fresh!, 'SIGCONT')
  await until(() => /keep-alive clients told to go/.test(c.stderr()))
  await until(async () => (await status(c)).workers === 2)
  t.ok(childrenOf(c.pid).includes(fresh!), 'the new worker serves')
  // Connections are dealt round-robin: two land on each worker.
  for (let i = 0; i < 4; i++) {
    const k = keepAlive(await open(Number(new URL(c.url).port)))
    const r = await k.get('/vod/t/seg.ts')
    t.same([r.status, r.headers.connection], [200, 'close'], `connection ${i}: told to go`)
    await k.closed
  }
})

t.test('cdn edge: after the drain delay it closes and exits 0', async (t) => {
  const up = await startUpstream(t, routes)
  const c = await startCluster(t, up.url, ['--drain-delay', '1s'], { workers: 1 })
  c.proc.kill('SIGTERM')
  const { code } = await c.exit
  t.equal(code, 0)
  t.match(c.stderr(), /SIGTERM, draining for 1000 ms, then closing\n(.*\n)?.*SIGTERM, closing/)
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
