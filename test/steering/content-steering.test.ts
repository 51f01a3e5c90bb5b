/**
 * Content steering's master and manifest against edges that misbehave in the ways a master
 * fetch can: slow, endless, failing. The well-behaved case is in app.test.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { pathwayPriority } from '../../steering/content-steering.js'
import {
  type ContractEdge,
  edgeStatus,
  PLACES,
  SAMPLE_MASTER,
  startContractEdge,
  startSteering,
} from '../helpers/steering.js'

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
    /cdn_steering_decisions_total\{kind="cs-master",outcome="upstream-error"\} 1/,
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

t.test('the steering manifest names only the Pathways the master defined, best first', async (t) => {
  const edges = await Promise.all(['rome-1', 'nyc-1', 'tokyo-1'].map((id) => startContractEdge(t, id)))
  const [rome, nyc, tokyo] = edges as [ContractEdge, ContractEdge, ContractEdge]
  const s = await startSteering(
    t,
    [
      { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
      { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
      { id: 'tokyo-1', url: tokyo.url, site: 'tokyo', ...PLACES.tokyo },
    ],
    { pathways: 2 },
  )
  const master = await get(`${s.url}/cs/big-buck/master.m3u8?region=rome`)
  const serverUri = /SERVER-URI="([^"]+)"/.exec(master.text)![1]!
  const defined = new Set([...master.text.matchAll(/PATHWAY-ID="([^"]+)"/g)].map((m) => m[1]))
  t.same([...defined].sort(), ['nyc-1', 'rome-1'], 'the master defines two Pathways')
  const steer = async () => {
    // As hls.js asks: the SERVER-URI resolved against the master's URL, plus its own parameters.
    const r = await get(`${new URL(serverUri, s.url).href}&_HLS_pathway=rome-1&_HLS_throughput=5000000`)
    t.equal(r.status, 200)
    return r.json()['PATHWAY-PRIORITY'] as string[]
  }
  t.same(await steer(), ['rome-1', 'nyc-1'])

  const down = async (...es: ContractEdge[]) => {
    for (const e of es) e.mode = 'error'
    await s.health.checkNow()
    await s.health.checkNow()
  }
  await down(rome)
  t.same(await steer(), ['nyc-1', 'rome-1'], 'the healthy Pathway first, the dead one last')
  await down(nyc)
  // tokyo-1 is healthy but the player's master has no such Pathway: naming it would leave the
  // player on its dead Pathway (hls.js ignores an id it does not know).
  t.same(await steer(), ['rome-1', 'nyc-1'], "only the master's Pathways, never an empty list")
  await down(tokyo)
  t.same(await steer(), ['rome-1', 'nyc-1'], 'with no edge healthy at all, still an answer')

  for (const [bad, why] of [
    ['', /comma-separated/],
    ['rome-1,rome-1', /named twice/],
    ['rome-1,bad id', /not an edge id/],
    [Array.from({ length: 17 }, (_, i) => `e${i}`).join(','), /at most 16/],
  ] as const) {
    const r = await get(`${s.url}/cs/steer?title=big-buck&pathways=${encodeURIComponent(bad)}`)
    t.equal(r.status, 400, bad)
    t.match(r.json(), { error: { code: 'CDN_ERR_BAD_REQUEST', message: why } })
  }
})

t.test('the best candidate fails its master: the edge that answered is the initial Pathway', async (t) => {
  const broken = await startMasterEdge(t, 'rome-1', (res) => res.writeHead(500).end())
  const [nyc, tokyo] = await Promise.all(['nyc-1', 'tokyo-1'].map((id) => startContractEdge(t, id)))
  const s = await startSteering(t, [
    { id: 'rome-1', url: broken.url, site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', url: nyc!.url, site: 'nyc', ...PLACES.newYork },
    { id: 'tokyo-1', url: tokyo!.url, site: 'tokyo', ...PLACES.tokyo },
  ])
  const master = await get(`${s.url}/cs/big-buck/master.m3u8?region=rome`)
  t.equal(master.status, 200)
  t.equal(master.headers['x-steering-edge'], 'nyc-1')
  const tag = /#EXT-X-CONTENT-STEERING:SERVER-URI="([^"]+)",PATHWAY-ID="([^"]+)"/.exec(master.text)!
  t.equal(tag[2], 'nyc-1', 'the player starts on the edge that served the master')
  t.match(master.text, /PATHWAY-ID="rome-1"/, 'the failed edge is still a Pathway')
  const steer = await get(`${new URL(tag[1]!, s.url).href}&_HLS_pathway=nyc-1`)
  t.same(
    steer.json()['PATHWAY-PRIORITY'],
    ['nyc-1', 'tokyo-1', 'rome-1'],
    'the failed edge after the others, though its /status is healthy',
  )
  const wrong = await get(`${s.url}/cs/steer?title=big-buck&pathways=nyc-1,rome-1&failed=tokyo-1`)
  t.equal(wrong.status, 400, 'failed names only Pathways')
  t.match(wrong.json(), { error: { code: 'CDN_ERR_BAD_REQUEST', message: /^failed: / } })
})

/** A master using every tag that may carry a URI in a multivariant playlist, all relative. */
const URI_MASTER = `#EXTM3U
#EXT-X-VERSION:11
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-DEFINE:NAME="v",VALUE="v1"
#EXT-X-DEFINE:QUERYPARAM="tok"
#EXT-X-SESSION-KEY:METHOD=AES-128,URI="key.bin",KEYFORMAT="identity"
#EXT-X-SESSION-DATA:DATA-ID="com.example.lyrics",URI="lyrics.json"
#EXT-X-SESSION-DATA:DATA-ID="com.example.note",VALUE="a,URI=b"
#EXT-X-SESSION-DATA:DATA-ID="com.example.far",URI="https://meta.example/far.json"
#EXT-X-CONTENT-STEERING:SERVER-URI="theirs.json"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=YES,URI="{$v}/audio/index.m3u8"
#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=10000,RESOLUTION=320x180,CODECS="jpeg",URI="{$v}/thumbs/index.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI="{$v}/iframes.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO="aac"
{$v}/360p/{$tok}.m3u8
`

