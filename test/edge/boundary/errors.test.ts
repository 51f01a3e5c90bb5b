import { createServer } from 'node:net'
import t from 'tap'
import { loggedEdge } from '../../helpers/edge.js'

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

t.test('a 502 from a dead upstream names no address; the log does', async (t) => {
  const port = await deadPort()
  const edge = await loggedEdge(t, {
    // A dead port refuses at once: no short connect timeout, which a busy machine could trip
    // first (a timeout is not the ECONNREFUSED this test checks).
    upstream: [`http://127.0.0.1:${port}`],
  })
  const r = await fetch(`${edge.url}/vod/show/master.m3u8`)
  t.equal(r.status, 502)
  const text = await r.text()
  t.match(JSON.parse(text), { error: { code: 'CDN_ERR_UPSTREAM', upstreamCode: 'ECONNREFUSED' } })
  t.notMatch(text, '127.0.0.1', 'no address in the body')
  t.notMatch(text, String(port), 'no port in the body')
  const logged = edge.logs.find((l) => l.msg === 'request failed')
  t.ok(logged, 'the failure is logged')
  t.equal(logged?.upstream, `http://127.0.0.1:${port}`, 'with the upstream it concerns')
})
