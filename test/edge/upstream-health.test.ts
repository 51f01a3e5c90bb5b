/**
 * Upstream health (edge/upstream/client.ts): a failing upstream is remembered, so nobody waits a
 * full timeout on it again; stale-if-error answers come at once, misses fail fast with 503, the
 * next upstream in the list takes over, and a background probe brings it back. A pooled
 * connection the peer closed is retried once, not counted as a failure.
 */
import { createServer as createNetServer, type Socket } from 'node:net'
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { pattern, startUpstream } from './upstream-server.js'

t.test('a hung upstream: one request waits its timeout, the next get stale or 503 at once', async (t) => {
  const clock = new ManualClock(Date.now())
  let hung = false
  const parked: (() => void)[] = []
  const up = await startUpstream(t, {
    '/vod/t/master.m3u8': (_req, reply) => {
      if (hung) return new Promise<void>((r) => parked.push(r))
      return reply
        .header('date', new Date(clock.now()).toUTCString())
        .header('cache-control', 'max-age=2, stale-if-error=3600')
        .send('#EXTM3U')
    },
    '/vod/t/new.m4s': (_req, reply) => {
      if (hung) return new Promise<void>((r) => parked.push(r))
      return reply.send(pattern(1000))
    },
    '/healthz': (_req, reply) => {
      if (hung) return new Promise<void>((r) => parked.push(r))
      return reply.send({ ok: true })
    },
  })
  t.teardown(() => parked.forEach((r) => r()))
  const edge = await startEdge(t, {
    upstream: up.url,
    clock,
    // Paid once, by the first request after the hang. The live upstream's answers (the first
    // miss, the revalidation once it is back) must come within it too, and a busy 2-core machine
    // can take longer than 300 ms over one (a spurious STALE, a second down_total): generous.
    headersTimeout: 3000,
    upstreamProbeInterval: 50,
  })
  const metrics = `${edge.url}/metrics`
  t.equal((await fetch(`${edge.url}/vod/t/master.m3u8`)).headers.get('x-cache'), 'MISS')
  t.equal(await metricAt(metrics, 'cdn_edge_upstream_up'), 1, 'up at start')

  hung = true
  clock.advance(10_000)
  // The first request after the hang pays the headers timeout once, then gets the stale copy.
  const first = await fetch(`${edge.url}/vod/t/master.m3u8`)
  t.equal(first.headers.get('x-cache'), 'STALE')
  t.equal(await metricAt(metrics, 'cdn_edge_upstream_up'), 0, 'marked down')
  const sent = up.count('/vod/t/master.m3u8')

  // Every later request is answered without asking the hung upstream.
  const started = performance.now()
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${edge.url}/vod/t/master.m3u8`)
    t.equal(r.headers.get('x-cache'), 'STALE')
    t.equal(await r.text(), '#EXTM3U')
  }
  t.comment(`5 stale answers while down in ${(performance.now() - started).toFixed(1)} ms`)
  t.equal(up.count('/vod/t/master.m3u8'), sent, 'no request reached the hung upstream')
  const miss = await fetch(`${edge.url}/vod/t/new.m4s`)
  t.equal(miss.status, 503, 'a miss fails fast')
  t.equal(miss.headers.get('retry-after'), '1')
  t.equal(((await miss.json()) as { error: { code: string } }).error.code, 'CDN_ERR_UPSTREAM_UNAVAILABLE')
  t.equal(up.count('/vod/t/new.m4s'), 0)
  // The probe runs on its own interval while the upstream is down: wait for it, do not assume it ran.
  await until(() => up.count('/healthz') >= 1)
  t.ok(up.count('/healthz') >= 1, 'probed in the background')

  // Back: the probe notices, and the next request revalidates with the upstream again.
  hung = false
  parked.splice(0).forEach((r) => r())
  await until(async () => (await metricAt(metrics, 'cdn_edge_upstream_up')) === 1)
  const back = await fetch(`${edge.url}/vod/t/master.m3u8`)
  t.not(back.headers.get('x-cache'), 'STALE')
  t.ok(up.count('/vod/t/master.m3u8') > sent, 'asked upstream again')
  t.equal(await metricAt(metrics, 'cdn_edge_upstream_down_total'), 1)
})

t.test('a failed first upstream is skipped: the next one answers without the wait', async (t) => {
  const refused = await startUpstream(t, {})
  const refusedUrl = refused.url
  await refused.app.close()
  const good = await startUpstream(t, { '/vod/t/:seg': (_req, reply) => reply.send(pattern(100)) })
  const edge = await startEdge(t, { upstream: [refusedUrl, good.url], upstreamProbeInterval: 60_000 })
  for (const seg of ['a.m4s', 'b.m4s', 'c.m4s']) {
    const r = await fetch(`${edge.url}/vod/t/${seg}`)
    t.equal(r.status, 200, seg)
  }
  const metrics = `${edge.url}/metrics`
  t.equal(
    await metricAt(metrics, 'cdn_edge_upstream_up', { upstream: refusedUrl }),
    0,
    'the refused one down',
  )
  t.equal(await metricAt(metrics, 'cdn_edge_upstream_up', { upstream: good.url }), 1, 'the other up')
  t.equal(await metricAt(metrics, 'cdn_edge_upstream_down_total'), 1, 'marked down once')
})

t.test('--upstream-max-fails 0 never marks an upstream down', async (t) => {
  const refused = await startUpstream(t, {})
  const url = refused.url
  await refused.app.close()
  const edge = await startEdge(t, { upstream: url, upstreamMaxFails: 0 })
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${edge.url}/vod/t/x${i}.m4s`)
    t.equal(
      ((await r.json()) as { error: { code: string } }).error.code,
      'CDN_ERR_UPSTREAM',
      'tried each time',
    )
  }
})

t.test('a pooled connection the upstream closed is retried once, not counted', async (t) => {
  // A raw server: answers the first request of each connection with keep-alive, then closes
  // the connection without answering when a second request arrives on it.
  let answered = 0
  const server = createNetServer((socket: Socket) => {
    let served = false
    socket.on('data', () => {
      if (served) return socket.destroy()
      served = true
      answered++
      socket.write(
        'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncache-control: no-store\r\nconnection: keep-alive\r\n\r\nhello',
      )
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const { port } = server.address() as { port: number }
  const edge = await startEdge(t, { upstream: `http://127.0.0.1:${port}`, upstreamConnections: 1 })
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${edge.url}/vod/t/a.m3u8`)
    t.equal(r.status, 200, `request ${i}`)
    t.equal(await r.text(), 'hello')
  }
  t.equal(answered, 3, 'each answer came on a fresh connection after the retry')
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_down_total'), 0, 'not a failure')
})
