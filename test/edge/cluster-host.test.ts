/**
 * A clustered edge (`cdn edge --workers 2`, the built CLI: run `npm run build` first) speaks for
 * the host as one process serving the same clients would: /metrics counts each client request,
 * miss and upstream fetch once (not again in the primary, which sees every worker's miss);
 * /status, GET /admin/cache and a purge count what the workers hold and saw; a body too large
 * for the primary is its 413 (or 401), not a 502 of the relay; a CMCD prefetch asked for on
 * another worker is settled, so prefetch does not stop at the budget.
 */
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { SERIES } from '../../edge/cluster/metrics.js'
import { startEdge } from '../helpers/edge.js'
import { metricSum, until } from '../helpers/wait.js'
import { exposition, fromPrimary, once, startCluster } from './cluster-process.js'
import { pattern, startUpstream } from './upstream-server.js'

const TOKEN = 'cluster-host-token'
const CC = 'public, max-age=600'
const SEGMENT = 4096
const seg = (i: number) => `/vod/host/v1/seg-${String(i).padStart(5, '0')}.m4s`
const PREFETCHED = 65536
const pf = (i: number) => `/vod/pf/v1/seg-${String(i).padStart(5, '0')}.m4s`

t.test('every series the edge registers has a source in a cluster', async (t) => {
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url })
  const names = ((await edge.app.edge.metrics.registry.getMetricsAsJSON()) as { name: string }[])
    .map((m) => m.name)
    .filter((n) => !/^cdn_edge_(process|nodejs)_/.test(n))
  t.same(
    names.filter((n) => SERIES[n] === undefined),
    [],
    'none is summed over the workers and the primary by default',
  )
})

