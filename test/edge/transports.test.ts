/**
 * The same edge behaviour over every client transport: HTTP/1.1 in the clear (the plain
 * listener beside the HTTPS one), HTTP/1.1 over TLS and HTTP/2 (ALPN h2). One table of requests
 * (miss, hit, HEAD, range, conditional, coalesced misses, purge, /status, /metrics) runs over
 * each, and the edge's own count of requests by protocol says which one carried them.
 */
import { connect } from 'node:net'
import t from 'tap'
import { type Agent, request } from 'undici'
import { join } from 'node:path'
import { edgeConfig } from '../../edge/config/validate.js'
import { createEdge } from '../../edge/main.js'
import { listenServer } from '../../src/http/tls-server.js'
import { startEdge, tempDir } from '../helpers/edge.js'
import { agentFor, testCerts, type Transport, TRANSPORTS } from '../helpers/tls.js'
import { metricSum, until } from '../helpers/wait.js'
import { exchange } from './boundary/wire.js'
import { IMMUTABLE, pattern, startUpstream } from './upstream-server.js'

const TOKEN = 'transport-token'
const seg = (title: string) => `/vod/${title}/v1/720p/seg-00001.m4s`
const slow = (title: string) => `/vod/${title}/v1/720p/seg-00002.m4s`
const BODY = pattern(50_000, 7)

