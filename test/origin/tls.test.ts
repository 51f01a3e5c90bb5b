/**
 * The origin on HTTPS (runOrigin, as `cdn origin --tls-cert` runs it) with a plain-HTTP listener
 * beside: a method no route knows, which only HTTP/2 carries to fastify (node's HTTP/1.1 parser
 * refuses `FOO` itself), gets /vod's 405 with Allow and the CORS fields; a request node cannot
 * parse on the plain listener (serving or redirecting) gets the JSON 400 of the main listener,
 * after the answers pipelined before it.
 */
import { connect as http2Connect } from 'node:http2'
import t, { type Test } from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { parseCommand } from '../../src/config/options.js'
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin, type RunningOrigin } from '../../origin/main.js'
import { exchange } from '../edge/boundary/wire.js'
import { tempDir } from '../helpers/edge.js'
import { h2Exchange, testCerts, type TestCerts } from '../helpers/tls.js'

async function startTlsOrigin(t: Test, certs: TestCerts, more: string[] = []): Promise<RunningOrigin> {
  const argv = ['--store', tempDir(t, 'cdn-origin-tls-'), '--port', '0', '--log-level', 'silent']
  argv.push('--tls-cert', certs.cert.cert, '--tls-key', certs.cert.key, ...more)
  const options = parseCommand<OriginOptions>(ORIGIN_SPEC, argv, {}).config
  const ff = fixtureFfmpeg()
  const origin = await runOrigin(
    { ...options, httpPort: 0, tlsReloadInterval: 0, ffmpegPath: ff.ffmpegPath, ffprobePath: ff.ffprobePath },
    undefined,
  )
  t.teardown(() => origin.close())
  return origin
}

/** One HTTP/2 request: its status, head and body. */
function h2Request(
  t: Test,
  url: string,
  caPem: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const session = http2Connect(url, { ca: caPem, servername: 'localhost' })
  t.teardown(() => session.destroy())
  return h2Exchange(session, headers)
}

t.test('a method no route knows, over HTTP/2: the 405 of /vod, with Allow and CORS', async (t) => {
  const certs = await testCerts(t)
  const origin = await startTlsOrigin(t, certs)
  const res = await h2Request(t, origin.url, certs.caPem, { ':method': 'FOO', ':path': '/vod/x' })
  t.equal(res.status, 405)
  t.equal(res.headers.allow, 'GET, HEAD')
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(res.headers['access-control-expose-headers'], /Content-Range/)
  t.same(JSON.parse(res.body), {
    error: { code: 'CDN_ERR_METHOD_NOT_ALLOWED', message: 'only GET and HEAD are served' },
  })
  const elsewhere = await h2Request(t, origin.url, certs.caPem, { ':method': 'FOO', ':path': '/titles' })
  t.equal(elsewhere.status, 404, 'outside /vod: no route, as before')
  t.same(JSON.parse(elsewhere.body), {
    error: { code: 'CDN_ERR_NOT_FOUND', message: 'no route for FOO /titles' },
  })
})

t.test('the plain listener answers a request node cannot parse with the JSON 400', async (t) => {
  const certs = await testCerts(t)
  for (const [mode, more, first] of [
    ['serving', [], 200],
    ['redirecting', ['--http-redirect'], 308],
  ] as const) {
    const origin = await startTlsOrigin(t, certs, [...more])
    const { responses } = await exchange(Number(new URL(origin.httpUrl!).port), [
      'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' +
        'GET /vod/a/master.m3u8 HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n',
    ])
    t.same(
      responses.map((r) => r.status),
      [first, 400],
      `${mode}: the answer before it, then the 400`,
    )
    const bad = responses[1]!
    t.equal(bad.headers['content-type'], 'application/json; charset=utf-8', mode)
    t.equal(bad.headers.connection, 'close', mode)
    t.same(JSON.parse(bad.body.toString()), {
      error: { code: 'CDN_ERR_BAD_REQUEST', message: 'malformed request' },
    })
  }
})
