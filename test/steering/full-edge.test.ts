/**
 * An edge at its connection cap (--max-connections) answers a new connection, /status included,
 * with 503 CDN_ERR_OVERLOADED and Retry-After (edge/http/client-limits.ts): it is alive and full,
 * not down. Steering takes it out of rotation as overloaded, never as unreachable (which would
 * count toward fail-static when the whole fleet fills at once, and name the wrong reason).
 */
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { PLACES, deadUrl, startSteering } from '../helpers/steering.js'
import { startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'

/** One kept-alive client connection the edge has admitted (it answered a request on it). */
async function holdConnection(t: Test, url: string): Promise<Socket> {
  const u = new URL(url)
  const s = connect(Number(u.port), u.hostname)
  s.on('error', () => undefined)
  t.teardown(() => void s.destroy())
  await new Promise<void>((resolve) => s.once('connect', () => resolve()))
  s.write(`GET /healthz HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`)
  const head = await new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())))
  t.match(head, /^HTTP\/1\.1 200 /, 'the filler connection is admitted')
  return s
}

t.test('an edge at its connection cap is overloaded, not down', async (t) => {
  const upstream = await deadUrl()
  const edges = await Promise.all(
    [1, 2].map(() => startEdge(t, { upstream, maxConnections: 1, keepAliveTimeout: 600_000 })),
  )
  const fillers = await Promise.all(edges.map((e) => holdConnection(t, e.url)))
  const refused = await request(`${edges[0]!.url}/status`)
  t.equal(refused.statusCode, 503, 'the edge refuses a new connection while full')
  await refused.body.dump()

  const s = await startSteering(
    t,
    edges.map((e, i) => ({ id: `rome-${i + 1}`, url: e.url, site: 'rome', ...PLACES.rome })),
  )
  const play = await request(`${s.url}/play/t/master.m3u8`)
  const body = (await play.body.json()) as { error: { code: string; overloaded?: string[] } }
  t.equal(play.statusCode, 503)
  t.equal(body.error.code, 'CDN_ERR_OVERLOADED', 'every edge is full: overloaded, not unhealthy')
  t.same(body.error.overloaded, ['rome-1', 'rome-2'])
  const [h1] = s.health.edges
  t.equal(h1!.state, 'up', 'a full edge answered: reachable')
  t.equal(h1!.overloaded, true)
  t.match(h1!.why, /connection/)
  const metrics = await (await request(`${s.url}/metrics`)).body.text()
  t.match(metrics, /cdn_steering_health_checks_total\{edge="rome-1",result="full"\} 1/)

  // Room again: the next good /status brings the edge back at once (it was up all along).
  fillers[0]!.destroy()
  await until(async () => {
    await s.health.checkNow()
    return s.health.view.usableCount === 1
  })
  const again = await request(`${s.url}/play/t/master.m3u8`)
  await again.body.dump()
  t.equal(again.statusCode, 302)
  t.equal(again.headers['x-steering-edge'], 'rome-1')
})
