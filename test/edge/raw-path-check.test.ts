/**
 * The raw hit path's start-up self-check (edge/http/raw-hits.ts finds node's own http connection
 * listener by its function name). On the running Node it must find it, so a plain hit is really
 * answered raw; when node's http is not as expected (simulated here by wrapping that listener,
 * as a future Node might), the edge logs one warning with a stable code and serves every
 * request through node's http, with the same answers.
 */
import http from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { Client, request } from 'undici'
import { edgeConfig } from '../../edge/config/validate.js'
import { nodeConnectionListener } from '../../edge/http/raw-hits.js'
import { startEdge } from '../../edge/main.js'
import { tempDir } from '../helpers/edge.js'
import { startUpstream } from './upstream-server.js'

const PATH = '/vod/show/v1/index.m3u8'
const BODY = '#EXTM3U\n#EXT-X-VERSION:7\n'

/** An edge whose warn-level log lines are collected, in front of a one-object upstream. */
async function edgeWithLog(t: Test) {
  const origin = await startUpstream(t, {
    [PATH]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
  })
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      done()
    },
  })
  const config = edgeConfig({
    upstream: [origin.url],
    cacheDir: tempDir(t),
    port: 0,
    host: '127.0.0.1',
    memorySize: 16e6,
    diskSize: 64e6,
  })
  const { app, url } = await startEdge(config, { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  // A miss, then the commit it stands for, so the next request is a fresh memory hit.
  await (await request(url + PATH)).body.text()
  await app.edge.flights.settled('show')
  return { app, url, lines, origin }
}

t.test('on this Node the self-check finds node http as expected', async (t) => {
  const server = http.createServer()
  const found = nodeConnectionListener(server)
  t.notOk('problem' in found, `node ${process.version}: ${'problem' in found ? found.problem : 'ok'}`)
})

t.test('the self-check names what is not as expected', async (t) => {
  const server = http.createServer()
  const own = server.listeners('connection')[0] as (s: unknown) => void
  server.removeAllListeners('connection')
  t.match(nodeConnectionListener(server), { problem: /found 0/ })
  server.on('connection', own)
  server.on('connection', own)
  t.match(nodeConnectionListener(server), { problem: /found 2/ })
})

t.test('a plain hit is answered by the raw path on this Node', async (t) => {
  const { app, url, lines, origin } = await edgeWithLog(t)
  t.ok(app.edge.raw, 'the raw path is on')
  const before = app.edge.raw!.answered
  // A new connection: the miss's connection was handed to node's http for good.
  const client = new Client(url)
  t.teardown(() => client.close())
  const hit = await client.request({ path: PATH, method: 'GET' })
  t.equal(await hit.body.text(), BODY)
  t.equal(hit.headers['x-cache'], 'HIT-MEM')
  t.equal(app.edge.raw!.answered, before + 1, 'answered by the raw path, not node http')
  t.equal(origin.count(PATH), 1)
  t.same(
    lines.filter((l) => l.code === 'CDN_WARN_RAW_HITS_OFF'),
    [],
    'no fallback warning',
  )
})

t.test('node http not as expected: one warning, every request through node http', async (t) => {
  // Simulates a Node whose http server wraps its connection listener under another name.
  const original = http.createServer
  const wrapping = ((...args: Parameters<typeof original>) => {
    const server = original(...args)
    const own = server.listeners('connection')[0] as (this: http.Server, s: unknown) => void
    server.removeAllListeners('connection')
    server.on('connection', function wrapped(this: http.Server, socket) {
      own.call(this, socket)
    })
    return server
  }) as typeof original
  http.createServer = wrapping
  syncBuiltinESMExports()
  t.teardown(() => {
    http.createServer = original
    syncBuiltinESMExports()
  })

  const { app, url, lines, origin } = await edgeWithLog(t)
  t.equal(app.edge.raw, undefined, 'the raw path is off')
  const warned = lines.filter((l) => l.code === 'CDN_WARN_RAW_HITS_OFF')
  t.equal(warned.length, 1, 'one warning with a stable code')
  t.match(warned[0], { level: 40, problem: /connectionListener/ })
  for (let i = 0; i < 3; i++) {
    const hit = await request(url + PATH)
    t.equal(await hit.body.text(), BODY)
    t.equal(hit.headers['x-cache'], 'HIT-MEM', 'hits still served from memory, by node http')
  }
  t.equal(origin.count(PATH), 1)
})
