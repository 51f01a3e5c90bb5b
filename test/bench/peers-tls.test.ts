/**
 * The TLS rows' harness of bench:peers on tiny runs: h2load's output and log read right, the
 * full-handshake client against a real HTTPS server that issues session tickets (every request
 * a new, full handshake, every answer checked), h2load against a real HTTP/2 server (skipped
 * where h2load is not installed), nginx's HTTPS server block rendered whole, and the table's
 * round-by-round ratios.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createSecureServer } from 'node:http2'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { checkAnswer, handshakeLoops, oneRequest, runHandshakes } from '../../bench/lib/handshakes.js'
import { logPercentiles, parseH2loadOutput, runH2load } from '../../bench/lib/h2load.js'
import type { Sample } from '../../bench/lib/measure.js'
import { onPath } from '../../bench/lib/tools.js'
import type { Row } from '../../bench/peers/matrix.js'
import { cellsFor, type ObjectId, tlsCells } from '../../bench/peers/matrix.js'
import { tlsServer } from '../../bench/peers/nginx.js'
import { roundRatios, spread, spreadTable, tlsTable } from '../../bench/peers/report.js'
import { testCerts } from '../helpers/tls.js'
import { repoPath } from '../helpers/repo.js'

const H2LOAD_OUT = `starting benchmark...
TLS Protocol: TLSv1.3
Cipher: TLS_AES_256_GCM_SHA384
Server Temp Key: X25519 253 bits
Application protocol: h2

finished in 2.01s, 120.00 req/s, 114.51MB/s
requests: 240 total, 250 started, 240 done, 238 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 236 2xx, 0 3xx, 2 4xx, 0 5xx
traffic: 229.02MB (240145590) total, 7.00KB (7170) headers (space savings 90.32%), 228.88MB (240000000) data
`

t.test("h2load's summary and per-request log", async (t) => {
  const s = parseH2loadOutput(H2LOAD_OUT)
  t.equal(s.durationS, 2.01)
  t.equal(s.succeeded, 238)
  t.equal(s.failed + s.errored + s.timeout, 2)
  t.equal(s.statusOther, 2)
  t.equal(s.bytes, 240145590)
  t.same(s.negotiated, {
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    keyExchange: 'X25519 253 bits',
    alpn: 'h2',
  })
  t.equal(parseH2loadOutput(H2LOAD_OUT.replace('2.01s', '950.5ms')).durationS, 0.9505)
  t.throws(() => parseH2loadOutput('starting benchmark...\n'), /no summary/)
  const log = Array.from({ length: 100 }, (_, i) => `1796256360407539\t200\t${(i + 1) * 1000}`).join('\n')
  t.same(logPercentiles(`${log}\n`), { p50Ms: 50, p99Ms: 99 })
})

t.test('an answer read to the close is whole only when its body matches Content-Length', async (t) => {
  const ok = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc')
  t.same(checkAnswer(ok), { status: 200, complete: true })
  t.same(checkAnswer(ok.subarray(0, ok.length - 1)), { status: 200, complete: false })
  t.same(checkAnswer(Buffer.from('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')), {
    status: 404,
    complete: true,
  })
  t.same(checkAnswer(Buffer.from('HTTP/1.1 200 OK\r\n')), { status: 0, complete: false })
})

/** An HTTPS server (HTTP/2 and HTTP/1.1) with session tickets on, counting full and resumed handshakes. */
async function server(t: Test) {
  const certs = await testCerts(t)
  const body = Buffer.alloc(1500, 'x')
  const counts = { full: 0, resumed: 0, requests: 0 }
  const srv = createSecureServer(
    { cert: readFileSync(certs.cert.cert), key: readFileSync(certs.cert.key), allowHTTP1: true },
    (req, res) => {
      counts.requests++
      if (req.url !== '/p.m3u8') return void res.writeHead(404, { 'content-length': '0' }).end()
      res.writeHead(200, { 'content-length': String(body.length) })
      res.end(body)
    },
  )
  srv.on('secureConnection', (s) => (s.isSessionReused() ? counts.resumed++ : counts.full++))
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())))
  return { base: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`, counts, body }
}

t.test('the handshake client makes a new full handshake for every request', async (t) => {
  const s = await server(t)
  const one = await oneRequest(new URL(`${s.base}/p.m3u8`))
  t.ok(one.ok)
  t.equal(one.status, 200)
  t.equal(one.negotiated.protocol, 'TLSv1.3')
  t.equal(one.negotiated.alpn, 'http/1.1')
  const loops = await handshakeLoops(new URL(`${s.base}/p.m3u8`), 2, 0.3)
  t.ok(loops.requests >= 2, `${loops.requests} requests`)
  t.equal(loops.errors, 0)
  t.equal(loops.non2xx, 0)
  t.equal(loops.resumed, 0)
  t.equal(loops.latenciesUs.length, loops.requests)
  const missing = await handshakeLoops(new URL(`${s.base}/nothing`), 1, 0.1)
  t.ok(missing.non2xx > 0, 'a 404 counts as non-2xx')
  const viaChildren = await runHandshakes({
    url: `${s.base}/p.m3u8`,
    connections: 3,
    durationS: 0.3,
    threads: 2,
  })
  t.ok(viaChildren.requests >= 2)
  t.equal(viaChildren.errors, 0)
  t.equal(viaChildren.resumed, 0)
  t.equal(viaChildren.generator, 'handshakes')
  // The server saw only full handshakes (it issued tickets; none was offered back).
  t.equal(s.counts.resumed, 0)
  t.equal(s.counts.full, s.counts.requests)
})

t.test(
  'h2load against a real HTTP/2 server',
  { skip: !onPath('h2load', process.env.PATH ?? '') && 'no h2load' },
  async (t) => {
    const s = await server(t)
    const r = await runH2load({ url: `${s.base}/p.m3u8`, connections: 2, durationS: 1, threads: 1 })
    t.ok(r.requests > 0)
    t.equal(r.errors, 0)
    t.equal(r.non2xx, 0)
    t.equal(r.negotiated?.alpn, 'h2')
    t.ok(r.bytes >= r.requests * s.body.length)
    t.ok(r.p50Ms > 0 && r.p99Ms >= r.p50Ms)
  },
)

t.test(
  'h2load at a fixed rate, over HTTP/1.1: the count asked for, paced',
  { skip: !onPath('h2load', process.env.PATH ?? '') && 'no h2load' },
  async (t) => {
    const protocols = new Set<string>()
    const server = createServer((req, res) => {
      protocols.add(req.httpVersion)
      res.end('x'.repeat(1000))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/s`
    const r = await runH2load({ url, connections: 2, durationS: 1, threads: 1, rate: 20 })
    t.equal(r.requests, 20, 'rate x duration requests')
    t.equal(r.errors + r.non2xx, 0)
    t.same([...protocols], ['1.1'], 'HTTP/1.1, as the rows beside it')
    // Paced: 10 a second per connection cannot all be done at once (a closed loop takes ms).
    t.ok(r.durationS >= 0.5, `spread over the second (${r.durationS} s)`)
  },
)

