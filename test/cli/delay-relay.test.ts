/**
 * The delaying relay of the namespace mode (src/cli/demo/delay-relay.ts) on loopback: bytes go
 * both ways intact and in order, each way held at least the one-way delay of the two sites,
 * the end of a stream is relayed, an unknown source and a blocked pair are refused, and a
 * block resets connections already open. Plus the namespace gateway (netns-gateway.ts) over a
 * Unix socket. Lower bounds on delay only: an added delay can only be longer on a busy machine.
 */
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { createServer as createHttpServer } from 'node:http'
import t, { type Test } from 'tap'
import { Agent, fetch } from 'undici'
import { DelayRelay, type RelayConfig } from '../../src/cli/demo/delay-relay.js'
import { createGateway } from '../../src/cli/demo/netns-gateway.js'
import { tempDir } from '../helpers/origin.js'

/** An echo server that upper-cases what it gets and ends when the client ends. */
async function echo(t: Test): Promise<Server> {
  const server = createServer((s) => {
    s.on('data', (b: Buffer) => s.write(b.toString().toUpperCase()))
    s.on('end', () => s.end())
    s.on('error', () => s.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((r) => server.close(r)))
  return server
}

const portOf = (s: Server | ReturnType<typeof createHttpServer>) => (s.address() as { port: number }).port

function config(target: number, over: Partial<RelayConfig> = {}): RelayConfig {
  return {
    routes: [
      {
        id: 'echo',
        site: 'far',
        listenHost: '127.0.0.1',
        listenPort: 0,
        targetHost: '127.0.0.1',
        targetPort: target,
      },
    ],
    sources: { '127.0.0.1': 'near' },
    siteAddress: { near: '127.0.0.1' },
    delayMs: { 'near|far': 40, 'far|near': 40, 'near|near': 0, 'far|far': 0 },
    jitterMs: 5,
    maxQueuedBytes: 1 << 20,
    ...over,
  }
}

async function startRelay(t: Test, cfg: RelayConfig): Promise<DelayRelay> {
  const relay = new DelayRelay(cfg)
  await relay.listen()
  t.teardown(() => relay.close())
  return relay
}

/** Connects, writes `parts` one by one, ends, and collects the whole answer. */
async function exchange(port: number, parts: string[]): Promise<{ text: string; ms: number }> {
  const s = connect(port, '127.0.0.1')
  await once(s, 'connect')
  const t0 = performance.now()
  let text = ''
  s.on('data', (b: Buffer) => (text += b.toString()))
  for (const p of parts) s.write(p)
  s.end()
  await once(s, 'close')
  return { text, ms: performance.now() - t0 }
}

t.test('relays both ways in order, each way held at least the one-way delay', async (t) => {
  const server = await echo(t)
  const relay = await startRelay(t, config(portOf(server)))
  const parts = Array.from({ length: 50 }, (_, i) => `chunk-${i};`)
  const { text, ms } = await exchange(relay.port('echo'), parts)
  t.equal(text, parts.join('').toUpperCase(), 'every byte, in order, and the end relayed')
  t.ok(ms >= 80, `a round trip takes at least twice the 40 ms one-way delay (took ${ms.toFixed(1)} ms)`)
  t.equal(relay.accepted.get('echo'), 1)
})

t.test('a large transfer through a small queue bound (the reader paused and resumed)', async (t) => {
  const server = await echo(t)
  const relay = await startRelay(t, config(portOf(server), { maxQueuedBytes: 4096, jitterMs: 0 }))
  const big = 'abcdefgh'.repeat(64 * 1024)
  const { text } = await exchange(relay.port('echo'), [big])
  t.equal(text.length, big.length)
  t.equal(text, big.toUpperCase())
})

t.test('an unknown source is refused; a block resets open connections and refuses new ones', async (t) => {
  const server = await echo(t)
  const stranger = await startRelay(t, config(portOf(server), { sources: {} }))
  const refused = connect(stranger.port('echo'), '127.0.0.1')
  await once(refused, 'close')
  t.equal(stranger.accepted.get('echo'), undefined, 'never relayed')

  const relay = await startRelay(t, config(portOf(server), { delayMs: {} }))
  const open = connect(relay.port('echo'), '127.0.0.1')
  await once(open, 'connect')
  open.write('x')
  await once(open, 'data')
  open.on('error', () => undefined)
  relay.block('127.0.0.1', 'echo')
  await once(open, 'close')
  t.pass('the open connection was reset')
  const after = connect(relay.port('echo'), '127.0.0.1')
  after.on('error', () => undefined)
  let got = ''
  after.on('data', (b: Buffer) => (got += b.toString()))
  after.write('y')
  await once(after, 'close')
  t.equal(got, '', 'a new one gets nothing')
  relay.unblock('127.0.0.1', 'echo')
  t.equal((await exchange(relay.port('echo'), ['z'])).text, 'Z', 'unblocked')
})

t.test('an upstream that refuses ends the client connection', async (t) => {
  const gone = createServer()
  gone.listen(0, '127.0.0.1')
  await once(gone, 'listening')
  const port = portOf(gone)
  await new Promise((r) => gone.close(r))
  const relay = await startRelay(t, config(port))
  const s: Socket = connect(relay.port('echo'), '127.0.0.1')
  s.on('error', () => undefined)
  await once(s, 'close')
  t.pass('closed')
})

t.test('the gateway forwards by Host from a Unix socket, and says why it cannot', async (t) => {
  const dir = await tempDir(t)
  const upstream = createHttpServer((req, res) => res.end(`${req.method} ${req.url}`))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => new Promise((r) => upstream.close(r)))
  const gateway = createGateway()
  const sock = join(dir, 'gw.sock')
  gateway.listen(sock)
  await once(gateway, 'listening')
  t.teardown(() => {
    gateway.closeAllConnections()
    return new Promise((r) => gateway.close(r))
  })
  const agent = new Agent({ connect: { socketPath: sock } })
  t.teardown(() => agent.close())
  const port = portOf(upstream)
  const res = await fetch(`http://127.0.0.1:${port}/steer?title=x`, {
    dispatcher: agent,
  })
  t.equal(res.status, 200)
  t.equal(await res.text(), 'GET /steer?title=x')
  await new Promise((r) => upstream.close(r))
  const dead = await fetch(`http://127.0.0.1:${port}/`, { dispatcher: agent })
  t.equal(dead.status, 502)
  t.equal(dead.headers.get('x-gateway-error'), 'ECONNREFUSED')
})
