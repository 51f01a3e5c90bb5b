/**
 * 103 Early Hints (RFC 8297) from the origin reach the client before the final answer, through
 * a chain of two edges, and are never stored: a hit has nothing to pass on. The origin is a
 * bare node:http server that writes its hints, then waits for the test to let it answer.
 */
import { createServer } from 'node:http'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { settled, startEdge } from '../helpers/edge.js'
import { listenLoopback } from '../helpers/loopback.js'
import { until } from '../helpers/wait.js'
import { get } from './http-get.js'

const LINK = '</vod/t/style.css>; rel=preload; as=style'

/** An origin that sends a 103 with LINK, then answers once `release` is called. */
async function hintingOrigin(t: Test) {
  let open: () => void = () => undefined
  let gate = new Promise<void>((r) => (open = r))
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(req.url!)
    res.writeEarlyHints({ link: LINK, 'x-hint': 'yes' })
    void gate.then(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '4', etag: '"1"' })
      res.end('body')
    })
  })
  return {
    url: await listenLoopback(t, server),
    seen,
    release: () => {
      open()
      gate = Promise.resolve()
    },
  }
}

t.test('a 103 from the origin is passed to the client, through two edges, and never stored', async (t) => {
  const origin = await hintingOrigin(t)
  const parent = await startEdge(t, { upstream: origin.url, id: 'parent' })
  const child = await startEdge(t, { upstream: parent.url, id: 'child' })
  const url = `${child.url}/vod/t/a.m4s`
  const pending = get(url)
  await until(() => origin.seen.length === 1)
  origin.release()
  const miss = await pending
  t.equal(miss.status, 200)
  t.equal(miss.body, 'body')
  t.same(
    miss.interim.map((i) => [i.status, i.headers.link, i.headers['x-hint']]),
    [[103, LINK, 'yes']],
    'the hints arrived once, before the answer',
  )
  t.equal(miss.h('link'), undefined, 'the final answer has only its own fields')
  await settled(child)
  await settled(parent)

  const hit = await get(url)
  t.equal(hit.h('x-cache'), 'HIT-MEM')
  t.same(hit.interim, [], 'a hit has no hints to pass on')
  const parentHit = await get(`${parent.url}/vod/t/a.m4s`)
  t.equal(parentHit.h('x-cache'), 'HIT-MEM')
  t.same(parentHit.interim, [], 'nor has the parent stored any')
  t.equal(origin.seen.length, 1)
})

t.test('every client waiting on the fetch gets the hints; an HTTP/1.0 client gets none', async (t) => {
  const origin = await hintingOrigin(t)
  const edge = await startEdge(t, { upstream: origin.url })
  const url = `${edge.url}/vod/t/b.m4s`
  const first = get(url)
  await until(() => origin.seen.length === 1)
  const second = get(url)
  const old = raw10(edge.url, '/vod/t/b.m4s')
  await until(() => edge.app.edge.flights.current('/vod/t/b.m4s')?.sinks.size === 3)
  origin.release()
  const [a, b, c] = await Promise.all([first, second, old])
  t.equal(a.h('x-cache'), 'MISS')
  t.equal(a.interim.length, 1)
  t.equal(b.h('x-cache'), 'COALESCED')
  t.equal(b.interim.length, 1, 'the client that joined the fetch got them too')
  t.match(c, /^HTTP\/1\.1 200 /, 'HTTP/1.0: the final answer first')
  t.notMatch(c, /103/, 'and no interim answer')
  t.equal(origin.seen.length, 1)
})

/** An HTTP/1.0 GET over a bare socket: every byte the edge sent until it closed. */
function raw10(base: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(Number(new URL(base).port), '127.0.0.1', () =>
      s.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`),
    )
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (d: string) => (out += d))
    s.on('end', () => resolve(out))
    s.on('error', reject)
  })
}
