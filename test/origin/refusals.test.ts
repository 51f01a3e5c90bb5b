/**
 * What the origin refuses before any route runs (node's parser, fastify's router) is answered
 * with the one JSON error body and a catalogue code, as on every node, in request order.
 */
import t from 'tap'
import { exchange } from '../edge/boundary/wire.js'
import { startOrigin, tempDir } from '../helpers/origin.js'
import { until } from '../helpers/wait.js'

const origin = await startOrigin(t, { store: `${await tempDir(t)}/store` })
const port = Number(new URL(origin.url).port)

/**
 * A connection ended after a client error stays for a second after its answer went out
 * (lingeringClose, src/http/one-answer.ts); waited for, or the origin's close would wait on
 * timers that do not keep the test's process alive.
 */
const lingerOver = () =>
  until(
    async () => (await new Promise<number>((r) => origin.app.server.getConnections((_e, n) => r(n)))) === 0,
  )

t.test("node's and fastify's refusals answer the JSON error body", async (t) => {
  const cases = [
    ['a path that does not percent-decode', 'GET /vod/%ff/master.m3u8', 400, 'CDN_ERR_BAD_PATH'],
    ['a path parameter longer than fastify takes', `GET /titles/${'a'.repeat(120)}`, 414, 'CDN_ERR_BAD_PATH'],
    ['a head too large', `GET /healthz\r\nx-big: ${'a'.repeat(20_000)}`, 431, 'CDN_ERR_HEADERS_TOO_LARGE'],
    ['a malformed header line', 'GET /healthz\r\nnot a header line', 400, 'CDN_ERR_BAD_REQUEST'],
  ] as const
  for (const [what, head, status, code] of cases) {
    const [line, ...fields] = head.split('\r\n')
    const request = [`${line} HTTP/1.1`, 'host: origin', ...fields, '', ''].join('\r\n')
    const { responses } = await exchange(port, [request])
    t.equal(responses.length, 1, `${what}: one answer`)
    const r = responses[0]!
    t.equal(r.status, status, `${what}: ${status}`)
    t.equal(r.headers['cache-control'], 'no-store', `${what}: never stored`)
    t.match(r.headers['content-type'], /^application\/json/, `${what}: JSON`)
    t.match(JSON.parse(r.body.toString()), { error: { code, message: String } }, `${what}: ${code}`)
    if (line!.includes(' /vod/'))
      t.equal(r.headers['access-control-allow-origin'], '*', `${what}: a /vod answer, with CORS`)
  }
  await lingerOver()
})

t.test('a malformed request is answered after the answers of the requests before it', async (t) => {
  const good = 'GET /healthz HTTP/1.1\r\nhost: origin\r\n\r\n'
  const bad = 'GET /healthz HTTP/1.1\r\nhost: origin\r\nnot a header line\r\n\r\n'
  const { responses } = await exchange(port, [good + good + bad])
  t.same(
    responses.map((r) => r.status),
    [200, 200, 400],
  )
  t.match(JSON.parse(responses[2]!.body.toString()), { error: { code: 'CDN_ERR_BAD_REQUEST' } })
  await lingerOver()
})
