/** Methods besides GET/HEAD: 405 by default; relayed uncached only when the operator lists them. */
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { startEdge } from '../helpers/edge.js'

async function beaconUpstream(t: Test) {
  const app = Fastify()
  const seen: { method: string; url: string; body: unknown }[] = []
  app.post('/beacon', async (req, reply) => {
    seen.push({ method: req.method, url: req.url, body: req.body })
    return reply.code(201).header('x-upstream', 'yes').send({ ok: true })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, seen }
}

t.test('POST is relayed to the upstream when listed, never cached', async (t) => {
  const up = await beaconUpstream(t)
  const edge = await startEdge(t, { upstream: up.url, passThrough: ['POST'], publicPath: ['/beacon'] })
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${edge.url}/beacon?CMCD=bl%3D2000&i=${i}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'start', i }),
    })
    t.equal(r.status, 201)
    t.equal(r.headers.get('x-cache'), 'BYPASS')
    t.equal(r.headers.get('x-upstream'), 'yes')
    t.same(await r.json(), { ok: true })
  }
  t.equal(up.seen.length, 2, 'every POST reached the upstream')
  t.same(up.seen[1], { method: 'POST', url: '/beacon?CMCD=bl%3D2000&i=1', body: { event: 'start', i: 1 } })
  const put = await fetch(`${edge.url}/beacon`, { method: 'PUT', body: 'x' })
  t.equal(put.status, 405, 'a method not listed is still refused')
  const trav = await fetch(`${edge.url}/vod/a%2fb`, { method: 'POST', body: 'x' })
  t.equal(trav.status, 400, 'relayed targets are validated like any other')
})

t.test('an unknown pass-through method is refused at start', async (t) => {
  await t.rejects(startEdge(t, { upstream: 'http://127.0.0.1:9', passThrough: ['CONNECT'] }), {
    code: 'CDN_ERR_CONFIG',
    message: /--pass-through/,
  })
})
