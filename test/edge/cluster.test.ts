/**
 * `cdn edge --workers 2`, the built CLI end to end (run `npm run build` first): one upstream
 * fetch for a stampede spread over both workers, disk hits read by the workers from the
 * primary's files, a purge that reaches every worker's memory (and one that some workers did not
 * confirm: 503 naming them), merged /metrics, a killed worker replaced, the primary's admin and
 * 405 answers relayed, and a clean stop.
 * Requests go out on fresh connections (one undici Client each): the primary deals new
 * connections to its workers round-robin, so consecutive ones land on both. Connections
 * racing a worker's death are dealt again to the other worker, never left hanging (they did
 * with node:cluster's round-robin, which is why the primary deals connections itself).
 */
import { existsSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { brotliDecompressSync } from 'node:zlib'
import t from 'tap'
import { Client } from 'undici'
import { metricSum, until } from '../helpers/wait.js'
import {
  alive,
  childrenOf,
  connError,
  get,
  once,
  procStat,
  type Res,
  sockets,
  startCluster,
  status,
} from './cluster-process.js'
import { pattern, startUpstream, type TestUpstream } from './upstream-server.js'

const TOKEN = 'cluster-test-token'
const CC = 'public, max-age=600'
const upstreamTotal = (up: TestUpstream) => [...up.hits.values()].reduce((a, b) => a + b, 0)

function playlist(title: string): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:4', '#EXT-X-MAP:URI="init.mp4"']
  for (let i = 1; lines.join('\n').length < 2000; i++)
    lines.push('#EXTINF:4.000,', `/vod/${title}/v1/seg-${String(i).padStart(5, '0')}.m4s`)
  return `${lines.join('\n')}\n#EXT-X-ENDLIST\n`
}

const BIG = pattern(1_000_000, 1)
const STAMPEDE = '/vod/stampede/v1/seg-00001.m4s'
const PURGED = '/vod/purgeme/v1/seg-00001.m4s'
const LIST = '/vod/live/v1/index.m3u8'
const FORWARDED = '/vod/fwd/v1/seg-00001.m4s'
const LIST_BODY = playlist('live')