t.test(
  'hits, misses, ranges, conditionals, coalescing, purge, status and metrics over h1, h1+TLS and h2',
  async (t) => {
    const certs = await testCerts(t)
    const gates = new Map<string, () => void>()
    const routes: Record<string, never> = {}
    for (const tr of TRANSPORTS) {
      const title = `t-${tr}`
      routes[seg(title)] = ((
        _req: unknown,
        reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
      ) => reply.header('cache-control', IMMUTABLE).header('etag', '"seg"').send(BODY)) as never
      routes[slow(title)] = (async (
        _req: unknown,
        reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
      ) => {
        await new Promise<void>((resolve) => gates.set(title, resolve))
        return reply.header('cache-control', IMMUTABLE).send(BODY)
      }) as never
    }
    const up = await startUpstream(t, routes)
    const edge = await startEdge(t, {
      upstream: up.url,
      adminToken: TOKEN,
      tlsCert: [certs.cert.cert],
      tlsKey: [certs.cert.key],
      httpPort: 0,
    })
    t.match(edge.url, /^https:/, 'the edge port speaks HTTPS')
    const stats = edge.app.edge.stats
    const base: Record<Transport, string> = { h1: edge.httpUrl!, https1: edge.url, h2: edge.url }

    for (const tr of TRANSPORTS) {
      await t.test(tr, async (t) => {
        const agent = agentFor(t, tr, certs.caPem)
        const title = `t-${tr}`
        const get = (
          path: string,
          headers: Record<string, string> = {},
          method: 'GET' | 'HEAD' | 'DELETE' = 'GET',
        ) => send(agent, base[tr] + path, method, headers)
        const before = { ...stats.protocols }
        let made = 0

        const miss = await get(seg(title))
        made++
        t.equal(miss.status, 200)
        t.equal(miss.headers['x-cache'], 'MISS')
        t.ok(miss.body.equals(BODY), 'miss body')
        const hit = await get(seg(title))
        made++
        t.equal(hit.headers['x-cache'], 'HIT-MEM')
        t.ok(hit.body.equals(BODY), 'hit body')
        const head = await get(seg(title), {}, 'HEAD')
        made++
        t.equal(head.status, 200)
        t.equal(head.headers['content-length'], String(BODY.length))
        t.equal(head.body.length, 0, 'HEAD has no body')
        const range = await get(seg(title), { range: 'bytes=100-199' })
        made++
        t.equal(range.status, 206)
        t.equal(range.headers['content-range'], `bytes 100-199/${BODY.length}`)
        t.ok(range.body.equals(BODY.subarray(100, 200)), 'range body')
        const cond = await get(seg(title), { 'if-none-match': '"seg"' })
        made++
        t.equal(cond.status, 304)
        t.equal(cond.body.length, 0)

        // Coalescing: three clients, one upstream fetch, released once the two others wait on it.
        const waiters = async () =>
          metricSum(await edge.app.edge.metrics.render(), 'cdn_edge_coalesced_waiters_total')
        const waitersBefore = await waiters()
        const first = get(slow(title))
        await until(() => gates.has(title))
        const others = [get(slow(title)), get(slow(title))]
        await until(async () => (await waiters()) === waitersBefore + 2)
        gates.get(title)!()
        const all = await Promise.all([first, ...others])
        made += 3
        t.same(
          all.map((r) => r.status),
          [200, 200, 200],
        )
        t.ok(
          all.every((r) => r.body.equals(BODY)),
          'every coalesced client gets the body',
        )
        t.equal(up.count(slow(title)), 1, 'one upstream fetch for three clients')

        const purge = await get(`/admin/cache/vod/${title}`, { authorization: `Bearer ${TOKEN}` }, 'DELETE')
        made++
        t.equal(purge.status, 200, 'purge')
        const again = await get(seg(title))
        made++
        t.equal(again.headers['x-cache'], 'MISS', 'purged: a miss again')
        t.equal(up.count(seg(title)), 2)

        const status = await get('/status')
        made++
        t.equal(status.status, 200)
        t.equal(JSON.parse(status.body.toString()).id, 'edge')
        const metrics = await get('/metrics')
        made++
        t.match(metrics.body.toString(), /cdn_edge_requests_by_protocol_total\{protocol="/)

        for (const p of TRANSPORTS)
          t.equal(stats.protocols[p] - before[p], p === tr ? made : 0, `requests counted as ${p}`)
      })
    }
    t.ok(stats.tlsHandshakes.full >= 2, 'TLS handshakes counted')
  },
)

t.test('plain hits on a fresh TLS connection take the raw path; HTTP/2 ones go through node', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, {
    [seg('r')]: ((
      _req: unknown,
      reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
    ) => reply.header('cache-control', IMMUTABLE).send(BODY)) as never,
  })
  const edge = await startEdge(t, { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key] })
  const warm = await send(agentFor(t, 'https1', certs.caPem), edge.url + seg('r'))
  t.equal(warm.headers['x-cache'], 'MISS')
  const raw = edge.app.edge.raw!
  const answered = raw.answered
  const hit = await send(agentFor(t, 'https1', certs.caPem), edge.url + seg('r'))
  t.equal(hit.headers['x-cache'], 'HIT-MEM')
  t.ok(hit.body.equals(BODY))
  t.equal(raw.answered, answered + 1, 'answered by the raw path over TLS')
  const h2 = await send(agentFor(t, 'h2', certs.caPem), edge.url + seg('r'))
  t.equal(h2.headers['x-cache'], 'HIT-MEM')
  t.ok(h2.body.equals(BODY))
  t.equal(raw.answered, answered + 1, 'HTTP/2 is not the raw path')
  t.equal(edge.app.edge.stats.protocols.h2, 1)
})