t.test('a cluster counts and lists what one process does', async (t) => {
  const up = await startUpstream(t, {
    '/vod/host/v1/:seg': (req, reply) =>
      reply
        .header('cache-control', CC)
        .header('etag', `"${req.url}"`)
        .send(pattern(SEGMENT, Number(/(\d+)\.m4s/.exec(req.url)?.[1] ?? 0))),
  })
  // Memory tiers only: what the workers hold is nowhere else (not on the primary's disk).
  const args = ['--memory-size', '64MB', '--disk-size', '0', '--admin-token', TOKEN]
  const c = await startCluster(t, up.url, args)
  const single = await startEdge(t, { upstream: up.url, memorySize: 64e6, diskSize: 0, adminToken: TOKEN })
  const singleText = () => single.app.edge.metrics.render()
  // Scraped over the primary's own socket: through the public port the scrape is a client request.
  const clusterText = async () => (await fromPrimary(c, '/metrics')).body.toString()

  /**
   * Each segment twice on one connection (one worker: a miss, then a memory hit, in both
   * modes), the last one with CMCD naming the next, which is then asked for on that connection
   * once its prefetch has landed.
   */
  const sequence = async (base: string, text: () => Promise<string>): Promise<string[]> => {
    const seen: string[] = []
    for (let i = 1; i <= 3; i++) {
      const client = new Client(base, { pipelining: 1 })
      try {
        for (let k = 0; k < 2; k++) {
          const r = await client.request({ path: seg(i), method: 'GET' })
          await r.body.arrayBuffer()
          seen.push(`${r.statusCode} ${String(r.headers['x-cache'])}`)
        }
      } finally {
        await client.close()
      }
    }
    const client = new Client(base, { pipelining: 1 })
    try {
      const cmcd = encodeURIComponent(`nor="${seg(5).split('/').pop()}",ot=v`)
      const r = await client.request({ path: `${seg(4)}?CMCD=${cmcd}`, method: 'GET' })
      await r.body.arrayBuffer()
      seen.push(`${r.statusCode} ${String(r.headers['x-cache'])}`)
      await until(async () => metricSum(await text(), 'cdn_edge_prefetch_upstream_bytes_total') >= SEGMENT)
      const next = await client.request({ path: seg(5), method: 'GET' })
      await next.body.arrayBuffer()
      seen.push(`${next.statusCode} ${String(next.headers['x-cache'])}`)
    } finally {
      await client.close()
    }
    return seen
  }

  const one = await sequence(single.url, singleText)
  const host = await sequence(c.url, clusterText)
  t.same(host, one, 'the same answers')
  t.same(one, [
    '200 MISS',
    '200 HIT-MEM',
    '200 MISS',
    '200 HIT-MEM',
    '200 MISS',
    '200 HIT-MEM',
    '200 MISS',
    '200 HIT-MEM',
  ])
  // A worker counts a request once it has answered it: wait for an answer that has them all.
  await until(async () => metricSum(await clusterText(), 'cdn_edge_requests_total') >= one.length, 50)
  const mine = exposition(await singleText())
  const theirs = exposition(await clusterText())
  const upstreamFacing = new Set([
    'cdn_edge_upstream_fetches_total',
    'cdn_edge_upstream_fetch_seconds_count',
    'cdn_edge_upstream_inflight',
    'cdn_edge_upstream_up',
    'cdn_edge_upstream_down_total',
    'cdn_edge_upstream_resumes_total',
  ])
  const compared = (m: Map<string, number>) =>
    Object.fromEntries(
      [...m].filter(([series]) => {
        const name = series.slice(0, series.indexOf('{'))
        return SERIES[name] === 'workers' || upstreamFacing.has(name)
      }),
    )
  t.same(compared(theirs), compared(mine), 'client-facing and upstream series: the same values')
  t.equal(
    metricSum(await clusterText(), 'cdn_edge_misses_total', { cause: 'content' }),
    4,
    'one miss per segment asked for',
  )
  t.equal(up.count(seg(1)), 2, 'one upstream fetch per segment and mode')

  // /status: the workers' demand (miss causes, prefetch, CMCD) and the titles their memory holds.
  type Status = { titles: string[]; demand?: unknown; tiers: unknown; bytesServed: number }
  const singleStatus = JSON.parse((await once(single.url, '/status')).body.toString()) as Status
  // An answer made once every worker had counted what it served.
  let hostStatus: Status | undefined
  await until(async () => {
    hostStatus = JSON.parse((await fromPrimary(c, '/status')).body.toString()) as Status
    return hostStatus.bytesServed >= singleStatus.bytesServed
  }, 50)
  t.same(hostStatus!.demand, singleStatus.demand, '/status demand: the same counts')
  t.same(hostStatus!.titles, singleStatus.titles, '/status titles: those held in memory too')
  t.same(hostStatus!.tiers, singleStatus.tiers, '/status tiers')

  // GET /admin/cache and a purge: the workers' memory tiers, each key once.
  const auth = { authorization: `Bearer ${TOKEN}` }
  const cache = async (base: string) =>
    JSON.parse((await once(base, '/admin/cache', { headers: auth })).body.toString()) as unknown
  const listed = await cache(single.url)
  t.same(await cache(c.url), listed, 'GET /admin/cache: the same memory tier and titles')
  t.match(listed, { memory: { objects: 5 }, titles: [{ title: 'host', objects: 5 }] })
  const purge = async (base: string) =>
    (await once(base, '/admin/cache/vod/host', { method: 'DELETE', headers: auth })).body.toString()
  t.equal(await purge(c.url), await purge(single.url), "a purge counts the workers' objects, once each")
  t.same(await cache(c.url), await cache(single.url), 'nothing left in either')
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null }, 'stops cleanly')
})

/** One POST on its own connection: status and error code (or the connection's error). */
async function post(
  base: string,
  path: string,
  body: Buffer,
  opts: { chunked?: boolean; headers?: Record<string, string> } = {},
): Promise<string> {
  const client = new Client(base, { pipelining: 1 })
  try {
    const r = await client.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...opts.headers },
      // Chunked: a stream without a length, in 64 KiB pieces.
      body: opts.chunked
        ? Readable.from(
            (function* () {
              for (let i = 0; i < body.length; i += 65536) yield body.subarray(i, i + 65536)
            })(),
          )
        : body,
    })
    const text = await r.body.text()
    let code = ''
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? ''
    } catch {
      code = 'not JSON'
    }
    return `${r.statusCode} ${code}`
  } catch (err) {
    return `connection: ${(err as { code?: string }).code ?? String(err)}`
  } finally {
    await client.close().catch(() => undefined)
  }
}