t.test('an edge with 2 workers (one primary, built CLI)', async (t) => {
  let purgeVersion = 0
  let stampeded: Promise<void> | undefined
  const forwarded: Record<string, unknown>[] = []
  const up = await startUpstream(t, {
    [FORWARDED]: (req, reply) => {
      forwarded.push({ ...req.headers })
      return reply.header('cache-control', CC).send('forwarded')
    },
    [STAMPEDE]: async (_req, reply) => {
      // Held until every client of the stampede is waiting on a fetch (see that test).
      await stampeded
      return reply.header('cache-control', CC).header('etag', '"stampede"').send(BIG)
    },
    [PURGED]: (_req, reply) => {
      purgeVersion++
      return reply
        .header('cache-control', CC)
        .header('etag', `"purge-v${purgeVersion}"`)
        .send(pattern(2048, 100 + purgeVersion))
    },
    [LIST]: (_req, reply) =>
      reply
        .header('cache-control', CC)
        .header('etag', '"live"')
        .header('content-type', 'application/vnd.apple.mpegurl')
        .send(LIST_BODY),
  })
  const c = await startCluster(t, up.url, ['--memory-size', '64MB', '--admin-token', TOKEN])

  await t.test('startup: 2 workers, named by the CLI and /status', async (t) => {
    t.match(c.line, /listening on http:\/\/127\.0\.0\.1:\d+ \(2 workers\), upstream /)
    const s = await status(c)
    t.equal(s.workers, 2, '/status workers')
    const encoded = await once(c.url, '/%73tatus')
    t.equal((JSON.parse(encoded.body.toString()) as { workers?: number }).workers, 2, '/%73tatus: the same')
    t.equal(s.tiers.memory.capacityBytes, 64e6, 'memory split, not multiplied')
    t.equal(childrenOf(c.pid).length, 2, 'two worker processes under the primary')
    t.equal(sockets(c.pid).length, 1, "the primary's unix socket exists")
  })

  await t.test('a stampede over both workers is one upstream fetch', async (t) => {
    const clients = Array.from({ length: 40 }, () => new Client(c.url, { pipelining: 1 }))
    t.teardown(() => Promise.all(clients.map((cl) => cl.close())))
    // The upstream answers once the 40 clients wait on at most one fetch per worker: at least 38
    // of them joined one (the metric adds up both workers and the primary).
    const coalesced = async () =>
      metricSum((await once(c.url, '/metrics')).body.toString(), 'cdn_edge_coalesced_waiters_total')
    const before = await coalesced()
    stampeded = until(async () => (await coalesced()) - before >= 38, 50)
    const results = await Promise.all(
      clients.map(async (cl) => {
        const r = await cl.request({ path: STAMPEDE, method: 'GET' })
        return {
          status: r.statusCode,
          xc: String(r.headers['x-cache']),
          body: Buffer.from(await r.body.arrayBuffer()),
        }
      }),
    )
    c.content += results.length
    t.equal(results.filter((r) => r.status === 200).length, 40, 'all 200')
    t.equal(results.filter((r) => r.body.equals(BIG)).length, 40, 'all byte-identical to the origin')
    const misses = results.filter((r) => r.xc === 'MISS').length
    t.ok(misses >= 1 && misses <= 2, `at most one MISS per worker (${misses})`)
    t.same(
      results.filter((r) => !['MISS', 'COALESCED', 'HIT-MEM', 'HIT-DISK'].includes(r.xc)).map((r) => r.xc),
      [],
    )
    t.equal(up.count(STAMPEDE), 1, 'the upstream saw one request')
  })

  await t.test('a purge reaches the memory of every worker', async (t) => {
    const base = (await status(c)).tiers.memory.objects
    const warm: string[] = []
    for (let i = 0; i < 12 && warm.slice(-2).join() !== 'HIT-MEM,HIT-MEM'; i++)
      warm.push((await get(c, PURGED)).headers['x-cache']!)
    t.same(warm.slice(-2), ['HIT-MEM', 'HIT-MEM'], `both workers hold it in memory (${warm.join(' ')})`)
    // /status is reused for a second (edge/cluster/host-ops.ts): wait for an answer made after
    // the warming, then one made after the purge.
    let held = 0
    const memoryObjects = async () => (held = (await status(c)).tiers.memory.objects)
    await until(async () => (await memoryObjects()) >= base + 2, 50)
    t.pass(`one copy in each worker (${held})`)
    t.equal(up.count(PURGED), 1)

    const denied = await once(c.url, '/admin/cache/vod/purgeme', { method: 'DELETE' })
    t.equal(denied.status, 401, 'no token, no purge')
    const purge = await once(c.url, '/admin/cache/vod/purgeme', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    t.equal(purge.status, 200)
    t.match(purge.headers['content-type'], /application\/json/)
    t.same(JSON.parse(purge.body.toString()), { title: 'purgeme', purged: 1 })
    const warmed = held
    await until(async () => (await memoryObjects()) === warmed - 2, 50)
    t.pass('gone from both workers')

    const after: Res[] = []
    for (let i = 0; i < 4; i++) after.push(await get(c, PURGED))
    const xc = after.map((r) => r.headers['x-cache'])
    t.equal(up.count(PURGED), 2, 'exactly one new upstream request')
    t.equal(xc[0], 'MISS', `first answer after the purge (${xc.join(' ')})`)
    t.not(xc[1], 'HIT-MEM', 'the other worker did not answer from its old copy')
    t.ok(['MISS', 'COALESCED', 'HIT-DISK'].includes(xc[1]!), `second answer: ${xc[1]}`)
    t.same(
      after.map((r) => r.headers.etag),
      after.map(() => '"purge-v2"'),
      'every answer is the new copy',
    )
    t.ok(after.every((r) => r.body.equals(pattern(2048, 102))))
    // The new copy's disk write commits after its answers went out (a loaded machine makes that
    // late): the next subtest lists the host disk tier, so it waits for it here.
    await until(async () => (await status(c)).tiers.disk.objects === 2, 50)
    t.pass('the new copy is on the host disk (beside the stampede object)')
  })

  await t.test("the primary's 405 and admin refusals reach the client", async (t) => {
    const post = await once(c.url, '/vod/live/v1/index.m3u8', { method: 'POST', body: 'x' })
    t.equal(post.status, 405)
    t.match(post.headers['content-type'], /application\/json/)
    t.equal(
      (JSON.parse(post.body.toString()) as { error: { code: string } }).error.code,
      'CDN_ERR_METHOD_NOT_ALLOWED',
    )
    t.equal(post.headers.allow, 'GET, HEAD')
    const admin = await once(c.url, '/admin/cache')
    t.equal(admin.status, 401)
    t.equal(
      (JSON.parse(admin.body.toString()) as { error: { code: string } }).error.code,
      'CDN_ERR_UNAUTHORIZED',
    )
    const ok = await once(c.url, '/admin/cache', { headers: { authorization: `Bearer ${TOKEN}` } })
    t.equal(ok.status, 200)
    const titles = (JSON.parse(ok.body.toString()) as { titles: { title: string }[] }).titles
    t.same(titles.map((x) => x.title).sort(), ['purgeme', 'stampede'], 'the host disk tier, not one worker')
    t.equal(up.hits.get('/vod/live/v1/index.m3u8'), undefined, 'nothing went upstream')
  })

  await t.test(
    'a miss through a worker and the primary carries one Via and the client address',
    async (t) => {
      const r = await once(c.url, FORWARDED, {
        headers: { 'x-forwarded-for': '203.0.113.9', 'x-custom': 'kept' },
      })
      c.content++
      t.equal(r.status, 200)
      t.equal(forwarded.length, 1)
      t.match(
        r.headers['cache-status'],
        /^edge;fwd=uri-miss;fwd-status=200;ttl=\d+;stored$/,
        'one member per edge, not per process',
      )
      t.match(forwarded[0], { via: '1.1 edge', 'x-forwarded-for': '127.0.0.1', 'x-custom': 'kept' })
    },
  )

  await t.test('/metrics adds up the workers', async (t) => {
    for (let i = 0; i < 3; i++) t.equal((await get(c, LIST)).body.toString(), LIST_BODY)
    // A /metrics answer is reused for a second (edge/cluster/host-ops.ts), and a worker counts a
    // request once it has sent it: read until one made after the last request (a count above the
    // requests made would never come down, and tap's timeout would end the wait).
    let text = ''
    await until(async () => {
      const m = await once(c.url, '/metrics')
      t.equal(m.status, 200)
      text = m.body.toString()
      return metricSum(text, 'cdn_edge_requests_total') >= c.content
    }, 50)
    t.equal(metricSum(text, 'cdn_edge_requests_total'), c.content, 'client requests, internal hops left out')
    t.equal(metricSum(text, 'cdn_edge_upstream_fetches_total'), upstreamTotal(up), 'upstream fetches')
  })

  await t.test('a worker killed with SIGKILL is replaced', async (t) => {
    const before = childrenOf(c.pid)
    t.equal(before.length, 2)
    const victim = before[0]!
    process.kill(victim, 'SIGKILL')
    // Connections that arrive while the primary has not yet seen the worker die: each is
    // answered or refused (one left hanging would hold this test until tap's timeout).
    const racing = await Promise.all(
      Array.from({ length: 4 }, () =>
        once(c.url, LIST).then(
          (r) => r.status === 200 && r.body.toString() === LIST_BODY,
          (err: unknown) => (connError(err) ? 'refused' : (err as { code?: string }).code),
        ),
      ),
    )
    t.same(
      racing.filter((r) => r !== true && r !== 'refused'),
      [],
      'connections racing the death: right answers or connection errors',
    )
    await until(() => procStat(victim)?.ppid !== c.pid)
    t.pass('the primary reaped the dead worker')

    let served = 0
    let refused = 0
    const wrong: string[] = []
    await until(async () => {
      try {
        const r = await get(c, LIST)
        if (r.status !== 200 || r.body.toString() !== LIST_BODY)
          wrong.push(`${r.status} ${r.headers['x-cache']}`)
        served++
        const now = childrenOf(c.pid)
        return now.length === 2 && !now.includes(victim) && (await status(c)).workers === 2
      } catch (err) {
        if (!connError(err)) throw err
        refused++
        return false
      }
    })
    t.pass(`2 workers again (served ${served}, connection errors ${refused})`)
    t.ok(served > 0, 'requests served meanwhile')
    t.same(wrong, [], 'every answer meanwhile was 200 with the right body')
    const now = childrenOf(c.pid)
    t.equal(now.filter((p) => !before.includes(p)).length, 1, 'one new worker process')
    for (let i = 0; i < 4; i++) {
      const r = await get(c, LIST)
      t.ok(r.status === 200 && r.body.toString() === LIST_BODY, `both workers serve (${i})`)
    }
  })

  await t.test('SIGTERM stops the primary and its workers', async (t) => {
    const workers = childrenOf(c.pid)
    const sock = sockets(c.pid)
    t.equal(workers.length, 2)
    c.proc.kill('SIGTERM')
    t.same(await c.exit, { code: 0, signal: null }, 'exit 0')
    t.match(c.stderr(), /SIGTERM, closing/)
    await until(() => workers.every((w) => !alive(w)))
    t.pass('no worker left')
    t.same(
      sock.filter((s) => existsSync(s)),
      [],
      'unix socket removed',
    )
  })
})

t.test('workers read disk hits from the primary files', async (t) => {
  const BIG_PATH = '/vod/disk/v1/seg-00001.m4s'
  const up = await startUpstream(t, {
    [BIG_PATH]: (_req, reply) => reply.header('cache-control', CC).header('etag', '"big"').send(BIG),
  })
  const c = await startCluster(t, up.url, ['--memory-size', '64KB'])
  const first = await get(c, BIG_PATH)
  t.equal(first.status, 200)
  t.equal(first.headers['x-cache'], 'MISS')
  t.ok(first.body.equals(BIG))
  await until(async () => (await status(c)).tiers.disk.objects === 1, 50)
  t.pass('on disk')
  const xc: string[] = []
  for (let i = 0; i < 6; i++) {
    const r = await get(c, BIG_PATH)
    t.ok(r.status === 200 && r.body.equals(BIG), `answer ${i} intact`)
    xc.push(r.headers['x-cache']!)
  }
  t.same(xc, Array(6).fill('HIT-DISK'), 'disk hits on both workers')
  t.equal(up.count(BIG_PATH), 1, 'no further upstream request')
  t.equal((await status(c)).tiers.memory.objects, 0, 'too big for either memory share')
  const admin = await once(c.url, '/admin/cache')
  t.equal(admin.status, 403, 'no admin token: the operator API is off, as in one process')
  t.equal((JSON.parse(admin.body.toString()) as { error: { code: string } }).error.code, 'CDN_ERR_FORBIDDEN')
  c.proc.kill('SIGINT')
  t.same(await c.exit, { code: 0, signal: null })
})

t.test('a purge some workers did not confirm is a 503 naming them', async (t) => {
  // Its own cluster, title and cache dir: 3 workers, where (test hook, edge/cluster/worker-main.ts)
  // worker 0 answers purges with an error and worker 2 never answers them; worker 1 is sound.
  const PATH = '/vod/unconfirmed/v1/seg-00001.m4s'
  const BODY = pattern(4096, 7)
  const up = await startUpstream(t, {
    [PATH]: (_req, reply) => reply.header('cache-control', CC).header('etag', '"u"').send(BODY),
  })
  const c = await startCluster(t, up.url, ['--memory-size', '64MB', '--admin-token', TOKEN], {
    workers: 3,
    env: { CDN_EDGE_TEST_PURGE_FAULTS: '0:fail, 2:drop' },
  })
  const auth = { authorization: `Bearer ${TOKEN}` }
  const first = await get(c, PATH)
  t.equal(first.status, 200)
  t.ok(first.body.equals(BODY))
  await until(async () => (await status(c)).tiers.disk.objects === 1, 50)
  t.pass('on disk')

  // Worker 2 holds the question until the primary gives up on it (ASK_TIMEOUT_MS).
  const purge = await once(c.url, '/admin/cache/vod/unconfirmed', { method: 'DELETE', headers: auth })
  t.equal(purge.status, 503, 'not 200: two workers did not confirm')
  t.match(purge.headers['content-type'], /application\/json/)
  const body = JSON.parse(purge.body.toString()) as {
    error: { code: string; message: string; title: string; purged: number; workers: number[] }
  }
  t.equal(body.error.code, 'CDN_ERR_PURGE_INCOMPLETE')
  t.same(body.error.workers, [0, 2], 'the workers that did not confirm, by slot number')
  t.equal(body.error.title, 'unconfirmed')
  t.equal(body.error.purged, 1, 'the disk tier did purge')
  t.match(body.error.message, /worker.*0, 2/)
  const text = purge.body.toString()
  t.notMatch(text, /127\.0\.0\.1|\.sock|\/tmp|pid/i, 'no address, path or pid in the body')
  // The primary logs each (its pid there, never in the answer); the pipe may deliver it later.
  const logged = (worker: number) =>
    new RegExp(`"worker":${worker},"pid":\\d+,"what":"purge".*did not confirm`).test(c.log())
  await until(() => logged(0) && logged(2))
  t.pass('the primary logged workers 0 and 2 with their pids')
  t.notOk(logged(1), 'worker 1 confirmed')

  const admin = await once(c.url, '/admin/cache', { headers: auth })
  const held = JSON.parse(admin.body.toString()) as {
    disk: { objects: number }
    memory: { objects: number }
    titles: { title: string; objects: number }[]
  }
  t.equal(held.disk.objects, 0, 'gone from the host disk tier')
  // The worker that served it may be one that did not purge: then its memory still holds it
  // (what the 503 says), and GET /admin/cache lists it.
  t.same(
    held.titles.filter((x) => x.objects !== held.memory.objects),
    [],
    'what is still listed is what a worker holds in memory',
  )
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null })
})

