/** Methods besides GET/HEAD: 405 by default; relayed uncached only when the operator lists them. */
import Fastify, { type FastifyInstance } from 'fastify'
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

/**
 * Listens `app` (an upstream; bodies of any type taken unparsed) on loopback behind an edge that
 * relays `methods`; `get` reads a path through the edge.
 */
async function behindEdge(t: Test, app: FastifyInstance, methods: string[], publicPath?: string[]) {
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const up = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const edge = await startEdge(t, {
    upstream: up,
    passThrough: methods,
    ...(publicPath ? { publicPath } : {}),
  })
  const get = async (path: string) => {
    const r = await fetch(`${edge.url}${path}`)
    return { cache: r.headers.get('x-cache'), body: await r.text() }
  }
  return { edge, get }
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

t.test('a relayed answer with two Set-Cookie fields keeps them apart', async (t) => {
  const cookies = ['a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/', 'b=2; Path=/']
  const app = Fastify()
  app.post('/beacon', async (_req, reply) => reply.code(201).header('set-cookie', cookies).send())
  const { edge } = await behindEdge(t, app, ['POST'], ['/beacon'])
  const r = await fetch(`${edge.url}/beacon`, { method: 'POST', body: 'x' })
  t.equal(r.status, 201)
  t.same(r.headers.getSetCookie(), cookies, 'two cookies, as the upstream sent them')
})

t.test('the invalidation is done before the client has the answer', async (t) => {
  // The upstream's answer to the POST sends its headers and holds its body: a client that has the
  // status may already ask again, and must not be served what the POST invalidated.
  const { PassThrough } = await import('node:stream')
  const app = Fastify()
  let version = 1
  let held: InstanceType<typeof PassThrough> | undefined
  app.get('/vod/a/master.m3u8', async (_req, reply) =>
    reply.header('cache-control', 'max-age=3600').send(`v${version}`),
  )
  app.post('/vod/a/master.m3u8', async (_req, reply) => {
    version++
    held = new PassThrough()
    held.write('accepted')
    return reply.code(200).header('content-type', 'text/plain').send(held)
  })
  const { edge, get } = await behindEdge(t, app, ['POST'])
  await get('/vod/a/master.m3u8')
  t.equal((await get('/vod/a/master.m3u8')).cache, 'HIT-MEM', 'cached')
  const post = await fetch(`${edge.url}/vod/a/master.m3u8`, { method: 'POST', body: 'x' })
  t.equal(post.status, 200, 'the client has the status; the body is still open')
  t.same(await get('/vod/a/master.m3u8'), { cache: 'MISS', body: 'v2' }, 'already invalidated')
  held!.end()
  t.equal(await post.text(), 'accepted')
})

t.test('an invalidation drops the fetch under way too: a request after it is not joined to it', async (t) => {
  const { PassThrough } = await import('node:stream')
  const seg = '/vod/a/v1/seg-1.m4s'
  const app = Fastify()
  let version = 1
  let held: InstanceType<typeof PassThrough> | undefined
  app.get(seg, async (_req, reply) => {
    reply.header('cache-control', 'max-age=3600').header('content-type', 'video/mp4')
    if (version > 1) return reply.send(`v${version}`)
    // The first fetch sends its headers and holds its body: it is under way at the invalidation.
    held = new PassThrough()
    held.write('v')
    return reply.send(held)
  })
  app.post(seg, async (_req, reply) => {
    version++
    return reply.code(204).send()
  })
  const { edge, get } = await behindEdge(t, app, ['POST'])
  const first = await fetch(`${edge.url}${seg}`)
  t.equal(first.headers.get('x-cache'), 'MISS', 'a fetch under way')
  t.equal((await fetch(`${edge.url}${seg}`, { method: 'POST', body: 'x' })).status, 204)
  t.same(await get(seg), { cache: 'MISS', body: 'v2' }, 'a fetch of its own, not the old one joined')
  held!.end('1')
  t.equal(await first.text(), 'v1', 'the first client still has its answer')
  t.same(await get(seg), { cache: 'HIT-MEM', body: 'v2' }, 'the old fetch stored nothing over it')
})

t.test('an unknown pass-through method is refused at start', async (t) => {
  await t.rejects(startEdge(t, { upstream: 'http://127.0.0.1:9', passThrough: ['CONNECT'] }), {
    code: 'CDN_ERR_CONFIG',
    message: /--pass-through/,
  })
})

t.test(
  'a successful unsafe request invalidates its target and same-origin Location/Content-Location (RFC 9111 4.4)',
  async (t) => {
    const app = Fastify()
    let version = 1
    for (const p of ['/vod/a/master.m3u8', '/vod/b/master.m3u8', '/vod/c/master.m3u8', '/vod/d/master.m3u8'])
      app.get(p, async (_req, reply) =>
        reply.header('cache-control', 'max-age=3600').send(`${p} v${version}`),
      )
    app.put('/vod/a/master.m3u8', async (_req, reply) => {
      version++
      return reply
        .code(201)
        .header('location', '/vod/b/master.m3u8')
        .header('content-location', `http://${_req.headers.host}/vod/c/master.m3u8`)
        .send()
    })
    app.delete('/vod/d/master.m3u8', async (_req, reply) =>
      reply.code(204).header('location', 'http://elsewhere.example/vod/d/master.m3u8').send(),
    )
    app.post('/vod/d/master.m3u8', async (_req, reply) => reply.code(500).send())
    const { edge, get } = await behindEdge(t, app, ['PUT', 'POST', 'DELETE'])
    for (const x of ['a', 'b', 'c', 'd']) await get(`/vod/${x}/master.m3u8`)
    for (const x of ['a', 'b', 'c', 'd'])
      t.equal((await get(`/vod/${x}/master.m3u8`)).cache, 'HIT-MEM', `${x} cached`)

    t.equal((await fetch(`${edge.url}/vod/a/master.m3u8`, { method: 'PUT', body: 'new' })).status, 201)
    for (const x of ['a', 'b', 'c']) {
      const r = await get(`/vod/${x}/master.m3u8`)
      t.equal(r.cache, 'MISS', `${x} invalidated`)
      t.equal(r.body, `/vod/${x}/master.m3u8 v2`)
    }
    // A failed unsafe request invalidates nothing; another origin's Location is not ours.
    t.equal((await fetch(`${edge.url}/vod/d/master.m3u8`, { method: 'POST', body: 'x' })).status, 500)
    t.equal((await get('/vod/d/master.m3u8')).cache, 'HIT-MEM', 'kept after a 500')
    t.equal((await fetch(`${edge.url}/vod/d/master.m3u8`, { method: 'DELETE' })).status, 204)
    t.equal((await get('/vod/d/master.m3u8')).cache, 'MISS', 'the target itself is invalidated')
  },
)
