/**
 * A body cut after its headers is taken over from the byte reached (edge/upstream/
 * resumable-body.ts, flight-run.ts resumeFrom): a Range request with If-Range, to the same or
 * the next upstream. Real upstreams (node:http on loopback) that cut a body by closing their
 * socket once its first part was written; a real edge in front.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt } from '../helpers/wait.js'
import { IMMUTABLE, pattern } from './upstream-server.js'

const PATH = '/vod/cut/v1/720p/seg-00001.m4s'
const SIZE = 1_000_000
const CUT_AT = 300_000

interface Seen {
  range: string | undefined
  ifRange: string | undefined
}

/**
 * An upstream holding `body` under `etag`: a Range request gets its 206 (if If-Range matches,
 * else the whole 200, as RFC 9110 §13.1.5 says); a whole request is cut after CUT_AT bytes
 * while `cut()` says so; one that `dies` stops listening as it cuts (an origin killed mid-body).
 */
async function upstream(t: Test, body: Buffer, etag: string, cut: () => boolean, dies = false) {
  const seen: Seen[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const range = req.headers.range
    const ifRange = req.headers['if-range'] as string | undefined
    seen.push({ range, ifRange })
    const head = { etag, 'cache-control': IMMUTABLE, 'content-type': 'video/iso.segment' }
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null
    if (m && (ifRange === undefined || ifRange === etag)) {
      const from = Number(m[1])
      res.writeHead(206, {
        ...head,
        'content-range': `bytes ${from}-${body.length - 1}/${body.length}`,
        'content-length': String(body.length - from),
      })
      res.end(body.subarray(from))
      return
    }
    res.writeHead(200, { ...head, 'content-length': String(body.length) })
    if (!cut()) {
      res.end(body)
      return
    }
    // The first part reaches the kernel, then the connection closes: the body is cut.
    res.write(body.subarray(0, CUT_AT), () => {
      if (dies) server.close()
      req.socket.destroy()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    if (server.listening) server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen }
}

async function get(
  url: string,
): Promise<{ status: number; cache: string | null; body?: Buffer; error?: string }> {
  const r = await fetch(url)
  try {
    return { status: r.status, cache: r.headers.get('x-cache'), body: Buffer.from(await r.arrayBuffer()) }
  } catch (err) {
    return { status: r.status, cache: r.headers.get('x-cache'), error: (err as Error).message }
  }
}

t.test('a body cut by an upstream that died is finished by the next one, and stored whole', async (t) => {
  const body = pattern(SIZE, 11)
  const a = await upstream(t, body, '"v1"', () => true, true)
  const b = await upstream(t, body, '"v1"', () => false)
  const edge = await startEdge(t, { upstream: [a.url, b.url] })
  const first = await get(`${edge.url}${PATH}`)
  t.equal(first.status, 200)
  t.equal(first.cache, 'MISS')
  t.ok(first.body?.equals(body), `the client got every byte, in order (${first.body?.length ?? first.error})`)
  t.equal(a.seen.length, 1, 'the first upstream was asked once')
  t.equal(b.seen.length, 1, 'the next one once')
  t.match(b.seen[0]!.range, /^bytes=\d+-$/, 'for the rest only')
  t.ok(Number(/\d+/.exec(b.seen[0]!.range!)![0]) > 0, 'from the byte reached')
  t.equal(b.seen[0]!.ifRange, '"v1"', 'under If-Range with the ETag of the bytes already sent')
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_resumes_total', { result: 'ok' }), 1)
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_fetches_total', { result: 'ok' }), 1)
  await settled(edge)
  const again = await get(`${edge.url}${PATH}`)
  t.equal(again.cache, 'HIT-MEM', 'stored')
  t.ok(again.body?.equals(body), 'the stored copy is the whole object')
  t.equal(a.seen.length + b.seen.length, 2, 'no further upstream request')
})

t.test('a cut from the only upstream is resumed from it, and its health is untouched', async (t) => {
  const body = pattern(SIZE, 12)
  let whole = 0
  const a = await upstream(t, body, '"v1"', () => ++whole === 1)
  const edge = await startEdge(t, { upstream: a.url })
  const first = await get(`${edge.url}${PATH}`)
  t.ok(first.body?.equals(body), 'every byte')
  t.same(
    a.seen.map((s) => s.range === undefined),
    [true, false],
    'a whole request, then one for the rest',
  )
  t.equal(await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_down_total'), 0, 'not marked down')
})

t.test(
  'an object that changed meanwhile is never spliced: the client sees the cut, nothing is stored',
  async (t) => {
    const a = await upstream(t, pattern(SIZE, 13), '"v1"', () => true, true)
    const b = await upstream(t, pattern(SIZE, 14), '"v2"', () => false)
    const edge = await startEdge(t, { upstream: [a.url, b.url] })
    const first = await get(`${edge.url}${PATH}`)
    t.equal(first.status, 200, 'the headers had gone out')
    t.ok(
      first.error !== undefined || first.body!.length < SIZE,
      `the body is cut (${first.body?.length ?? first.error})`,
    )
    t.equal(b.seen[0]?.ifRange, '"v1"')
    t.equal(
      await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_resumes_total', { result: 'refused' }),
      1,
    )
    t.equal(
      await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_fetches_total', { result: 'truncated' }),
      1,
    )
    await settled(edge)
    t.equal(edge.app.edge.store.has(PATH), false, 'nothing stored')
  },
)
