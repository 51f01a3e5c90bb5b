import { spawn } from 'node:child_process'
import { readdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge, tempDir } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, startUpstream } from './upstream-server.js'
import { cli } from '../helpers/repo.js'

t.test('upstream down: cached objects served, uncached 502 fast, stale-if-error served stale', async (t) => {
  const clock = new ManualClock(Date.now())
  const up = await startUpstream(t, {
    '/seg': (_req, reply) => reply.header('cache-control', IMMUTABLE).send(pattern(50_000)),
    '/master': (_req, reply) =>
      reply
        .header('date', new Date(clock.now()).toUTCString())
        .header('cache-control', 'max-age=2, stale-if-error=3600')
        .send('#EXTM3U'),
  })
  const edge = await startEdge(t, {
    publicPath: ['/'],
    upstream: up.url,
    // The default connect and waiter timeouts: the closed upstream refuses at once, and a short
    // bound would only fail the first fetches where a busy machine delays their connect.
    clock,
  })
  await fetch(`${edge.url}/seg`).then((r) => r.arrayBuffer())
  await fetch(`${edge.url}/master`).then((r) => r.text())
  await up.app.close()
  clock.advance(10_000)
  const hit = await fetch(`${edge.url}/seg`)
  t.equal(hit.headers.get('x-cache'), 'HIT-MEM')
  t.ok(Buffer.from(await hit.arrayBuffer()).equals(pattern(50_000)))
  const miss = await fetch(`${edge.url}/other`)
  t.equal(miss.status, 502)
  const body = (await miss.json()) as { error: { code: string } }
  t.equal(body.error.code, 'CDN_ERR_UPSTREAM')
  const stale = await fetch(`${edge.url}/master`)
  t.equal(stale.status, 200)
  t.equal(stale.headers.get('x-cache'), 'STALE')
  t.equal(await stale.text(), '#EXTM3U')
})

t.test('an upstream that never answers: 504 JSON', async (t) => {
  const hang = createServer(() => undefined)
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    hang.closeAllConnections()
    hang.close()
  })
  const { port } = hang.address() as { port: number }
  const edge = await startEdge(t, {
    publicPath: ['/'],
    upstream: `http://127.0.0.1:${port}`,
    headersTimeout: 300,
  })
  const r = await fetch(`${edge.url}/slow`)
  t.equal(r.status, 504)
  t.equal(((await r.json()) as { error: { code: string } }).error.code, 'CDN_ERR_UPSTREAM_TIMEOUT')
})