t.test('a cluster with pass-through and a small prefetch budget, and one process alike', async (t) => {
  const up = await startUpstream(t, {
    '/vod/pf/v1/:seg': (req, reply) =>
      reply.header('cache-control', CC).send(pattern(PREFETCHED, req.url.length)),
  })
  // Prefetch bound by its bytes only (not by fills in flight, which a busy machine holds long):
  // four 64 KiB objects not yet asked for fill the budget.
  const prefetch = ['--prefetch-max-bytes', '250KB', '--prefetch-concurrency', '64']
  const args = ['--admin-token', TOKEN, '--pass-through', 'POST', ...prefetch]
  const c = await startCluster(t, up.url, args)
  const single = await startEdge(t, {
    upstream: up.url,
    adminToken: TOKEN,
    passThrough: ['POST'],
    prefetchMaxBytes: 250e3,
    prefetchConcurrency: 64,
  })

  await t.test("the primary's early answer to a body too large reaches the client", async (t) => {
    await earlyAnswers(t, c.url, single.url)
  })

  await t.test('CMCD prefetch goes on when the next request lands on the other worker', async (t) => {
    // Each segment on its own connection, naming the next: the primary deals them to the
    // workers in turn, so a worker's prefetch is asked for on the other one.
    const play = async (base: string) => {
      const answers: number[] = []
      for (let i = 1; i <= 12; i++) {
        const cmcd = encodeURIComponent(
          `nor="${pf(i + 1)
            .split('/')
            .pop()}",ot=v`,
        )
        answers.push((await once(base, `${pf(i)}?CMCD=${cmcd}`)).status)
      }
      return answers
    }
    t.same(await play(single.url), Array(12).fill(200))
    t.same(await play(c.url), Array(12).fill(200))
    const mine = single.app.edge.demand().prefetch
    t.match(mine, { started: 12, skipped: 0, wasted: 0 }, 'one process: every prefetch started')
    type Prefetch = typeof mine
    let theirs: Prefetch | undefined
    const hostPrefetch = async () => {
      const s = JSON.parse((await fromPrimary(c, '/status')).body.toString()) as {
        demand?: { prefetch: Prefetch }
      }
      return (theirs = s.demand?.prefetch)
    }
    // Every request's prefetch decided (started, skipped or held), counted by its worker.
    await until(async () => {
      const p = await hostPrefetch()
      return p !== undefined && p.started + p.skipped + p.held >= 12
    }, 50)
    t.match(theirs, { started: 12, skipped: 0 }, 'a cluster: every prefetch started, none over the budget')
    if (theirs!.skipped > 0) return
    // Each one asked for on the other worker settled by the worker that made it.
    await until(async () => {
      const p = (await hostPrefetch())!
      return p.used + p.late + p.wasted >= mine.used + mine.late + mine.wasted
    }, 50)
    t.equal(theirs!.used + theirs!.late, mine.used + mine.late, 'used (or late) as in one process')
    t.equal(theirs!.wasted, 0)
  })
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null }, 'stops cleanly')
})

async function earlyAnswers(t: Test, cluster: string, single: string): Promise<void> {
  const auth = { authorization: `Bearer ${TOKEN}` }
  // A JSON string of n bytes: within the bounds, prefill parses it (and refuses its shape).
  const json = (n: number) => Buffer.concat([Buffer.from('"'), Buffer.alloc(n - 2, 0x20), Buffer.from('"')])
  const cases: Array<[string, (base: string) => Promise<string>]> = [
    ['prefill, 1.2 MB', (b) => post(b, '/admin/prefill', json(1_200_000), { headers: auth })],
    [
      'prefill, 1.2 MB chunked',
      (b) => post(b, '/admin/prefill', json(1_200_000), { headers: auth, chunked: true }),
    ],
    ['prefill, 1.2 MB, no token', (b) => post(b, '/admin/prefill', json(1_200_000))],
    ['prefill, 1 MiB', (b) => post(b, '/admin/prefill', json(1 << 20), { headers: auth })],
    ['pass-through, 1.5 MB', (b) => post(b, '/vod/host/v1/beacon', json(1_500_000))],
    [
      'pass-through, 1.5 MB chunked',
      (b) => post(b, '/vod/host/v1/beacon', json(1_500_000), { chunked: true }),
    ],
  ]
  for (const [name, run] of cases) {
    const expected = await run(single)
    // The primary's answer raced the rest of the body: repeated, so that a lost one shows.
    const seen = new Set<string>()
    for (let i = 0; i < 6; i++) seen.add(await run(cluster))
    t.same([...seen], [expected], `${name}: ${expected}, as one process answers`)
  }
}
