/**
 * Steering on HTTPS (startSteering, as `cdn steering --tls-cert` runs it) with a plain-HTTP
 * listener beside: /metrics counts each request's protocol (h2, HTTP/1.1 over TLS, HTTP/1.1 in
 * the clear) and each TLS handshake as full or resumed; certificate files swapped under it are
 * served after a reload (what SIGHUP calls), to a new connection, without a restart; the plain
 * listener answers a request node cannot parse with the JSON 400, as the HTTPS one does.
 */
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { copyFileSync, readFileSync, renameSync } from 'node:fs'
import { connect as http2Connect } from 'node:http2'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import t from 'tap'
import { request } from 'undici'
import { serverCert } from '../../src/cli/demo/certs.js'
import { parseCommand } from '../../src/config/options.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import { tempDir } from '../helpers/edge.js'
import { writeOneEdgeFleet } from '../helpers/steering.js'
import { exchange } from '../edge/boundary/wire.js'
import { agentFor, h2Exchange, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'

interface Shake {
  serial: string
  reused: boolean
  session: Buffer | undefined
}

/** One TLS connection to `port`: the certificate's serial, whether it resumed, its ticket. */
function handshake(port: number, ca: string, session?: Buffer): Promise<Shake> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = connect({
      port,
      host: '127.0.0.1',
      ca,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
      ...(session ? { session } : {}),
    })
    let ticket: Buffer | undefined
    s.on('session', (b: Buffer) => (ticket = b))
    s.once('error', reject)
    s.once('secureConnect', () => {
      const reused = s.isSessionReused()
      const serial = s.getPeerX509Certificate()?.serialNumber ?? ''
      // TLS 1.3 sends the ticket after the handshake.
      const done = () => {
        s.end()
        resolve({ serial, reused, session: ticket })
      }
      if (ticket || reused) done()
      else s.once('session', done)
    })
  })
}

const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber

/**
 * A request node cannot parse, pipelined after a good one, on the plain listener at `httpUrl`:
 * the statuses, and the JSON error of the second (node's own 400 had no body).
 */
async function malformedOnPlain(httpUrl: string): Promise<{ statuses: number[]; error: unknown }> {
  const { responses } = await exchange(Number(new URL(httpUrl).port), [
    'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' +
      'GET /steer HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n',
  ])
  const bad = responses[1]
  return {
    statuses: responses.map((r) => r.status),
    error: bad && bad.body.length ? JSON.parse(bad.body.toString()) : undefined,
  }
}
const MALFORMED = { error: { code: 'CDN_ERR_BAD_REQUEST', message: 'malformed request' } }

async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)
  return m ? Number(m[1]) : Number.NaN
}

t.test('steering over HTTPS: protocol and handshake metrics, certificates reloaded', async (t) => {
  const certs = await testCerts(t)
  const dir = tempDir(t, 'cdn-steering-tls-')
  const cert = join(dir, 'steering.pem')
  const key = join(dir, 'steering-key.pem')
  copyFileSync(certs.cert.cert, cert)
  copyFileSync(certs.cert.key, key)
  const fleet = writeOneEdgeFleet(dir, 'http://127.0.0.1:9')
  const options = parseCommand<SteeringOptions>(
    STEERING_SPEC,
    ['--fleet', fleet, '--port', '0', '--log-level', 'silent', '--tls-cert', cert, '--tls-key', key],
    {},
  ).config
  const steering = await startSteering({ ...options, httpPort: 0, tlsReloadInterval: 0 })
  t.teardown(() => steering.close())
  t.match(steering.url, /^https:/)
  t.match(steering.httpUrl, /^http:/)
  const port = Number(new URL(steering.url).port)

  const counted = (p: string) =>
    metric(steering.httpUrl!, 'cdn_steering_requests_by_protocol_total', `protocol="${p}"`)
  const before = { h1: await counted('h1'), https1: await counted('https1'), h2: await counted('h2') }
  t.same(before, { h1: 1, https1: 0, h2: 0 }, 'every protocol is listed from the start (h1: that request)')
  for (const tr of ['h2', 'h2', 'https1'] as const) {
    const res = await request(`${steering.url}/healthz`, { dispatcher: agentFor(t, tr, certs.caPem) })
    t.equal(res.statusCode, 200, `/healthz over ${tr}`)
    await res.body.text()
  }
  t.same(
    { h1: await counted('h1'), https1: await counted('https1'), h2: await counted('h2') },
    { h1: 4, https1: 1, h2: 2 },
    'each request counted under its protocol (h1: the /metrics reads)',
  )

  const shakes = (resumed: boolean) =>
    metric(steering.httpUrl!, 'cdn_steering_tls_handshakes_total', `resumed="${resumed}"`)
  const full = await shakes(false)
  t.ok(full >= 2, `the agents' full handshakes are counted (${full})`)
  t.equal(await shakes(true), 0, 'none resumed yet')
  const first = await handshake(port, certs.caPem)
  t.notOk(first.reused, 'a new client: a full handshake')
  t.ok((await handshake(port, certs.caPem, first.session)).reused, 'the ticket resumes the session')
  // The server counts a handshake once it has finished it, which may be after the client has.
  await until(async () => (await shakes(true)) === 1)
  t.equal(await shakes(false), full + 1, 'one more full handshake')

  const renewed = await serverCert(certs.ca, 'renewed')
  t.not(serialOf(renewed.cert), first.serial)
  copyFileSync(renewed.key, `${key}.tmp`)
  copyFileSync(renewed.cert, `${cert}.tmp`)
  renameSync(`${key}.tmp`, key)
  renameSync(`${cert}.tmp`, cert)
  t.equal((await handshake(port, certs.caPem)).serial, first.serial, 'no reload yet: the old certificate')
  t.ok(steering.reloadTls(), 'reloaded (what SIGHUP does)')
  t.equal(
    (await handshake(port, certs.caPem)).serial,
    serialOf(renewed.cert),
    'a new connection gets the new one',
  )
  t.same(
    await malformedOnPlain(steering.httpUrl!),
    { statuses: [200, 400], error: MALFORMED },
    'a malformed request on the plain listener: the JSON 400, after the answer before it',
  )
})

