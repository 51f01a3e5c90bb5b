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

interface UpstreamOptions {
  body: Buffer
  /** Validators sent with every answer (none: neither). */
  etag?: string
  lastModified?: string
  /** Whether a whole request is cut (after `cutAt` bytes). */
  cut: () => boolean
  cutAt?: number
  /** Stops listening as it cuts (an origin killed mid-body). */
  dies?: boolean
  /** Answers a Range request with its own bytes whatever If-Range says (not RFC 9110's way). */
  ignoresIfRange?: boolean
}

/**
 * An upstream holding `body`: a Range request gets its 206 (if If-Range matches its validator,
 * else the whole 200, as RFC 9110 §13.1.5 says, unless it `ignoresIfRange`); a whole request is
 * cut after `cutAt` bytes while `cut()` says so.
 */
async function upstream(t: Test, o: UpstreamOptions) {
  const { body } = o
  const seen: Seen[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const range = req.headers.range
    const ifRange = req.headers['if-range'] as string | undefined
    seen.push({ range, ifRange })
    const head: Record<string, string> = { 'cache-control': IMMUTABLE, 'content-type': 'video/iso.segment' }
    if (o.etag) head.etag = o.etag
    if (o.lastModified) head['last-modified'] = o.lastModified
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null
    const matches = ifRange === undefined || ifRange === o.etag || ifRange === o.lastModified
    if (m && (matches || o.ignoresIfRange)) {
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
    if (!o.cut()) {
      res.end(body)
      return
    }
    // The first part reaches the kernel, then the connection closes: the body is cut.
    res.write(body.subarray(0, o.cutAt ?? CUT_AT), () => {
      if (o.dies) server.close()
      req.socket.destroy()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    if (server.listening) server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen }
}

/** An hour ago, as an HTTP date: a strong Last-Modified beside the answer's own Date. */
const HOUR_AGO = new Date(Date.now() - 3_600_000).toUTCString()

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
  const a = await upstream(t, { body, etag: '"v1"', cut: () => true, dies: true })
  const b = await upstream(t, { body, etag: '"v1"', cut: () => false })
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
  const a = await upstream(t, { body, etag: '"v1"', cut: () => ++whole === 1 })
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
    const a = await upstream(t, { body: pattern(SIZE, 13), etag: '"v1"', cut: () => true, dies: true })
    const b = await upstream(t, { body: pattern(SIZE, 14), etag: '"v2"', cut: () => false })
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

/** The first upstream dies mid-body; the next holds `next` (its own body and validators). */
async function cutThenNext(
  t: Test,
  first: Omit<UpstreamOptions, 'cut' | 'dies'>,
  next: Omit<UpstreamOptions, 'cut'>,
) {
  const a = await upstream(t, { ...first, cut: () => true, dies: true })
  const b = await upstream(t, { ...next, cut: () => false })
  const edge = await startEdge(t, { upstream: [a.url, b.url] })
  const res = await get(`${edge.url}${PATH}`)
  const resumed = await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_resumes_total', { result: 'ok' })
  const refused = await metricAt(`${edge.url}/metrics`, 'cdn_edge_upstream_resumes_total', {
    result: 'refused',
  })
  await settled(edge)
  return { res, b, resumed, refused, stored: edge.app.edge.store.has(PATH) }
}

t.test('an upstream that ignores If-Range cannot splice another object on', async (t) => {
  const v1 = pattern(SIZE, 15)
  const v2 = pattern(SIZE, 16)
  const byEtag = await cutThenNext(
    t,
    { body: v1, etag: '"v1"' },
    { body: v2, etag: '"v2"', ignoresIfRange: true },
  )
  t.equal(byEtag.b.seen[0]?.range !== undefined, true, 'the rest was asked for')
  t.same([byEtag.resumed, byEtag.refused, byEtag.stored], [0, 1, false], 'its 206 under another ETag refused')
  t.ok(
    byEtag.res.body === undefined || !byEtag.res.body.equals(v1),
    'the client saw the cut, not v2 spliced on',
  )
  const later = new Date(Date.now() - 1_800_000).toUTCString()
  const byDate = await cutThenNext(
    t,
    { body: v1, lastModified: HOUR_AGO },
    { body: v2, lastModified: later, ignoresIfRange: true },
  )
  t.equal(byDate.b.seen[0]?.ifRange, HOUR_AGO, 'without an ETag, a strong Last-Modified is the If-Range')
  t.same(
    [byDate.resumed, byDate.refused, byDate.stored],
    [0, 1, false],
    'its 206 under another Last-Modified refused',
  )
  const sameDate = await cutThenNext(
    t,
    { body: v1, lastModified: HOUR_AGO },
    { body: v1, lastModified: HOUR_AGO },
  )
  t.same([sameDate.resumed, sameDate.stored], [1, true], 'the same Last-Modified takes over')
  t.ok(sameDate.res.body?.equals(v1), 'every byte')
})

t.test('a weak ETag is no validator for a takeover: the body is cut, nothing asked', async (t) => {
  const r = await cutThenNext(
    t,
    { body: pattern(SIZE, 17), etag: 'W/"v1"' },
    { body: pattern(SIZE, 17), etag: 'W/"v1"' },
  )
  t.same(r.b.seen, [], 'no Range request')
  t.same([r.resumed, r.stored], [0, false])
})

t.test('a takeover while a paced fill holds its body: the fill completes', async (t) => {
  // A cut inside the first 64 KiB (the wrapper's buffer is not full) while the fill holds the
  // body far longer than the takeover takes: the new source must not stay paused.
  const body = pattern(200_000, 18)
  let whole = 0
  const a = await upstream(t, { body, etag: '"v1"', cut: () => ++whole === 1, cutAt: 30_000 })
  const edge = await startEdge(t, { upstream: a.url })
  const r = await edge.app.edge.flights.fill({ key: PATH, path: PATH }, { protect: true, pace: () => 200 })
  t.same([r.how, r.bytes, r.stored], ['fetched', body.length, true])
  t.same(
    a.seen.map((s) => s.range),
    [undefined, 'bytes=30000-'],
    'the rest from the byte reached',
  )
  await settled(edge)
  const got = await get(`${edge.url}${PATH}`)
  t.ok(got.body?.equals(body), 'stored whole')
})