t.test('variants and encoded playlists through workers and their primary', async (t) => {
  const playlist = `#EXTM3U\n${'#EXTINF:4.000000,\nseg.m4s\n'.repeat(400)}#EXT-X-ENDLIST\n`
  const up = await startUpstream(t, {
    '/vod/vary/lang.json': (req, reply) =>
      reply
        .header('cache-control', CC)
        .header('vary', 'Accept-Language')
        .header('content-type', 'application/json')
        .send(JSON.stringify({ lang: req.headers['accept-language'] ?? 'none' })),
    '/vod/vary/index.m3u8': (_req, reply) =>
      reply
        .header('cache-control', CC)
        .header('content-type', 'application/vnd.apple.mpegurl')
        .send(playlist),
  })
  const c = await startCluster(t, up.url, [])
  // Each request on its own connection: dealt round-robin, so both workers answer both variants.
  for (let round = 0; round < 3; round++)
    for (const lang of ['it', 'en']) {
      const r = await once(c.url, '/vod/vary/lang.json', { headers: { 'accept-language': lang } })
      t.equal(JSON.parse(r.body.toString()).lang, lang, `round ${round}: ${lang} gets its own variant`)
    }
  t.equal(up.count('/vod/vary/lang.json'), 2, 'one upstream fetch per variant for the whole host')

  const first = await once(c.url, '/vod/vary/index.m3u8', { headers: { 'accept-encoding': 'br' } })
  t.match(first.headers.vary, /Accept-Encoding/)
  // A worker encodes it once its memory tier holds it.
  let br: Res | undefined
  await until(async () => {
    br = await once(c.url, '/vod/vary/index.m3u8', { headers: { 'accept-encoding': 'br' } })
    return br.headers['content-encoding'] === 'br'
  })
  t.equal(brotliDecompressSync(br!.body).toString(), playlist, 'a worker sends it brotli-encoded')
  t.equal(up.count('/vod/vary/index.m3u8'), 1)
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null })
})