t.test(
  'steering with --http-redirect: HSTS on its HTTPS answers, the 308 beside, CONNECT refused, FOO a 404, a malformed request the JSON 400',
  async (t) => {
    const certs = await testCerts(t)
    const dir = tempDir(t, 'cdn-steering-hsts-')
    const fleet = writeOneEdgeFleet(dir, 'http://127.0.0.1:9')
    const argv = ['--fleet', fleet, '--port', '0', '--log-level', 'silent', '--http-redirect']
    argv.push('--tls-cert', certs.cert.cert, '--tls-key', certs.cert.key)
    const options = parseCommand<SteeringOptions>(STEERING_SPEC, argv, {}).config
    const steering = await startSteering({ ...options, httpPort: 0, tlsReloadInterval: 0 })
    t.teardown(() => steering.close())
    for (const tr of ['h2', 'https1'] as const) {
      const res = await request(`${steering.url}/healthz`, { dispatcher: agentFor(t, tr, certs.caPem) })
      await res.body.text()
      t.equal(res.headers['strict-transport-security'], 'max-age=31536000', tr)
    }
    const moved = await fetch(`${steering.httpUrl!}/healthz`, { redirect: 'manual' })
    t.equal(moved.status, 308)
    t.equal(moved.headers.get('location'), `${steering.url}/healthz`)
    t.equal(moved.headers.get('strict-transport-security'), null)
    const session = http2Connect(steering.url, { ca: certs.caPem, servername: 'localhost' })
    t.teardown(() => session.destroy())
    const connect = await h2Exchange(session, { ':method': 'CONNECT', ':authority': 'evil.example:443' })
    t.equal(connect.status, 400, 'CONNECT over HTTP/2: the JSON 400, not a bare 405')
    t.match(JSON.parse(connect.body), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
    // A method fastify does not know at all (HTTP/1.1 cannot carry it): the JSON 404, with CORS;
    // a method it knows, on a resource served to GET: the 405 with Allow.
    for (const [method, status, error] of [
      ['FOO', 404, { code: 'CDN_ERR_NOT_FOUND', message: 'no route for FOO /steer' }],
      ['POST', 405, { code: 'CDN_ERR_METHOD_NOT_ALLOWED', message: 'only GET and HEAD are served' }],
    ] as const) {
      const r = session.request({ ':method': method, ':path': '/steer' })
      const [head] = (await once(r, 'response')) as [Record<string, unknown>]
      const body = (await r.toArray()).join('')
      t.equal(head[':status'], status, method)
      t.equal(head['access-control-allow-origin'], '*', `${method}: CORS`)
      t.same(JSON.parse(body), { error })
    }
    t.same(
      await malformedOnPlain(steering.httpUrl!),
      { statuses: [308, 400], error: MALFORMED },
      'a malformed request on the redirecting listener: the JSON 400, after the 308 before it',
    )
  },
)