t.test(
  'Strict-Transport-Security on every HTTPS answer, raw hits and HTTP/2 included, never in the clear',
  async (t) => {
    const certs = await testCerts(t)
    const up = await startUpstream(t, {
      [seg('s')]: ((
        _req: unknown,
        reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
      ) => reply.header('cache-control', IMMUTABLE).send(BODY)) as never,
    })
    const tls = { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key], httpPort: 0 }
    // --http-redirect: one year unless --hsts says otherwise.
    const redirecting = await startEdge(t, { ...tls, httpRedirect: true })
    const year = 'max-age=31536000'
    const https1 = agentFor(t, 'https1', certs.caPem)
    const h2 = agentFor(t, 'h2', certs.caPem)
    const miss = await send(https1, redirecting.url + seg('s'))
    t.equal(miss.headers['x-cache'], 'MISS')
    t.equal(miss.headers['strict-transport-security'], year, 'a miss, through node')
    const answered = redirecting.app.edge.raw!.answered
    const hit = await send(https1, redirecting.url + seg('s'))
    t.equal(redirecting.app.edge.raw!.answered, answered + 1, 'answered by the raw path')
    t.equal(hit.headers['strict-transport-security'], year, 'a raw hit')
    t.equal(
      (await send(h2, redirecting.url + seg('s'))).headers['strict-transport-security'],
      year,
      'an HTTP/2 hit',
    )
    const missing = await send(h2, `${redirecting.url}/nothing`)
    t.equal(missing.status, 404)
    t.equal(missing.headers['strict-transport-security'], year, 'an error')
    const moved = await fetch(`${redirecting.httpUrl!}${seg('s')}`, { redirect: 'manual' })
    t.equal(moved.status, 308)
    t.equal(moved.headers.get('strict-transport-security'), null, 'never over plain HTTP (RFC 6797 §7.2)')
    // Without --http-redirect none, unless --hsts asks; the plain listener that serves never has it.
    const serving = await startEdge(t, tls)
    t.notOk((await send(https1, serving.url + seg('s'))).headers['strict-transport-security'])
    const asked = await startEdge(t, { ...tls, hsts: 60_000 })
    await send(https1, asked.url + seg('s'))
    t.equal((await send(https1, asked.url + seg('s'))).headers['strict-transport-security'], 'max-age=60')
    const plain = agentFor(t, 'h1', certs.caPem)
    await send(plain, asked.httpUrl! + seg('s'))
    const plainHit = await send(plain, asked.httpUrl! + seg('s'))
    t.equal(plainHit.headers['x-cache'], 'HIT-MEM')
    t.notOk(plainHit.headers['strict-transport-security'], 'a raw hit in the clear has none')
  },
)

t.test('the plain listener answers a request node cannot parse with the JSON 400', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, {})
  const tls = { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key], httpPort: 0 }
  for (const [mode, redirect, first] of [
    ['serving', false, 404],
    ['redirecting', true, 308],
  ] as const) {
    const edge = await startEdge(t, { ...tls, httpRedirect: redirect })
    const { responses } = await exchange(Number(new URL(edge.httpUrl!).port), [
      'GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n' +
        'GET /vod/a/master.m3u8 HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n',
    ])
    t.same(
      responses.map((r) => r.status),
      [first, 400],
      `${mode}: the answer before it, then the 400`,
    )
    t.same(JSON.parse(responses[1]!.body.toString()), {
      error: { code: 'CDN_ERR_BAD_REQUEST', message: 'malformed request' },
    })
  }
})

t.test('plain HTTP sent to the HTTPS port gets the JSON 400, then the close', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url, tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key] })
  // What `curl http://127.0.0.1:PORT/healthz` sends: it got "Empty reply from server".
  const { responses } = await exchange(
    Number(new URL(edge.url).port),
    ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n'],
    { end: false },
  )
  t.same(
    responses.map((r) => [r.status, r.headers.connection]),
    [[400, 'close']],
  )
  t.same(JSON.parse(responses[0]!.body.toString()), {
    error: { code: 'CDN_ERR_PLAIN_HTTP_ON_TLS', message: 'the plain HTTP request was sent to an HTTPS port' },
  })
  const health = await request(`${edge.url}/healthz`, { dispatcher: agentFor(t, 'https1', certs.caPem) })
  t.equal(health.statusCode, 200, 'over TLS, as before')
  await health.body.dump()
})

