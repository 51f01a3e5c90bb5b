/**
 * The whole chain over TLS with a private CA, each role started as `cdn` starts it: the origin
 * (runOrigin) and steering (startSteering) on HTTPS with HTTP/2, an edge fetching from the
 * origin over https verified against --upstream-ca (and refusing it without), and steering
 * checking the edge's /status over https against --edge-ca, redirecting a player there, and
 * fetching the edge's master for a content-steering master with that same CA.
 */
import t from 'tap'
import { request } from 'undici'
import { parseCommand } from '../../src/config/options.js'
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin } from '../../origin/main.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import { startEdge, tempDir } from '../helpers/edge.js'
import { ingestedStore } from '../helpers/origin.js'
import { writeOneEdgeFleet } from '../helpers/steering.js'
import { agentFor, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'

t.test('origin, edge and steering over HTTPS with a private CA', async (t) => {
  const certs = await testCerts(t)
  const tls = ['--tls-cert', certs.cert.cert, '--tls-key', certs.cert.key]
  const store = await ingestedStore(t, { titles: [{ id: 'alpha', seconds: 10 }] })
  const originOptions = parseCommand<OriginOptions>(
    ORIGIN_SPEC,
    ['--store', store, '--port', '0', '--log-level', 'silent', ...tls, '--http-port', '0'],
    {},
  ).config
  const origin = await runOrigin(originOptions, undefined)
  t.teardown(() => origin.close())
  t.match(origin.url, /^https:/)
  const h2 = agentFor(t, 'h2', certs.caPem)
  const direct = await request(`${origin.url}/vod/alpha/master.m3u8`, { dispatcher: h2 })
  t.equal(direct.statusCode, 200, 'the origin answers over HTTP/2')
  await direct.body.text()
  const plain = await fetch(`${origin.httpUrl}/vod/alpha/master.m3u8`)
  t.equal(plain.status, 200, 'and over plain HTTP beside')
  await plain.text()

  const edge = await startEdge(t, {
    upstream: origin.url,
    upstreamCa: [certs.ca.caCert],
    id: 'e1',
    ...edgeTls(certs),
  })
  const viaEdge = await request(`${edge.url}/vod/alpha/master.m3u8`, { dispatcher: h2 })
  t.equal(viaEdge.statusCode, 200, 'the edge verified the origin against --upstream-ca')
  t.match(await viaEdge.body.text(), /#EXTM3U/)
  const unverified = await startEdge(t, { upstream: origin.url })
  const refused = await fetch(`${unverified.url}/vod/alpha/master.m3u8`)
  t.equal(refused.status, 502, 'without the CA the origin is not trusted')
  const body = await refused.text()
  t.notMatch(body, /127\.0\.0\.1/, 'the error names no address')

  const dir = tempDir(t, 'cdn-tls-fleet-')
  const fleet = writeOneEdgeFleet(dir, edge.url)
  const steeringOptions = parseCommand<SteeringOptions>(
    STEERING_SPEC,
    ['--fleet', fleet, '--port', '0', '--log-level', 'silent', ...tls, '--edge-ca', certs.ca.caCert],
    {},
  ).config
  const steering = await startSteering(steeringOptions)
  t.teardown(() => steering.close())
  t.match(steering.url, /^https:/)
  await until(() => steering.app.steering.health.view.usableCount === 1)
  const play = await request(`${steering.url}/play/alpha/master.m3u8`, { dispatcher: h2 })
  t.equal(play.statusCode, 302, 'steering answers over HTTP/2')
  t.match(
    String(play.headers.location),
    new RegExp(`^${edge.url}/vod/alpha/master\\.m3u8`),
    'to the https edge',
  )
  await play.body.text()
  // Content steering: steering fetches the master from the https edge, trusting --edge-ca.
  const cs = await request(`${steering.url}/cs/alpha/master.m3u8`, { dispatcher: h2 })
  const csText = await cs.body.text()
  t.equal(
    cs.statusCode,
    200,
    `the content-steering master, fetched from the https edge (${csText.slice(0, 80)})`,
  )
  t.match(csText, new RegExp(`${edge.url}/`), 'its pathway is the https edge')
  t.ok(steering.reloadTls(), 'steering reloads its certificates (SIGHUP)')
  t.ok(origin.reloadTls(), 'the origin too')
})

function edgeTls(certs: { cert: { cert: string; key: string } }) {
  return { tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key] }
}
