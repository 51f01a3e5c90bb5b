/**
 * Large disk hits by sendfile(2) (edge/native/sendfile.ts, edge/http/pump-body.ts): a real edge,
 * a real upstream, the addon `npm run build` compiled. The bytes are the object's whatever the
 * client does (reads at once, stops reading until the socket is full, goes away), the connection
 * serves its next request, and TLS, HTTP/2 and --disk-sendfile false read and write instead.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { DiskStore } from '../../edge/cache/disk-store.js'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import { pumpBody } from '../../edge/http/pump-body.js'
import { sendfile, sendfileProblem } from '../../edge/native/sendfile.js'
import type { Clock } from '../../src/clock.js'
import { settled, startEdge, tempDir, type TestEdge } from '../helpers/edge.js'
import { agentFor, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'
import { put } from './cache/store-contract.js'
import { startUpstream } from './upstream-server.js'

/** Real time, wall clock ahead, so a file written now counts as settled (see disk-store `intact`). */
const aheadClock: Clock = { now: () => Date.now() + 60_000, monotonic: () => performance.now() }

function body(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * seed + (i >> 13)) & 0xff
  return b
}
/** Larger than what loopback's socket buffers hold, so a client that stops reading fills them. */
const HUGE = body(24 * 1024 * 1024 + 4321, 31)
const MID = body(1_100_000, 7)
const PATHS = { huge: '/vod/big/v1/1080p/seg-00001.m4s', mid: '/vod/big/v1/720p/seg-00001.m4s' }
const OBJECTS: Record<string, Buffer> = { [PATHS.huge]: HUGE, [PATHS.mid]: MID }

async function edgeWithObjects(tt: Test, over: object = {}, dispatcher?: Agent) {
  const origin = await startUpstream(
    tt,
    Object.fromEntries(
      Object.entries(OBJECTS).map(([path, b]) => [
        path,
        async (
          _req: unknown,
          reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown },
        ) => reply.header('cache-control', 'public, max-age=600').header('etag', `"${b.length}"`).send(b),
      ]),
    ),
  )
  const edge = await startEdge(tt, {
    upstream: origin.url,
    memorySize: 1_000_000,
    maxObjectSize: 64 * 1024 * 1024,
    clock: aheadClock,
    ...over,
  })
  const disk = (edge.app.edge.store as TieredStore).disk
  // A miss (to disk), then a whole read (verifies the file and keeps its fd): then it can stream.
  for (const path of Object.keys(OBJECTS)) {
    tt.equal((await get(edge, path, dispatcher)).headers['x-cache'], 'MISS')
    await settled(edge)
    tt.equal((await get(edge, path, dispatcher)).headers['x-cache'], 'HIT-DISK', `${path}: read whole once`)
  }
  return { edge, disk, origin }
}

async function get(edge: TestEdge | string, path: string, dispatcher?: Agent) {
  const base = typeof edge === 'string' ? edge : edge.url
  const r = await request(`${base}${path}`, dispatcher ? { dispatcher } : {})
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) }
}

/** Sends by sendfile, on the threadpool and on the event loop (resident pages). */
function sends(tier: { reads: { sendfile: number; sendfileLoop: number } }): number {
  return tier.reads.sendfile + tier.reads.sendfileLoop
}

/** A raw HTTP/1.1 connection: the test decides when it reads. */
function rawGet(url: string, path: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port) }, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Reads one response with a Content-Length off `s`: head and body. */
function readResponse(s: Socket): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buf.subarray(0, end).toString('latin1')
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1])
      if (buf.length - end - 4 < length) return
      s.off('data', onData)
      resolve({ head, body: buf.subarray(end + 4, end + 4 + length) })
    }
    s.on('data', onData)
    s.once('error', reject)
    s.resume()
  })
}

/** A real disk tier with the addon, its fds kept (8), files written now counted as settled. */
function sendfileStore(dir: string, over: { maxMaps?: number; loopChunk?: number } = {}): Promise<DiskStore> {
  return DiskStore.open({
    dir,
    maxBytes: 100_000_000,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs: 86_400_000,
    clock: aheadClock,
    sendfile: sendfile!,
    ...over,
  })
}

/**
 * A loopback TCP connection whose far end gives `onData` what arrives: a duplicate of the near
 * end's descriptor (closed on teardown), for sends straight to a socket.
 */
async function loopbackOut(t: Test, onData: (d: Buffer) => void): Promise<number> {
  const server = createTcpServer((sock) => sock.on('data', onData))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await new Promise((resolve) => client.once('connect', resolve))
  t.teardown(() => client.destroy())
  const out = sendfile!.dup((client as unknown as { _handle: { fd: number } })._handle.fd)
  t.teardown(() => sendfile!.close(out))
  return out
}