t.test('a truncated body: nothing cached, waiters fail, the next request refetches', async (t) => {
  let requests = 0
  const full = pattern(200_000, 3)
  let edgeUrl = ''
  const server = createServer((req, res) => {
    requests++
    res.writeHead(200, { 'content-length': String(full.length), 'cache-control': IMMUTABLE })
    if (requests === 1) {
      // Half the body; once the four other clients have joined this fetch, the connection drops.
      res.write(full.subarray(0, 100_000), () =>
        until(
          async () => (await metricAt(`${edgeUrl}/metrics`, 'cdn_edge_coalesced_waiters_total')) >= 4,
        ).then(() => req.socket.destroy()),
      )
      return
    }
    res.end(full)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const edge = await startEdge(t, { publicPath: ['/'], upstream: `http://127.0.0.1:${port}` })
  edgeUrl = edge.url
  const results = await Promise.all(
    Array.from({ length: 5 }, () =>
      fetch(`${edge.url}/vod/x/v1/720p/seg-00001.m4s`).then(
        (r) =>
          r.arrayBuffer().then(
            (b) => `ok ${b.byteLength}`,
            () => 'body failed',
          ),
        () => 'request failed',
      ),
    ),
  )
  t.ok(
    results.every((r) => r !== `ok ${full.length}`),
    `no waiter saw a complete body: ${results.join(', ')}`,
  )
  t.equal(requests, 1, 'coalesced onto the one truncated fetch')
  t.equal(edge.app.edge.store.has('/vod/x/v1/720p/seg-00001.m4s'), false, 'nothing cached')
  const again = await fetch(`${edge.url}/vod/x/v1/720p/seg-00001.m4s`)
  t.equal(again.headers.get('x-cache'), 'MISS')
  t.ok(Buffer.from(await again.arrayBuffer()).equals(full))
  t.equal(requests, 2, 'refetched')
  const m = await fetch(`${edge.url}/metrics`).then((r) => r.text())
  t.match(m, /cdn_edge_upstream_fetches_total\{result="truncated"\} 1/)
})

t.test('disk tier unusable (the cache dir is a file): keeps serving, counts the error', async (t) => {
  const file = join(tempDir(t), 'a-file')
  writeFileSync(file, 'not a directory')
  const up = await startUpstream(t, {
    '/seg': (_req, reply) => reply.header('cache-control', IMMUTABLE).send(pattern(10_000)),
  })
  const edge = await startEdge(t, {
    publicPath: ['/'],
    upstream: up.url,
    cacheDir: file,
  })
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${edge.url}/seg`)
    t.equal(r.status, 200)
    t.ok(Buffer.from(await r.arrayBuffer()).equals(pattern(10_000)))
  }
  t.equal(up.count('/seg'), 1, 'served from memory')
  await settled(edge)
  const m = await fetch(`${edge.url}/metrics`).then((r) => r.text())
  t.match(m, /cdn_edge_disk_errors_total\{code="ENOTDIR"\} [1-9]/)
})

t.test('eviction keeps each tier under its byte bound', async (t) => {
  const up = await startUpstream(t, {
    '/o/:n': (_req, reply) => reply.header('cache-control', IMMUTABLE).send(pattern(100_000)),
  })
  const edge = await startEdge(t, {
    publicPath: ['/'],
    upstream: up.url,
    memorySize: 500_000,
    memoryObjectShare: 0.5,
    diskSize: 1_000_000,
  })
  for (let i = 0; i < 30; i++) await fetch(`${edge.url}/o/${i}`).then((r) => r.arrayBuffer())
  await settled(edge)
  const s = (await fetch(`${edge.url}/status`).then((r) => r.json())) as {
    tiers: Record<string, { bytes: number; capacityBytes: number; objects: number }>
  }
  for (const [name, tier] of Object.entries(s.tiers)) {
    t.ok(tier.bytes <= tier.capacityBytes, `${name}: ${tier.bytes} <= ${tier.capacityBytes}`)
    t.ok(tier.objects > 0 && tier.objects < 30, `${name} evicted: ${tier.objects}`)
  }
})

// The built CLI (`npm run build` first): a compiled edge starts in a fraction of a second,
// where one run through the test's TypeScript loader compiles the whole edge again.

function spawnEdge(t: Test, args: string[]) {
  const proc = spawn(process.execPath, [cli, 'edge', '--port', '0', '--host', '127.0.0.1', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL')
  })
  const url = new Promise<string>((resolve, reject) => {
    let err = ''
    proc.stderr!.on('data', (d) => {
      err += d
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)
      if (m) resolve(m[1]!)
    })
    proc.once('exit', (code) => reject(new Error(`edge exited ${code}:\n${err}`)))
  })
  return { proc, url }
}

t.test('SIGKILL while writing, then restart: every object served is byte-identical', async (t) => {
  const cacheDir = tempDir(t)
  const objects = Array.from({ length: 6 }, (_, i) => pattern(400_000, 10 + i))
  let slow = true
  // Objects 3-5 stop half-way until the edge is killed, so the kill lands while they are written.
  let releaseHeld!: () => void
  const held = new Promise<void>((r) => (releaseHeld = r))
  const server = createServer((req, res) => {
    const n = Number(/seg-0000(\d)/.exec(req.url ?? '')?.[1] ?? -1)
    const body = objects[n]
    if (!body) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-length': String(body.length), 'cache-control': IMMUTABLE })
    if (!slow || n < 3) {
      res.end(body)
      return
    }
    res.write(body.subarray(0, body.length / 2))
    void held.then(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const upstream = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const config = [
    '--upstream',
    upstream,
    '--cache-dir',
    cacheDir,
    '--memory-size',
    '64MB',
    '--disk-size',
    '256MB',
  ]
  const first = spawnEdge(t, config)
  const url1 = await first.url
  const path = (n: number) => `/vod/k/v1/720p/seg-0000${n}.m4s`
  for (let n = 0; n < 3; n++) await fetch(url1 + path(n)).then((r) => r.arrayBuffer())
  // Objects 0-2 committed: their files are in place under their final names.
  await until(() => countFiles(cacheDir, (n) => /^[0-9a-f]{64}$/.test(n)) === 3)
  const pending = [3, 4, 5].map((n) =>
    fetch(url1 + path(n))
      .then((r) => r.arrayBuffer())
      .catch(() => undefined),
  )
  // The edge has written part of each held object to its temp file.
  await until(() => countFiles(cacheDir, (n) => n.endsWith('.tmp')) === 3)
  first.proc.kill('SIGKILL')
  await Promise.all(pending)
  releaseHeld()
  slow = false
  t.equal(
    countFiles(cacheDir, (n) => n.endsWith('.tmp')),
    3,
    'killed mid-write: three temp files left',
  )

  const second = spawnEdge(t, config)
  const url2 = await second.url
  t.equal(
    countFiles(cacheDir, (n) => n.endsWith('.tmp')),
    0,
    'temp files removed at start',
  )
  for (let n = 0; n < 6; n++) {
    const r = await fetch(url2 + path(n))
    const body = Buffer.from(await r.arrayBuffer())
    t.ok(body.equals(objects[n]!), `object ${n} byte-identical (${r.headers.get('x-cache')})`)
    if (n < 3) t.equal(r.headers.get('x-cache'), 'HIT-DISK', `object ${n} kept on disk across the restart`)
  }
  second.proc.kill('SIGTERM')
})

function countFiles(dir: string, pred: (name: string) => boolean): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && pred(e.name)) n++
  return n
}