t.test(
  'fixed-rate cells: the segments at the highest connection count, beside the closed-loop ones',
  async (t) => {
    const o = {
      rounds: 1,
      durationS: 1,
      connections: [10, 100],
      playlistWithWrk: false,
      threads: 2,
      quietWaitMs: 0,
      objects: ['playlist', 'seg1m', 'seg4m'] as ObjectId[],
      noisyRetries: 0,
      warmupS: 0,
      handshakeConnections: 4,
    }
    const label = (c: { object: string; generator: string; connections: number; rate?: number }) =>
      `${c.object} ${c.generator} ${c.connections}${c.rate ? ` @${c.rate}` : ''}`
    t.notOk(
      cellsFor('disk', o).some((c) => c.rate),
      'none without --rate',
    )
    t.same(
      cellsFor('disk', { ...o, rate: 300 })
        .filter((c) => c.rate)
        .map(label),
      ['seg1m h2load 100 @300', 'seg4m h2load 100 @300'],
    )
    t.same(cellsFor('disk', { ...o, objects: ['seg4m'], rate: 300 }).map(label), [
      'seg4m wrk 10',
      'seg4m wrk 100',
      'seg4m h2load 100 @300',
    ])
  },
)

t.test("nginx's HTTPS server block renders every field", async (t) => {
  const conf = tlsServer(repoPath('bench/peers/nginx.conf.template'), {
    port: 8443,
    cert: '/c.pem',
    key: '/k.pem',
  })
  t.notMatch(conf, /\{\{/)
  t.match(conf, /listen 127\.0\.0\.1:8443 ssl http2/)
  t.match(conf, /ssl_certificate \/c\.pem;/)
  t.match(conf, /ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:/)
  t.match(conf, /ssl_session_tickets on;/)
  t.equal(tlsServer('/nowhere', undefined), '')
})

t.test('TLS cells and their table', async (t) => {
  const o = {
    rounds: 2,
    durationS: 1,
    connections: [10, 100],
    playlistWithWrk: true,
    threads: 2,
    quietWaitMs: 0,
    objects: ['playlist', 'seg1m'] as const,
    noisyRetries: 0,
    warmupS: 0,
    handshakeConnections: 4,
  }
  const cells = tlsCells({ ...o, objects: [...o.objects] })
  t.same(
    cells.map((c) => `${c.protocol} ${c.object} ${c.generator} ${c.connections}`),
    [
      'https1 playlist wrk 100',
      'h2 playlist h2load 100',
      'https1 seg1m wrk 100',
      'h2 seg1m h2load 100',
      'handshake playlist handshakes 4',
    ],
  )
  t.same(tlsCells({ ...o, objects: ['seg1m'] }).length, 2)
  const sample = (rps: number, cpu: number, load: number) =>
    ({ rps, mbps: rps / 10, cpuUsPerReq: cpu, loadAverage1m: load }) as unknown as Sample
  const row = (server: string, role: 'ours' | 'nginx', samples: Sample[]) =>
    ({
      tier: 'tls',
      object: 'playlist',
      objectBytes: 1447,
      generator: 'wrk',
      connections: 100,
      protocol: 'https1',
      role,
      server,
      samples,
      upstreamFetches: 0,
      summary: { errors: 0, non2xx: 0, foreignCpuShareMax: 0 },
    }) as unknown as Row
  const ours = [sample(800, 30, 2), sample(900, 20, 4)]
  const nginx = [sample(1000, 20, 3), sample(1000, 25, 5)]
  t.same(
    roundRatios(ours, nginx, (s) => s.rps),
    [0.8, 0.9],
  )
  t.equal(spread([3, 1, 2]), '1 / 2 / 3')
  const md = tlsTable([
    row('edge-tls', 'ours', ours),
    row('nginx-tls', 'nginx', nginx),
    { ...row('x', 'ours', ours), tier: 'memory' } as Row,
  ])
  t.match(md, /\| HTTPS\/1\.1 \| 1\.4 KB playlist \| wrk \| 100 \| edge-tls \| 800 \/ 850 \/ 900 \|/)
  t.match(md, /req\/s 0\.80x \/ 0\.85x \/ 0\.90x/)
  t.match(md, /0\.80x \/ 1\.15x \/ 1\.50x/)
  t.notMatch(md, /\| x \|/)
})

t.test('the spread table: each of our rows against the nginx of its cell, round by round', async (t) => {
  const sample = (rps: number, cpu: number, transfer: number, load: number) =>
    ({ rps, cpuUsPerReq: cpu, transferCpuUsPerReq: transfer, loadAverage1m: load }) as unknown as Sample
  const row = (server: string, role: 'ours' | 'nginx', samples: Sample[], object = 'seg4m') =>
    ({
      tier: 'disk',
      object,
      objectBytes: 4.2e6,
      generator: 'wrk',
      connections: 100,
      role,
      server,
      samples,
    }) as unknown as Row
  const md = spreadTable([
    row('edge-disk', 'ours', [sample(900, 700, 1600, 2), sample(1000, 800, 1700, 3)]),
    row('nginx', 'nginx', [sample(1000, 300, 2000, 2.5), sample(800, 400, 2000, 3.5)]),
    row('edge-disk', 'ours', [sample(1, 1, 1, 1)], 'seg1m'),
  ])
  t.match(
    md,
    /\| disk \| 4\.2 MB segment \| wrk \| 100 \| edge-disk \| 0\.90x \/ 1\.07x \/ 1\.25x \|/,
    'req/s, round by round',
  )
  t.match(
    md,
    /\| 2\.00x \/ 2\.17x \/ 2\.33x \| 0\.80x \/ 0\.82x \/ 0\.85x \| 2\.0 \/ 2\.5 \/ 3\.0 \|/,
    'both CPU ratios and the load',
  )
  t.notMatch(md, /1\.1 MB|seg1m/, 'a row without its nginx is left out')
  t.notMatch(md, /\| nginx \|/, 'nginx is the reference, not a row')
})
