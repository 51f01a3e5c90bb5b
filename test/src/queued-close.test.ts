/**
 * A response queued behind another on its connection (HTTP/1.1 pipelining) gets its 'close' when
 * the connection ends before its turn (src/http/one-answer.ts trackRequest): Node 20 never emits
 * it, and what waits for it (a lent buffer, a file held, bytes reserved in flight) waited forever.
 * Run on both CI legs: on Node 24, where node emits it itself, it must still come once.
 */
import { createServer, type ServerResponse } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import t from 'tap'
import { trackRequest } from '../../src/http/one-answer.js'

t.test('a queued response closes once when its connection ends', async (t) => {
  const closes = new Map<string, number>()
  const responses = new Map<string, ServerResponse>()
  const bothClosed = new Promise<void>((resolve) => {
    const server = createServer((req, res) => {
      trackRequest(req, res)
      const path = req.url!
      responses.set(path, res)
      res.on('close', () => {
        closes.set(path, (closes.get(path) ?? 0) + 1)
        if (closes.size === 2) resolve()
      })
      // Neither answer ends: the first holds the connection, the second waits its turn.
      res.writeHead(200, { 'content-length': '10' })
      res.write('x')
      if (path === '/2') client.destroy()
    })
    t.teardown(() => server.close())
    let client: ReturnType<typeof connect>
    server.listen(0, '127.0.0.1', () => {
      client = connect((server.address() as AddressInfo).port, '127.0.0.1', () =>
        client.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n'),
      )
      client.on('error', () => {})
    })
  })
  await bothClosed
  t.equal(responses.get('/2')!.socket, null, 'the second never had its turn on the socket')
  t.ok(responses.get('/2')!.destroyed, 'and is destroyed')
  // One more turn of the loop: a second 'close' (ours after node's) would show by now.
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(Object.fromEntries(closes), { '/1': 1, '/2': 1 }, "each response's 'close' came once")
})

t.test('a deep pipeline: every queued response closes once, one listener on the connection', async (t) => {
  const n = 30
  const closes = new Map<string, number>()
  let listeners = -1
  const allClosed = new Promise<void>((resolve) => {
    const server = createServer((req, res) => {
      trackRequest(req, res)
      const path = req.url!
      res.on('close', () => {
        closes.set(path, (closes.get(path) ?? 0) + 1)
        if (closes.size === n) resolve()
      })
      res.writeHead(200, { 'content-length': '10' })
      res.write('x')
      if (path === `/${n}`) {
        listeners = req.socket.listenerCount('close')
        client.destroy()
      }
    })
    t.teardown(() => server.close())
    let client: ReturnType<typeof connect>
    server.listen(0, '127.0.0.1', () => {
      client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
        let all = ''
        for (let i = 1; i <= n; i++) all += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`
        client.write(all)
      })
      client.on('error', () => {})
    })
  })
  await allClosed
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(closes.size, n)
  t.ok(
    [...closes.values()].every((c) => c === 1),
    "each response's 'close' came once",
  )
  t.ok(listeners >= 0 && listeners < 10, `close listeners on the connection: ${listeners} (node warns at 11)`)
})