t.test('the addon is built and loads', async (t) => {
  t.equal(sendfileProblem, undefined, 'no problem reported')
  t.ok(sendfile, 'npm run build compiled it (CI has a C compiler)')
  t.equal(sendfile!.EAGAIN, 11)
  const fd = sendfile!.dup(0)
  t.ok(fd > 2, 'dup gives a new descriptor')
  sendfile!.close(fd)
  t.ok(sendfile!.dup(1_000_000) < 0, 'a bad descriptor is -errno, not a throw')
})

t.test('sendNow sends on the loop only what the page cache holds', async (t) => {
  const dir = tempDir(t)
  // A sparse file's holes were never read: none of its pages is in the page cache.
  const sparse = join(dir, 'sparse')
  const written = join(dir, 'written')
  const sparseFd = openSync(sparse, 'w+')
  ftruncateSync(sparseFd, 1 << 20)
  writeFileSync(written, MID)
  const writtenFd = openSync(written, 'r')
  t.teardown(() => [sparseFd, writtenFd].forEach((fd) => closeSync(fd)))
  const got: Buffer[] = []
  let received = 0
  let arrive: () => void = () => undefined
  const arrived = new Promise<void>((resolve) => (arrive = resolve))
  const out = await loopbackOut(t, (d) => {
    got.push(d)
    received += d.length
    if (received >= 256 * 1024) arrive()
  })
  t.equal(sendfile!.sendNow(out, sparseFd, 0, 128 * 1024), -sendfile!.ENODATA, 'not resident: nothing sent')
  t.equal(sendfile!.sendNow(out, writtenFd, 0, 128 * 1024), 128 * 1024, 'just written: resident, sent')
  t.equal(sendfile!.sendNow(out, writtenFd, 128 * 1024, 128 * 1024), 128 * 1024, 'from an offset')
  await arrived
  t.ok(Buffer.concat(got).equals(MID.subarray(0, 256 * 1024)), 'the bytes, in order')
  t.ok(sendfile!.sendNow(1_000_000, writtenFd, 0, 1) < 0, 'a bad socket is -errno, not a throw')
  // A kept mapping of the whole file checks residency in place of one made per send.
  const kept = sendfile!.map(writtenFd, MID.length)
  t.type(kept, 'object', 'the file is mapped')
  const map = kept as Exclude<typeof kept, number>
  const sparseMap = sendfile!.map(sparseFd, 1 << 20) as Exclude<typeof kept, number>
  t.equal(sendfile!.sendNow(out, sparseFd, 0, 4096, sparseMap), -sendfile!.ENODATA, 'kept: not resident')
  t.equal(sendfile!.sendNow(out, writtenFd, 256 * 1024, 4096, map), 4096, 'kept: resident, sent')
  t.equal(sendfile!.sendNow(out, writtenFd, MID.length - 10, 10, map), 10, 'kept: the last page')
  sendfile!.unmap(map)
  sendfile!.unmap(map)
  sendfile!.unmap(sparseMap)
  t.equal(sendfile!.sendNow(out, writtenFd, 0, 4096, map), 4096, 'unmapped (twice): mapped per send instead')
  t.ok((sendfile!.map(1_000_000, 4096) as number) < 0, 'a bad descriptor is -errno')
  t.ok((sendfile!.map(writtenFd, 0) as number) < 0, 'an empty file is not mapped')
})

t.test('files stay mapped for sends on the loop while open, at most maxMaps of them', async (t) => {
  const dir = tempDir(t)
  const store = await sendfileStore(dir, { maxMaps: 1 })
  let closed = false
  t.teardown(() => (closed ? undefined : store.close()))
  const out = await loopbackOut(t, () => undefined)
  const keys = ['/vod/m/v1/720p/seg-00001.m4s', '/vod/m/v1/720p/seg-00002.m4s']
  for (const [i, key] of keys.entries()) {
    t.ok(await put(store, key, MID), `${key}: stored`)
    t.ok(await store.get(key), `${key}: read whole once (verified, fd kept)`)
    const s = store.stream(key, 1, 1)!
    const loopBefore = store.reads.sendfileLoop
    t.equal(s.sendNow!(out, 0, 64 * 1024), 64 * 1024, `${key}: sent on the loop`)
    s.close()
    t.equal(store.reads.sendfileLoop, loopBefore + 1, `${key}: counted as a send on the loop`)
    t.equal(store.mapsKept, 1, i === 0 ? 'its file stays mapped' : 'at the bound: mapped per send instead')
  }
  await store.close()
  closed = true
  t.equal(store.mapsKept, 0, 'closing the fds unmaps their files')
})

