/**
 * Content steering's master and manifest against edges that misbehave in the ways a master
 * fetch can: slow, endless, failing. The well-behaved case is in app.test.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { edgeStatus, PLACES, SAMPLE_MASTER, startContractEdge, startSteering } from '../helpers/steering.js'

const get = async (url: string) => {
  const res = await request(url)
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

interface MasterEdge {
  readonly url: string
  /** Resolves when a master answer's connection closes: whether the edge wrote it all. */
  readonly masterClosed: Promise<{ finished: boolean; bytes: number }>
}

/**
 * An edge whose /status is healthy and whose master is written by `serve`, counting what it
 * writes; every other path is a 404.
 */
async function startMasterEdge(
  t: Test,
  id: string,
  serve: (res: ServerResponse, count: (n: number) => void) => void,
): Promise<MasterEdge> {
  let closed!: (v: { finished: boolean; bytes: number }) => void
  const masterClosed = new Promise<{ finished: boolean; bytes: number }>((r) => (closed = r))
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/status') return void res.end(JSON.stringify(edgeStatus(id)))
    if (!req.url?.endsWith('/master.m3u8')) return void res.writeHead(404).end()
    let bytes = 0
    res.on('close', () => closed({ finished: res.writableFinished, bytes }))
    serve(res, (n) => (bytes += n))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, masterClosed }
}

/** The sample master, 20 bytes every 200 ms (about 7 s in all): each gap far inside undici's. */
function trickle(res: ServerResponse, count: (n: number) => void): void {
  res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' })
  let at = 0
  const timer = setInterval(() => {
    if (at >= SAMPLE_MASTER.length) {
      clearInterval(timer)
      return void res.end()
    }
    res.write(SAMPLE_MASTER.slice(at, at + 20))
    count(20)
    at += 20
  }, 200)
  res.on('close', () => clearInterval(timer))
}

const DEADLINE = 2000

t.test('a master trickled by the best candidate: one deadline, then the next candidate', async (t) => {
  const slow = await startMasterEdge(t, 'rome-1', trickle)
  const nyc = await startContractEdge(t, 'nyc-1')
  const s = await startSteering(
    t,
    [
      { id: 'rome-1', url: slow.url, site: 'rome', ...PLACES.rome },
      { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
    ],
    { pathways: 2, csMasterTimeout: DEADLINE },
  )
  const r = await get(`${s.url}/cs/big-buck/master.m3u8?region=rome`)
  t.equal(r.status, 200)
  t.equal(r.headers['x-steering-edge'], 'nyc-1', 'the master came from the next candidate')
  t.match(r.text, /^#EXTM3U\n/)
  const slowEnd = await slow.masterClosed
  t.equal(slowEnd.finished, false, 'the trickling answer was abandoned before its end')
})

t.test('no candidate sends its master in time: 504 with the error code', async (t) => {
  const edges = await Promise.all(['rome-1', 'nyc-1'].map((id) => startMasterEdge(t, id, trickle)))
  const s = await startSteering(
    t,
    [
      { id: 'rome-1', url: edges[0]!.url, site: 'rome', ...PLACES.rome },
      { id: 'nyc-1', url: edges[1]!.url, site: 'nyc', ...PLACES.newYork },
    ],
    { pathways: 2, csMasterTimeout: DEADLINE },
  )
  const r = await get(`${s.url}/cs/big-buck/master.m3u8?region=rome`)
  t.equal(r.status, 504)
  t.match(r.json(), { error: { code: 'CDN_ERR_UPSTREAM_TIMEOUT', message: /nyc-1/ } })
  for (const e of edges) t.equal((await e.masterClosed).finished, false, 'each abandoned')
  t.match(
    (await get(`${s.url}/metrics`)).text,
    /steering_decisions_total\{kind="cs-master",outcome="upstream-error"\} 1/,
  )
})

t.test('a master without Content-Length is bounded while it is read', async (t) => {
  const TOTAL = 64 << 20
  const big = await startMasterEdge(t, 'rome-1', (res, count) => {
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' })
    const chunk = Buffer.alloc(64 << 10, '#')
    let sent = 0
    const pump = () => {
      while (sent < TOTAL) {
        sent += chunk.length
        count(chunk.length)
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    pump()
  })
  const s = await startSteering(t, [{ id: 'rome-1', url: big.url, site: 'rome', ...PLACES.rome }])
  const r = await get(`${s.url}/cs/big-buck/master.m3u8`)
  t.equal(r.status, 502)
  t.match(r.json(), { error: { code: 'CDN_ERR_PLAYLIST', message: /too large/ } })
  const end = await big.masterClosed
  t.equal(end.finished, false, 'the answer was cut off, not read to its end')
  t.ok(end.bytes < TOTAL, `${end.bytes} of ${TOTAL} bytes written`)
})