t.test("a purge reaches a worker's large-object stream: no slice it had yet to reach is kept", async (t) => {
  // Its own cluster: objects above 4 KiB are kept as 4 KiB slices as they pass (a worker's own
  // stream, stored in its memory tier). The upstream holds the first stream after 5,000 bytes.
  const PATH = '/vod/streamed/v1/big.bin'
  const SIZE = 12_288
  let version = 1
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  let streams = 0
  const up = await startUpstream(t, {
    [PATH]: (req, reply) => {
      const body = Buffer.alloc(SIZE, version === 1 ? 0x41 : 0x42)
      reply.header('cache-control', CC).header('etag', `"v${version}"`).header('accept-ranges', 'bytes')
      const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
      if (m) {
        const end = Math.min(Number(m[2]), SIZE - 1)
        return reply
          .code(206)
          .header('content-range', `bytes ${m[1]}-${end}/${SIZE}`)
          .send(body.subarray(Number(m[1]), end + 1))
      }
      if (streams++ > 0) return reply.send(body)
      const out = new PassThrough()
      out.write(body.subarray(0, 5000))
      void held.then(() => out.end(body.subarray(5000)))
      return reply.header('content-length', String(SIZE)).send(out)
    },
  })
  const c = await startCluster(t, up.url, [
    '--memory-size',
    '64MB',
    '--max-object-size',
    '4KiB',
    '--large-slice-size',
    '4KiB',
    '--admin-token',
    TOKEN,
  ])
  const stream = get(c, PATH)
  await until(() => streams === 1)
  const purge = await once(c.url, '/admin/cache/vod/streamed', {
    method: 'DELETE',
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  t.equal(purge.status, 200, 'the purge answers while the stream runs')
  version = 2
  release()
  const whole = await stream
  t.equal(whole.body.length, SIZE, 'the client still gets the whole stream')
  const seen: string[] = []
  for (let i = 0; i < 6; i++) {
    const r = await once(c.url, PATH, { headers: { range: 'bytes=9000-9009' } })
    seen.push(`${r.status} ${r.body.toString()}`)
  }
  t.same(seen, Array(6).fill('206 BBBBBBBBBB'), 'every worker serves the bytes after the purge')
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null })
})