t.test('sends on the loop ask for at most --disk-sendfile-max-chunk bytes each', async (t) => {
  for (const chunk of [64 * 1024, 256 * 1024]) {
    const store = await sendfileStore(tempDir(t), { loopChunk: chunk })
    t.teardown(() => store.close())
    const key = '/vod/big/v1/720p/seg-00001.m4s'
    t.ok(await put(store, key, MID), 'stored (just written: every page resident)')
    t.ok(await store.get(key), 'read whole once: verified, its fd kept')
    // The real stream, its loop sends recorded on their way to the real send.
    const asked: number[] = []
    const server = createServer((_req, res) => {
      const s = store.stream(key, 1, 1)!
      const sendNow = s.sendNow!
      res.writeHead(200, { 'content-length': String(s.length) })
      pumpBody(
        res,
        { ...s, sendNow: (out, off, count) => (asked.push(count), sendNow(out, off, count)) },
        1 << 20,
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const r = await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, '/')
    t.ok(r.body.equals(MID), `${chunk / 1024} KiB: every byte`)
    t.ok(asked.length > 0, `${chunk / 1024} KiB: sent on the loop (${asked.length} sends)`)
    t.ok(
      Math.max(...asked) <= chunk,
      `${chunk / 1024} KiB: no send asked for more (largest ${Math.max(...asked)})`,
    )
    t.equal(asked[0], chunk, `${chunk / 1024} KiB: the first send after the nudge asks for a whole chunk`)
  }
})

t.test('large disk hits go by sendfile, byte for byte, many at once', async (t) => {
  const { edge, disk, origin } = await edgeWithObjects(t)
  const before = sends(disk)
  const agent = new Agent({ connections: 1 })
  t.teardown(() => agent.close())
  // One connection: each response must leave it ready for the next (keep-alive).
  for (const path of [PATHS.mid, PATHS.huge, PATHS.mid]) {
    const r = await get(edge, path, agent)
    t.equal(r.status, 200)
    t.equal(r.headers['x-cache'], 'HIT-DISK')
    t.equal(r.headers['content-length'], String(OBJECTS[path]!.length))
    t.ok(r.body.equals(OBJECTS[path]!), `${path}: the object's bytes, on a reused connection`)
  }
  t.ok(sends(disk) >= 3, `sent by sendfile (${sends(disk) - before} sends)`)
  const many = await Promise.all(
    Array.from({ length: 12 }, (_, i) => get(edge, i % 2 ? PATHS.mid : PATHS.huge)),
  )
  t.ok(
    many.every((r, i) => r.body.equals(i % 2 ? MID : HUGE)),
    'twelve at once: every body is its object',
  )
  t.equal(origin.count(PATHS.huge), 1, 'one upstream fetch in all')
  await until(() => disk.pool.lentBytesHeld === 0)
  t.pass('every buffer lent back')
  t.equal(disk.stats().diskErrors, 0)
})

t.test('a client that stops reading fills the socket; the rest follows when it reads again', async (t) => {
  const { edge, disk } = await edgeWithObjects(t)
  const sent = sends(disk)
  const reads = disk.reads.sync + disk.reads.async
  const s = await rawGet(edge.url, PATHS.huge)
  t.teardown(() => s.destroy())
  s.pause()
  // The first chunk went through node (one read), then sendfile until the socket was full, then
  // the next chunk through node: a second read is the sign the socket filled up.
  await until(() => sends(disk) > sent && disk.reads.sync + disk.reads.async >= reads + 2)
  t.pass('the socket filled and the edge waits on node for room')
  const r = await readResponse(s)
  t.match(r.head, /^HTTP\/1.1 200/)
  t.ok(r.body.equals(HUGE), 'every byte, in order, across the waits')
  t.ok(sends(disk) >= sent + 2, 'sendfile went on after the wait')
  // The same connection answers again.
  s.write(`GET ${PATHS.mid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
  t.ok((await readResponse(s)).body.equals(MID), 'and the connection serves its next request')
})

t.test('a client that goes away mid-body: nothing held, the next client served', async (t) => {
  const { edge, disk } = await edgeWithObjects(t)
  const reads = disk.reads.sync + disk.reads.async
  const s = await rawGet(edge.url, PATHS.huge)
  s.pause()
  await until(() => disk.reads.sync + disk.reads.async >= reads + 2)
  s.destroy()
  await until(() => disk.pool.lentBytesHeld === 0)
  t.pass('the buffer came back')
  t.ok((await get(edge, PATHS.huge)).body.equals(HUGE), 'served whole after the abort')
  t.equal(disk.stats().diskErrors, 0, 'a client leaving is no disk error')
})

t.test('TLS, HTTP/2 and --disk-sendfile false read and write instead', async (t) => {
  const certs = await testCerts(t)
  const { edge, disk } = await edgeWithObjects(
    t,
    { tlsCert: [certs.cert.cert], tlsKey: [certs.cert.key], httpPort: 0 },
    agentFor(t, 'https1', certs.caPem),
  )
  // edgeWithObjects warmed over HTTPS (edge.url): no sendfile yet.
  t.equal(sends(disk), 0, 'HTTPS: no sendfile')
  for (const transport of ['https1', 'h2'] as const) {
    const r = await get(edge, PATHS.huge, agentFor(t, transport, certs.caPem))
    t.ok(r.body.equals(HUGE), `${transport}: the object`)
  }
  t.equal(sends(disk), 0, 'nor over HTTP/1.1 on TLS, nor HTTP/2')
  t.ok((await get(edge.httpUrl!, PATHS.huge)).body.equals(HUGE))
  t.ok(sends(disk) > 0, 'the plain listener of the same edge sends by sendfile')

  const off = await edgeWithObjects(t, { diskSendfile: false })
  t.ok((await get(off.edge, PATHS.mid)).body.equals(MID))
  t.ok((await get(off.edge, PATHS.huge)).body.equals(HUGE))
  t.equal(sends(off.disk), 0, '--disk-sendfile false: never')
  t.equal(off.disk.streamed, 1, 'below 2 MB read whole, as before; above, streamed in chunks')
})

t.test(
  'a socket node destroys while the first write waits: nothing goes to whatever took its number',
  async (t) => {
    // The real disk tier's stream, pumped by a bare node:http server, so the test can hold the
    // socket's buffers full before the response starts (a far client's small window does it).
    const dir = tempDir(t)
    const store = await sendfileStore(dir)
    t.teardown(() => store.close())
    const key = '/vod/big/v1/1080p/seg-00009.m4s'
    t.ok(await put(store, key, HUGE), 'stored')
    t.ok(await store.get(key), 'read whole once: verified, its fd kept')
    const filler = join(dir, 'filler')
    writeFileSync(filler, Buffer.alloc(32 * 1024 * 1024, 0x41))
    const fillFd = openSync(filler, 'r')
    t.teardown(() => closeSync(fillFd))
    const victim = join(dir, 'victim')
    const victims: number[] = []
    t.teardown(() => victims.forEach((fd) => closeSync(fd)))
    let sockFd = -1
    let pending = -1
    /** Sends made when the response closed (node destroyed the socket). */
    let atClose = -1
    const closed = new Promise<void>((resolve) => {
      const server = createServer((req, res) => {
        sockFd = (res.socket as unknown as { _handle: { fd: number } })._handle.fd
        // The kernel's buffers for this connection filled first, through a duplicate of our own.
        const fill = sendfile!.dup(sockFd)
        sendfile!.send(fill, fillFd, 0, 32 * 1024 * 1024, () => {
          sendfile!.close(fill)
          const s = store.stream(key, 1, 1)!
          res.writeHead(200, { 'content-length': String(s.length) })
          pumpBody(res, s, 1 << 20)
          pending = res.socket!.writableLength
          res.once('close', () => {
            atClose = sends(store)
            resolve()
          })
          // Once node has handed the write to libuv (its uncork runs on the next tick), where it waits.
          setImmediate(() => client.resetAndDestroy())
        })
      })
      // What the edge does when a client resets (answerClientError), then a file opened at once: it
      // takes the lowest free number, the socket's.
      server.on('clientError', (_err, socket) => {
        socket.destroy()
        for (let i = 0; i < 4 && victims.at(-1) !== sockFd; i++) victims.push(openSync(victim, 'w'))
      })
      t.teardown(() => server.close())
      let client: Socket
      server.listen(0, '127.0.0.1', () => {
        client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
          client.pause()
          client.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        })
        client.on('error', () => {})
      })
    })
    await closed
    t.ok(pending > 0, `the first write waited in node (${pending} bytes) when the client reset`)
    await until(() => store.pool.lentBytesHeld === 0)
    // (A send before the reset reached the server went to the connection itself: the kernel may
    // make room for the nudge first. What must never be is a send after node destroyed it.)
    t.equal(sends(store), atClose, 'no send after node destroyed the socket')
    t.ok(victims.includes(sockFd), `a file took the socket's number (${sockFd})`)
    t.equal(fstatSync(victims.at(-1)!).size, 0, 'and got none of the body')
  },
)