t.test('every URI of the master is absolute: on each Pathway, or on the edge that served it', async (t) => {
  const rome = await startMasterEdge(t, 'rome-1', (res, count) => {
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(URI_MASTER)
    count(URI_MASTER.length)
  })
  const nyc = await startContractEdge(t, 'nyc-1')
  const s = await startSteering(t, [
    { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
  ])
  const master = await get(`${s.url}/cs/t1/master.m3u8?lat=41.9&lon=12.5`)
  t.equal(master.status, 200)
  t.equal(master.headers['x-steering-edge'], 'rome-1')
  const lines = master.text.split('\n')
  const tag = (prefix: string) => lines.filter((l) => l.startsWith(prefix))
  const on = (base: string) => `${base}/vod/t1`
  // What the player would have asked steering for (https://steering/cs/t1/key.bin, a 404).
  t.same(tag('#EXT-X-SESSION-KEY:'), [
    `#EXT-X-SESSION-KEY:METHOD=AES-128,URI="${on(rome.url)}/key.bin",KEYFORMAT="identity"`,
  ])
  t.same(tag('#EXT-X-SESSION-DATA:'), [
    `#EXT-X-SESSION-DATA:DATA-ID="com.example.lyrics",URI="${on(rome.url)}/lyrics.json"`,
    '#EXT-X-SESSION-DATA:DATA-ID="com.example.note",VALUE="a,URI=b"',
    '#EXT-X-SESSION-DATA:DATA-ID="com.example.far",URI="https://meta.example/far.json"',
  ])
  t.same(tag('#EXT-X-IMAGE-STREAM-INF:'), [
    `#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=10000,RESOLUTION=320x180,CODECS="jpeg",URI="${on(rome.url)}/v1/thumbs/index.m3u8"`,
  ])
  t.same(tag('#EXT-X-DEFINE:'), ['#EXT-X-DEFINE:NAME="v",VALUE="v1"', '#EXT-X-DEFINE:QUERYPARAM="tok"'])
  t.same(tag('#EXT-X-CONTENT-STEERING:').length, 1, "only steering's own")
  t.match(tag('#EXT-X-CONTENT-STEERING:')[0], /^#EXT-X-CONTENT-STEERING:SERVER-URI="\/cs\/steer\?title=t1&/)
  for (const [id, base] of [
    ['rome-1', rome.url],
    ['nyc-1', nyc.url],
  ] as const) {
    t.ok(lines.includes(`${on(base)}/v1/360p/{$tok}.m3u8`), `${id}: the variant, its QUERYPARAM kept`)
    t.ok(
      tag('#EXT-X-MEDIA:').some((l) => l.includes(`URI="${on(base)}/v1/audio/index.m3u8"`)),
      id,
    )
    t.ok(
      tag('#EXT-X-I-FRAME-STREAM-INF:').some((l) => l.includes(`URI="${on(base)}/v1/iframes.m3u8"`)),
      id,
    )
  }
  // No URI anywhere is left to resolve against steering.
  const uris = [
    ...[...master.text.matchAll(/(?:^|,|:)URI="([^"]*)"/gm)].map((m) => m[1]!),
    ...lines.filter((l) => l !== '' && !l.startsWith('#')),
  ]
  t.equal(uris.length, 10, 'key, 2 session data, image, and 2 each of media, I-frame and variant')
  for (const uri of uris) t.match(uri, /^https?:\/\//, uri)
})

t.test('a master with a URI that does not resolve is refused (502), not answered', async (t) => {
  const rome = await startMasterEdge(t, 'rome-1', (res) =>
    res.end(`${SAMPLE_MASTER}#EXT-X-SESSION-DATA:DATA-ID="x",URI="http://[bad/x.json"\n`),
  )
  const s = await startSteering(t, [{ id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome }])
  const r = await get(`${s.url}/cs/t1/master.m3u8`)
  t.equal(r.status, 502)
  t.match(r.json(), { error: { code: 'CDN_ERR_PLAYLIST', message: /does not resolve/ } })
})

t.test('pathway priority as a table', async (t) => {
  const up = new Set(['a', 'b', 'c', 'x'])
  const cases: [string, string[], string[], string[], string[]?][] = [
    ['ranked order', ['a', 'b', 'c'], ['c', 'a', 'b'], ['c', 'a', 'b']],
    ['other edges ranked are not named', ['a', 'b'], ['x', 'b', 'a'], ['b', 'a']],
    ['down last, in master order', ['d', 'a', 'e'], ['a'], ['a', 'd', 'e']],
    ['usable but not ranked after ranked', ['c', 'a', 'd'], ['a'], ['a', 'c', 'd']],
    ['nothing ranked', ['d', 'e'], [], ['d', 'e']],
    ['failed after the other usable ones', ['b', 'a', 'c'], ['a', 'b', 'c'], ['b', 'c', 'a'], ['a']],
    ['failed before the down ones', ['a', 'd', 'b'], ['a', 'b'], ['b', 'a', 'd'], ['a']],
    ['failed and down: with the down ones', ['b', 'd'], ['b'], ['b', 'd'], ['d']],
  ]
  for (const [name, pathways, ranked, want, failed = []] of cases)
    t.same(
      pathwayPriority(pathways, ranked, (id) => up.has(id), new Set(failed)),
      want,
      name,
    )
})

t.test('closed captions: each variant names its Pathway’s caption group, NONE stays NONE', async (t) => {
  const CC_MASTER = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",LANGUAGE="en",INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS="avc1.64001f",RESOLUTION=1280x720,CLOSED-CAPTIONS="cc"
v1/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001e",RESOLUTION=640x360,CLOSED-CAPTIONS=NONE
v1/360p/index.m3u8
`
  const rome = await startMasterEdge(t, 'rome-1', (res) => res.end(CC_MASTER))
  const nyc = await startContractEdge(t, 'nyc-1')
  const s = await startSteering(t, [
    { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
  ])
  const master = await get(`${s.url}/cs/t1/master.m3u8?lat=41.9&lon=12.5`)
  t.equal(master.status, 200)
  const lines = master.text.split('\n')
  const groups = lines
    .filter((l) => l.startsWith('#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,'))
    .map((l) => /GROUP-ID="([^"]*)"/.exec(l)![1])
  t.equal(groups.length, 2, 'one caption group per Pathway')
  const variants = lines.filter((l) => l.startsWith('#EXT-X-STREAM-INF:'))
  for (const id of ['rome-1', 'nyc-1']) {
    const mine = variants.filter((l) => l.includes(`PATHWAY-ID="${id}"`))
    t.equal(mine.length, 2, id)
    const cc = mine.map((l) => /CLOSED-CAPTIONS=("[^"]*"|[A-Z]+)/.exec(l)![1])
    // RFC 8216 4.3.4.2: a quoted value names a TYPE=CLOSED-CAPTIONS group of the same master.
    t.ok(groups.includes(cc[0]!.slice(1, -1)), `${id}: ${cc[0]} is a caption group`)
    t.equal(cc[1], 'NONE', `${id}: the enumerated NONE is kept as it was`)
  }
})