t.test('--http-redirect: the plain listener answers 308 to the HTTPS URL', async (t) => {
  const certs = await testCerts(t)
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, {
    upstream: up.url,
    tlsCert: [certs.cert.cert],
    tlsKey: [certs.cert.key],
    httpPort: 0,
    httpRedirect: true,
  })
  const r = await fetch(`${edge.httpUrl}/vod/a/master.m3u8?x=1`, { redirect: 'manual' })
  t.equal(r.status, 308)
  t.equal(r.headers.get('location'), `${edge.url}/vod/a/master.m3u8?x=1`)
  // An absolute-form target: its authority is the host, its path the target (RFC 9112 §3.2.2).
  const { port } = new URL(edge.httpUrl!)
  const absolute = await rawHead(
    Number(port),
    'GET http://edge.example/vod/a/x.m3u8?y=2 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
  )
  t.match(absolute, /^HTTP\/1\.1 308 /)
  t.match(
    absolute,
    new RegExp(
      `\r\nlocation: https://edge\\.example:${new URL(edge.url).port}/vod/a/x\\.m3u8\\?y=2\r\n`,
      'i',
    ),
  )
  const bad = await send(agentFor(t, 'h1', certs.caPem), `${edge.httpUrl}/x`, 'GET', { host: 'a b' })
  t.equal(bad.status, 400, 'a Host that cannot be a name is refused')
  // Refused as the main listener refuses them: no Location made of what the client made up.
  for (const [why, head] of [
    ['two Host fields', 'GET /x HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n'],
    ['a port past 65535', 'GET /x HTTP/1.1\r\nHost: x:99999\r\n\r\n'],
    ['the asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n'],
    ['a target that is no path', 'GET //evil.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n'],
  ] as const) {
    const answer = await rawHead(Number(port), head)
    t.match(answer, /^HTTP\/1\.1 400 /, why)
    t.notMatch(answer, /location:/i, why)
  }
})

t.test(
  '--http-redirect with an https --public-url: every redirect goes there, whatever the Host',
  async (t) => {
    const certs = await testCerts(t)
    const up = await startUpstream(t, {})
    const edge = await startEdge(t, {
      upstream: up.url,
      tlsCert: [certs.cert.cert],
      tlsKey: [certs.cert.key],
      httpPort: 0,
      httpRedirect: true,
      publicUrl: 'https://cdn.example/',
    })
    const answer = await rawHead(
      Number(new URL(edge.httpUrl!).port),
      'GET /vod/a/x.m3u8?y=2 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    )
    t.match(answer, /^HTTP\/1\.1 308 /)
    t.match(answer, /\r\nlocation: https:\/\/cdn\.example\/vod\/a\/x\.m3u8\?y=2\r\n/i)
  },
)

t.test(
  "--http-redirect names --port when the HTTPS server listens on a path (a cluster worker's)",
  async (t) => {
    const certs = await testCerts(t)
    const up = await startUpstream(t, {})
    const dir = tempDir(t)
    const config = edgeConfig({
      upstream: [up.url],
      cacheDir: join(dir, 'cache'),
      logLevel: 'silent',
      host: '127.0.0.1',
      port: 8443,
      tlsCert: [certs.cert.cert],
      tlsKey: [certs.cert.key],
      httpPort: 0,
      httpRedirect: true,
      tlsReloadInterval: 0,
    })
    const app = await createEdge(config)
    t.teardown(() => app.close())
    await app.listen({ path: join(dir, 'edge.sock') })
    const port = await listenServer(app.edge.plain!, 0, '127.0.0.1')
    const answer = await rawHead(
      port,
      'GET /vod/a/x.m3u8 HTTP/1.1\r\nHost: edge.example\r\nConnection: close\r\n\r\n',
    )
    t.match(answer, /^HTTP\/1\.1 308 /)
    t.match(answer, /\r\nlocation: https:\/\/edge\.example:8443\/vod\/a\/x\.m3u8\r\n/i)
    // Workers on --port 0 would have no port to name: refused at start unless --public-url says.
    const cluster = { ...config, workers: 2, port: 0 }
    t.throws(() => edgeConfig(cluster), /--http-redirect: with --workers, needs a fixed --port/)
    t.doesNotThrow(() => edgeConfig({ ...cluster, publicUrl: 'https://cdn.example' }))
  },
)

async function send(
  agent: Agent,
  url: string,
  method: 'GET' | 'HEAD' | 'DELETE' = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const r = await request(url, { dispatcher: agent, method, headers })
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) }
}

/** The head of the answer to one raw request. */
function rawHead(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(request))
    let buf = ''
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      buf += d
      const end = buf.indexOf('\r\n\r\n')
      if (end !== -1) {
        s.destroy()
        resolve(buf.slice(0, end + 2))
      }
    })
    s.on('error', reject)
  })
}
