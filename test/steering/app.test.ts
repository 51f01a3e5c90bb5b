import { Parser } from 'm3u8-parser'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ManualClock } from '../../src/clock.js'
import { verifySignedPath } from '../../src/http/signing.js'
import { deadUrl, edgeStatus, PLACES, startContractEdge, startSteering } from '../helpers/steering.js'
import { exchange } from '../edge/boundary/wire.js'

const ZONES = {
  regions: { rome: PLACES.rome, 'new-york': PLACES.newYork, tokyo: PLACES.tokyo },
  zones: [
    { cidr: '10.1.0.0/16', region: 'rome' },
    { cidr: '10.2.0.0/16', region: 'new-york' },
    { cidr: '2001:db8:3::/48', region: 'tokyo' },
  ],
}

async function threeSites(t: Test) {
  const edges = await Promise.all(['rome-1', 'nyc-1', 'tokyo-1'].map((id) => startContractEdge(t, id)))
  const [rome, nyc, tokyo] = edges as [
    Awaited<ReturnType<typeof startContractEdge>>,
    Awaited<ReturnType<typeof startContractEdge>>,
    Awaited<ReturnType<typeof startContractEdge>>,
  ]
  const fleet = [
    { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
    { id: 'tokyo-1', url: tokyo.url, site: 'tokyo', ...PLACES.tokyo },
  ]
  return { rome, nyc, tokyo, fleet }
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

t.test(
  '302 to the nearest edge; zones, overrides, and X-Forwarded-For only from trusted proxies',
  async (t) => {
    const { fleet, rome, tokyo } = await threeSites(t)
    const s = await startSteering(t, fleet, { trustedProxy: ['127.0.0.0/8'] }, { zones: ZONES })
    const play = `${s.url}/play/big-buck/master.m3u8`
    const r1 = await get(play, { 'x-forwarded-for': '10.1.4.4' })
    t.equal(r1.status, 302)
    t.equal(r1.headers.location, `${rome.url}/vod/big-buck/master.m3u8`)
    t.equal(r1.headers['cache-control'], 'no-store')
    t.equal((await get(play, { 'x-forwarded-for': '2001:db8:3::9' })).headers['x-steering-edge'], 'tokyo-1')
    t.equal((await get(`${play}?region=new-york`)).headers['x-steering-edge'], 'nyc-1')
    t.equal((await get(`${play}?lat=35&lon=139`)).headers['x-steering-edge'], 'tokyo-1')
    t.equal(
      (await get(play)).headers['x-steering-edge'],
      'rome-1',
      'unknown client: default 0,0 is nearest Rome',
    )
    t.equal((await get(`${play}?region=mars`)).status, 400)
    t.equal((await get(`${s.url}/play/BAD_TITLE/master.m3u8`)).status, 400)
    t.equal(tokyo.requests.length > 0, true, 'health checks reached the edges')

    // The same spoofed header from a socket that is not a trusted proxy is ignored.
    const untrusted = await startSteering(t, fleet, {}, { zones: ZONES })
    const spoof = await get(`${untrusted.url}/play/big-buck/master.m3u8`, {
      'x-forwarded-for': '2001:db8:3::9',
    })
    t.equal(spoof.headers['x-steering-edge'], 'rome-1', 'spoofed XFF from an untrusted socket ignored')
  },
)

t.test('/steer ranks edges; /regions; /edges; /metrics; /healthz', async (t) => {
  const { fleet, tokyo } = await threeSites(t)
  tokyo.status = edgeStatus('tokyo-1', { egressBytesPerSec: 2e8, titlesComplete: ['big-buck'] })
  const s = await startSteering(t, fleet, {}, { zones: ZONES })
  await s.health.checkNow()
  const steer = (await get(`${s.url}/steer?title=big-buck&region=tokyo`)).json()
  t.same(
    steer.edges.map((e: { id: string }) => e.id),
    ['tokyo-1', 'rome-1', 'nyc-1'],
  )
  t.match(steer.edges[0], {
    url: `${tokyo.url}/vod/big-buck/master.m3u8`,
    distanceKm: 0,
    load: 0.2,
    site: 'tokyo',
    reason: 'holder',
  })
  t.ok(steer.edges[1].distanceKm > 9000, 'Rome is ~9,900 km from Tokyo')
  t.equal(steer.ttl, 30)
  t.equal((await get(`${s.url}/steer`)).status, 400, 'title required')

  const regions = (await get(`${s.url}/regions`)).json()
  t.same(regions.regions.map((r: { name: string }) => r.name).sort(), ['new-york', 'nyc', 'rome', 'tokyo'])

  const edges = (await get(`${s.url}/edges`)).json()
  t.equal(edges.failStatic, false)
  t.match(edges.edges[2], {
    id: 'tokyo-1',
    state: 'up',
    inRotation: true,
    load: 0.2,
    status: { titlesComplete: ['big-buck'], tiers: { memory: {}, disk: {} }, hits: {} },
  })
  t.type(edges.edges[0].lastCheck, 'string')

  const metrics = await get(`${s.url}/metrics`)
  t.match(metrics.text, /cdn_steering_decisions_total\{kind="list",outcome="ok"\} 1/)
  t.match(metrics.text, /cdn_steering_decisions_by_edge_total\{edge="tokyo-1"\} 1/)
  t.match(metrics.text, /cdn_steering_health_checks_total\{edge="rome-1",result="ok"\} 2/)
  t.match(metrics.text, /cdn_steering_edges\{state="in"\} 3/)
  t.same((await get(`${s.url}/healthz`)).json(), { ok: true })
  const hls = await get(`${s.url}/assets/hls.js`)
  t.equal(hls.status, 200)
  t.ok(hls.text.length > 100_000, 'hls.js served from our own node_modules')
  const lost = await get(`${s.url}/no/such/route?token=secret`)
  t.equal(lost.status, 404)
  t.equal(lost.headers['cache-control'], 'no-store', 'an error is never cached')
  t.same(lost.json(), { error: { code: 'CDN_ERR_NOT_FOUND', message: 'no route for GET /no/such/route' } })
})

t.test('503 with a JSON reason when nothing is healthy, never a redirect', async (t) => {
  const s = await startSteering(t, [{ id: 'gone', url: await deadUrl(), site: 'x', ...PLACES.rome }])
  await s.health.checkNow()
  const r = await get(`${s.url}/play/big-buck/master.m3u8`)
  t.equal(r.status, 503)
  t.notOk(r.headers.location)
  t.match(r.json(), { error: { code: 'CDN_ERR_NO_HEALTHY_EDGE', edges: { gone: /refused/ } } })
  t.ok(r.headers['retry-after'])
  t.equal((await get(`${s.url}/steer?title=x`)).status, 503)
  t.equal((await get(`${s.url}/cs/steer?title=x`)).status, 503)
  t.match(
    (await get(`${s.url}/metrics`)).text,
    /cdn_steering_decisions_total\{kind="redirect",outcome="no-edge"\} 1/,
  )
})

t.test(
  'one answer per request: a body is read before the redirect; a malformed one gets 400 alone',
  async (t) => {
    const e = await startContractEdge(t, 'rome-1')
    const s = await startSteering(t, [{ id: 'rome-1', url: e.url, site: 'rome', ...PLACES.rome }])
    const port = Number(new URL(s.url).port)
    const play = (extra: string) => `GET /play/t/master.m3u8 HTTP/1.1\r\nHost: a\r\n${extra}\r\n`
    const statuses = async (bytes: string) => (await exchange(port, [bytes])).responses.map((r) => r.status)
    t.same(await statuses(play('Transfer-Encoding: chunked\r\n') + 'zz\r\n'), [400], 'bad chunk')
    t.same(await statuses(play('Transfer-Encoding: xchunked\r\n')), [400], 'unknown coding')
    t.same(await statuses(play('Transfer-Encoding: chunked\r\n') + '0\n\n'), [400], 'LF-only chunk')
    t.same(await statuses(`GET /play/t/master.m3u8 HTTP/1.1\nHost: a\n\n`), [400], 'bare LF head')
    t.same(
      await statuses(play('Content-Length: 5\r\n') + 'hello' + play('Connection: close\r\n')),
      [302, 302],
      'a well-formed body, then the next request',
    )
    t.same(
      await statuses(
        `POST /play/t/master.m3u8 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
      ),
      [400],
      'a method with no route and a malformed body',
    )
    t.same(
      await statuses(play('') + play('') + 'GET /play/t/master.m3u8 http/1.1\r\nHost: a\r\n\r\n'),
      [302, 302, 400],
      'a bad request after pipelined ones: answered after them',
    )
    const master = 'GET /cs/t/master.m3u8?lat=41.9&lon=12.5 HTTP/1.1\r\nHost: a\r\n\r\n'
    t.same(
      await statuses(master + play('')),
      [200, 302],
      'a client that half-closes once its requests are sent: every answer (the master is fetched from the edge), then the close',
    )
  },
)

t.test('every reachable edge overloaded: 503 overloaded', async (t) => {
  const e = await startContractEdge(t, 'hot', { egressBytesPerSec: 9.5e8 })
  const s = await startSteering(t, [{ id: 'hot', url: e.url, site: 'x', ...PLACES.rome }])
  const r = await get(`${s.url}/play/t/master.m3u8`)
  t.equal(r.status, 503)
  t.match(r.json(), { error: { code: 'CDN_ERR_OVERLOADED', overloaded: ['hot'] } })
})

t.test('signed URLs: valid for the title, refused when forged, expired or for another title', async (t) => {
  const { fleet } = await threeSites(t)
  const key = 'a-signing-key-of-some-length'
  const keys = [{ id: '0', secret: key }]
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const s = await startSteering(t, fleet, { signingKey: key, tokenTtl: 60_000 }, { clock })
  const loc = (await get(`${s.url}/play/big-buck/master.m3u8?region=rome`)).headers.location as string
  const path = new URL(loc).pathname
  t.match(path, /^\/t\/0,\d+,2,[A-Za-z0-9_-]{43}\/vod\/big-buck\/master\.m3u8$/)
  const now = Math.floor(clock.now() / 1000)
  t.equal(verifySignedPath(path, keys, now), '/vod/big-buck/master.m3u8')
  // Relative URIs in playlists inherit the prefix: a segment URL resolved against it verifies.
  const seg = new URL('v1/720p/seg-00001.m4s', loc).pathname
  t.equal(verifySignedPath(seg, keys, now), '/vod/big-buck/v1/720p/seg-00001.m4s')
  t.throws(() => verifySignedPath(seg, keys, now + 61), {
    code: 'CDN_ERR_FORBIDDEN',
    details: { reason: 'expired' },
  })
  const other = seg.replace('/vod/big-buck/', '/vod/other/')
  t.throws(
    () => verifySignedPath(other, keys, now),
    { code: 'CDN_ERR_FORBIDDEN', details: { reason: 'signature' } },
    'other title',
  )
  const forged = seg.replace(
    /,([A-Za-z0-9_-])([A-Za-z0-9_-]{42}\/)/,
    (_m, c: string, rest: string) => `,${c === 'A' ? 'B' : 'A'}${rest}`,
  )
  t.throws(
    () => verifySignedPath(forged, keys, now),
    { code: 'CDN_ERR_FORBIDDEN', details: { reason: 'signature' } },
    'forged',
  )
  t.throws(() => verifySignedPath(seg, [{ id: '0', secret: 'another-key-entirely' }], now), {
    code: 'CDN_ERR_FORBIDDEN',
    details: { reason: 'signature' },
  })
  const steer = (await get(`${s.url}/steer?title=big-buck`)).json()
  for (const e of steer.edges)
    t.equal(verifySignedPath(new URL(e.url).pathname, keys, now), '/vod/big-buck/master.m3u8')
})

t.test('signed URLs bound to the client network: the address steering believes, masked', async (t) => {
  const { fleet } = await threeSites(t)
  const keys = [
    { id: 'new', secret: 'the-newest-signing-key' },
    { id: 'old', secret: 'the-older-signing-key!' },
  ]
  const s = await startSteering(
    t,
    fleet,
    {
      signingKey: ['new:the-newest-signing-key', 'old:the-older-signing-key!'],
      trustedProxy: ['127.0.0.0/8'],
      tokenIpv4Prefix: 24,
      tokenIpv6Prefix: 48,
    },
    { zones: ZONES },
  )
  const now = Math.floor(Date.now() / 1000)
  const cases: [string, RegExp, string, string][] = [
    ['10.1.4.4', /^\/t\/new,\d+,2,10\.1\.4\.0_24,/, '10.1.4.200', '10.1.5.1'],
    ['2001:db8:3::9', /^\/t\/new,\d+,2,2001:db8:3:0:0:0:0:0_48,/, '2001:db8:3:ffff::1', '2001:db8:4::1'],
  ]
  for (const [client, token, inside, outside] of cases) {
    const loc = (await get(`${s.url}/play/big-buck/master.m3u8`, { 'x-forwarded-for': client })).headers
      .location as string
    const path = new URL(loc).pathname
    t.match(path, token, `signed with the first key, bound to ${client}'s network`)
    t.equal(verifySignedPath(path, [keys[1]!, keys[0]!], now, inside), '/vod/big-buck/master.m3u8')
    t.throws(
      () => verifySignedPath(path, keys, now, outside),
      { code: 'CDN_ERR_FORBIDDEN', details: { reason: 'network' } },
      outside,
    )
  }
})

t.test('content steering: pathways per edge, priority follows health', async (t) => {
  const { fleet, rome, nyc } = await threeSites(t)
  const s = await startSteering(t, fleet, { pathways: 3 })
  const master = await get(`${s.url}/cs/big-buck/master.m3u8?region=rome`)
  t.equal(master.status, 200)
  t.equal(master.headers['content-type'], 'application/vnd.apple.mpegurl')
  const p = new Parser()
  p.push(master.text)
  p.end()
  const m = p.manifest as unknown as {
    contentSteering: { serverUri: string; pathwayId: string }
    playlists: { uri: string; attributes: Record<string, unknown> }[]
    mediaGroups: { AUDIO: Record<string, Record<string, { uri: string }>> }
  }
  t.same(m.contentSteering, {
    serverUri: '/cs/steer?title=big-buck&pathways=rome-1,nyc-1,tokyo-1&region=rome',
    pathwayId: 'rome-1',
  })
  t.equal(m.playlists.length, 6, 'two variants × three pathways')
  const rome720 = m.playlists.find((v) => v.attributes['PATHWAY-ID'] === 'rome-1' && v.uri.includes('720p'))!
  t.equal(rome720.uri, `${rome.url}/vod/big-buck/v1/720p/index.m3u8`)
  t.equal(rome720.attributes.AUDIO, 'aac.rome-1')
  t.equal(m.mediaGroups.AUDIO['aac.nyc-1']!.English!.uri, `${nyc.url}/vod/big-buck/v1/audio/index.m3u8`)
  t.match(master.text, /CHANNELS="2"/, 'attributes the parser does not model survive')
  t.match(master.text, /FRAME-RATE=30\.000/)
  const variantsOf = (id: string) => {
    const base = fleet.find((e) => e.id === id)!.url
    return m.playlists.filter((v) => v.attributes['PATHWAY-ID'] === id).map((v) => v.uri.replace(base, ''))
  }
  t.equal(variantsOf('rome-1').length, 2)
  t.same(variantsOf('nyc-1'), variantsOf('rome-1'), 'every pathway has the same variants, from its own edge')
  t.same(variantsOf('tokyo-1'), variantsOf('rome-1'))

  const steerUrl = `${s.url}${m.contentSteering.serverUri}&_HLS_pathway=rome-1&_HLS_throughput=5000000`
  const before = (await get(steerUrl)).json()
  t.same(before, { VERSION: 1, TTL: 10, 'PATHWAY-PRIORITY': ['rome-1', 'nyc-1', 'tokyo-1'] })
  rome.mode = 'error'
  await s.health.checkNow()
  await s.health.checkNow()
  const after = (await get(steerUrl)).json()
  t.same(after['PATHWAY-PRIORITY'], ['nyc-1', 'tokyo-1', 'rome-1'], 'the dead edge goes last')
  rome.mode = 'ok'
  await s.health.checkNow()
  await s.health.checkNow()
  t.same((await get(steerUrl)).json()['PATHWAY-PRIORITY'][0], 'rome-1', 'and comes back after M successes')
  t.equal((await get(`${s.url}/cs/missing-title/master.m3u8`)).status, 200, 'contract edge serves any master')
})

t.test('fail-static over HTTP: all edges down at once keeps answering, flagged in /edges', async (t) => {
  const { fleet, rome, nyc, tokyo } = await threeSites(t)
  const s = await startSteering(t, fleet)
  for (const e of [rome, nyc, tokyo]) e.mode = 'error'
  await s.health.checkNow()
  await s.health.checkNow()
  const r = await get(`${s.url}/play/big-buck/master.m3u8?region=rome`)
  t.equal(r.status, 302, 'still answering from the last known-good state')
  t.equal(r.headers['x-steering-edge'], 'rome-1')
  const edges = (await get(`${s.url}/edges`)).json()
  t.equal(edges.failStatic, true)
  t.type(edges.failStaticSince, 'string')
  t.ok(
    edges.edges.every((e: { state: string }) => e.state === 'down'),
    'live states still shown as down',
  )
  t.match((await get(`${s.url}/metrics`)).text, /cdn_steering_fail_static 1/)
  t.equal((await get(`${s.url}/steer?title=x`)).json().failStatic, true)
})

t.test('an edge moved to a new URL (a registry update) takes no player before it is checked', async (t) => {
  const [first, second] = await Promise.all([startContractEdge(t, 'rome-1'), startContractEdge(t, 'rome-1')])
  const rome = { id: 'rome-1', url: first!.url, site: 'rome', ...PLACES.rome }
  const s = await startSteering(t, [rome])
  const play = `${s.url}/play/big-buck/master.m3u8`
  t.equal((await get(play)).headers.location, `${first!.url}/vod/big-buck/master.m3u8`)
  // What the registry watch does on a put that changes the record (steering/app.ts).
  const moved = { ...rome, url: second!.url, capacityBytesPerSec: 1e9, weight: 1 }
  t.equal(s.health.upsert(moved), 'changed')
  const before = await get(play)
  t.equal(before.status, 503, 'never checked at its new URL: not in rotation')
  t.match(before.json(), {
    error: { code: 'CDN_ERR_NO_HEALTHY_EDGE', edges: { 'rome-1': 'not checked yet' } },
  })
  t.notOk(second!.requests.includes('/status'), 'nothing has checked the new URL yet')
  await s.health.checkNow()
  t.equal((await get(play)).headers.location, `${second!.url}/vod/big-buck/master.m3u8`, 'in once checked')
})

t.test('another method on a steering resource: 405 with Allow, not 404; no resource: 404', async (t) => {
  const e = await startContractEdge(t, 'rome-1')
  const s = await startSteering(t, [{ id: 'rome-1', url: e.url, site: 'rome', ...PLACES.rome }])
  for (const path of ['/play/t/master.m3u8', '/steer?title=t', '/cs/steer?title=t', '/edges', '/healthz'])
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      const res = await request(`${s.url}${path}`, { method })
      const body = (await res.body.json()) as { error: { code: string } }
      t.equal(res.statusCode, 405, `${method} ${path}`)
      t.equal(res.headers.allow, 'GET, HEAD, OPTIONS', `${method} ${path}: Allow`)
      t.equal(body.error.code, 'CDN_ERR_METHOD_NOT_ALLOWED')
      t.equal(res.headers['access-control-allow-origin'], '*', 'CORS, as every answer')
    }
  const none = await request(`${s.url}/nothing-here`, { method: 'POST' })
  t.match(await none.body.json(), { error: { code: 'CDN_ERR_NOT_FOUND' } })
  t.equal(none.statusCode, 404)
  t.equal((await get(`${s.url}/play/t/master.m3u8`)).status, 302, 'GET still redirects')
})
