/**
 * Disk-hit event-loop delay (`npm run bench:disk-delay [-- --quick] [-- --rounds N --duration S]`,
 * issue 13): does a disk hit ever stall the event loop, and what does each read policy cost per hit?
 *
 * One edge process per read policy (built dist, `--memory-size 0`: every hit is HIT-DISK), both
 * filled from an in-process upstream with the same objects, then loaded in turn with autocannon
 * (bounded in time and in requests), cycling over the objects of one size:
 *   policies: `old` = `--disk-sync-read-max 1GB` (any file read in the last 5 s is read on the
 *             event loop, the policy before this change), `new` = the default (64 KiB);
 *   sizes:    16 KiB (both read hot files on the loop), 512 KiB (old: on the loop when hot; new:
 *             threadpool), 3 MiB (streamed in 256 KiB chunks: old: chunks on the loop when hot);
 *   cache:    warm (every object in the page cache), and dropped (`sync; echo 3 >
 *             /proc/sys/vm/drop_caches` before the run and every DROP_EVERY_MS during it, as root:
 *             a file the edge read a second ago is no longer in memory, as under memory pressure).
 * Per run: requests/s, latency p99, the edge's `cdn_edge_event_loop_delay_seconds` p99 and max
 * over the run (its /metrics is scraped before and after: the gauge covers the window between),
 * the edge's CPU per request (utime+stime from /proc) and its share of reads done on the loop
 * (`cdn_edge_disk_reads_total{mode}`). Rounds interleave the policies (order flipped each round).
 * Writes bench/results/disk-delay.{json,md}.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchArgs, numberArg } from '../lib/args.js'
import { type AutocannonStep, runAutocannon } from '../lib/autocannon.js'
import { machineBusySeconds, selfAndChildrenCpuSeconds, treeCpuSeconds } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, runCommand, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { interleave } from '../lib/rounds.js'
import { median } from '../lib/stats.js'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'

const USAGE = `Usage: npm run bench:disk-delay -- [flags]
  --quick            1 round of 3 s runs instead of 2 rounds of 6 s (default: off)
  --rounds N         rounds, each running every policy, size and cache state (default: 2, quick 1)
  --duration S       seconds per run (default: 6, quick 3)
  --connections N    autocannon connections per run (default: 20)
  -h, --help         print this and exit`
const args = benchArgs(USAGE, {
  options: {
    quick: { type: 'boolean' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
  },
})
const quick = args.quick === true
const ROUNDS = numberArg(args.rounds, '--rounds', quick ? 1 : 2, { integer: true, min: 1 })
const DURATION_S = numberArg(args.duration, '--duration', quick ? 3 : 6, { min: 0 })
const CONNECTIONS = numberArg(args.connections, '--connections', 20, { integer: true, min: 1 })
/** Requests per run at most (autocannon's `amount`), beside the time bound. */
const MAX_REQUESTS = 200_000
const DROP_EVERY_MS = 1000
const root = repoRoot(import.meta.url)

const SIZES = [
  { name: '16 KiB', bytes: 16 * 1024, count: 200 },
  { name: '512 KiB', bytes: 512 * 1024, count: 200 },
  { name: '3 MiB (streamed)', bytes: 3 * 1024 * 1024, count: 60 },
] as const
const POLICIES = { old: '1GB', new: '64KiB' } as const
type Policy = keyof typeof POLICIES
type Cache = 'warm' | 'dropped'

const paths = (size: (typeof SIZES)[number]) =>
  Array.from({ length: size.count }, (_, i) => `/vod/d${size.bytes}/v1/seg-${String(i).padStart(5, '0')}.m4s`)
const bodies = new Map(SIZES.map((s) => [s.bytes, Buffer.alloc(s.bytes, s.bytes & 0xff)]))

const upstream = createServer((req, res) => {
  const size = Number(/^\/vod\/d(\d+)\//.exec(req.url ?? '')?.[1])
  const body = bodies.get(size)
  if (!body) return res.writeHead(404).end()
  res.writeHead(200, {
    'content-length': body.length,
    'cache-control': 'public, max-age=31536000, immutable',
    'content-type': 'video/iso.segment',
    etag: `"${size}"`,
  })
  res.end(body)
})

interface Edge {
  policy: Policy
  url: string
  pid: number
  stop(): Promise<void>
}

async function startEdge(policy: Policy, upstreamUrl: string): Promise<Edge> {
  const port = await freePort()
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-disk-delay-'))
  const child = await startProcess({
    name: `edge-${policy}`,
    cmd: process.execPath,
    args: [
      ...NODE_FLAGS,
      join(root, 'dist/src/cli/main.js'),
      'edge',
      ...['--port', String(port), '--upstream', upstreamUrl, '--cache-dir', cacheDir],
      ...['--memory-size', '0', '--disk-size', '4GB', '--log-level', 'silent'],
      ...['--disk-sync-read-max', POLICIES[policy]],
    ],
    readyUrl: `http://127.0.0.1:${port}/healthz`,
  })
  return {
    policy,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: async () => {
      await child.stop(3000)
      rmSync(cacheDir, { recursive: true, force: true })
    },
  }
}

/** Every object fetched once (a miss), until the edge's disk holds them all, then read once more (verified fds). */
async function fill(edge: Edge): Promise<void> {
  const all = SIZES.flatMap(paths)
  for (const p of all) await (await fetch(edge.url + p)).arrayBuffer()
  for (let i = 0; ; i++) {
    const s = (await (await fetch(`${edge.url}/status`)).json()) as { tiers: { disk: { objects: number } } }
    if (s.tiers.disk.objects === all.length) break
    if (i > 600) throw new Error(`${edge.policy}: ${s.tiers.disk.objects} of ${all.length} objects on disk`)
    await new Promise((r) => setTimeout(r, 100))
  }
  for (const p of all) {
    const r = await fetch(edge.url + p)
    await r.arrayBuffer()
    if (r.headers.get('x-cache') !== 'HIT-DISK')
      throw new Error(`${edge.policy} ${p}: ${r.headers.get('x-cache')}`)
  }
}

async function metrics(
  edge: Edge,
): Promise<{ p99: number; max: number; sync: number; async: number; sendPool: number; sendLoop: number }> {
  const text = await (await fetch(`${edge.url}/metrics`)).text()
  // A counter not yet moved has no line: 0.
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0)
  return {
    p99: value(/^cdn_edge_event_loop_delay_seconds\{stat="p99"\} (\S+)$/m),
    max: value(/^cdn_edge_event_loop_delay_seconds\{stat="max"\} (\S+)$/m),
    sync: value(/^cdn_edge_disk_reads_total\{mode="sync"\} (\S+)$/m),
    async: value(/^cdn_edge_disk_reads_total\{mode="async"\} (\S+)$/m),
    sendPool: value(/^cdn_edge_disk_reads_total\{mode="sendfile"\} (\S+)$/m),
    sendLoop: value(/^cdn_edge_disk_reads_total\{mode="sendfile_loop"\} (\S+)$/m),
  }
}

async function dropCaches(): Promise<boolean> {
  const r = await runCommand('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], 30_000)
  return r.code === 0
}

interface Sample {
  size: string
  cache: Cache
  policy: Policy
  round: number
  requests: number
  rps: number
  p99Ms: number
  errors: number
  loopP99Ms: number
  loopMaxMs: number
  cpuUsPerReq: number
  syncShare: number
  /** Share of sendfile(2) sends made on the event loop (pages resident), NaN without sends. */
  sendLoopShare: number
  /** Share of the machine (all cores) taken by other processes than the edge and this one. */
  foreignCpuShare: number
  drops: number
}

async function run(edge: Edge, size: (typeof SIZES)[number], cache: Cache, round: number): Promise<Sample> {
  const list = paths(size)
  let next = 0
  const requests: AutocannonStep[] = [
    { method: 'GET', setupRequest: (req) => ({ ...req, path: list[next++ % list.length] }) },
  ]
  let drops = 0
  let dropping: NodeJS.Timeout | undefined
  if (cache === 'dropped') {
    await dropCaches()
    drops++
    let busy = false
    dropping = setInterval(() => {
      if (busy) return
      busy = true
      void dropCaches().then(() => {
        drops++
        busy = false
      })
    }, DROP_EVERY_MS)
  }
  const before = await metrics(edge)
  const cpu0 = treeCpuSeconds(edge.pid)
  const gen0 = selfAndChildrenCpuSeconds()
  const busy0 = machineBusySeconds()
  const t0 = performance.now()
  const r = await runAutocannon({
    url: edge.url,
    connections: CONNECTIONS,
    durationS: DURATION_S,
    requests,
    maxRequests: MAX_REQUESTS,
  })
  const cpu = treeCpuSeconds(edge.pid) - cpu0
  const wallS = (performance.now() - t0) / 1000
  const foreign = machineBusySeconds() - busy0 - cpu - (selfAndChildrenCpuSeconds() - gen0)
  clearInterval(dropping)
  const after = await metrics(edge)
  const reads = after.sync - before.sync + (after.async - before.async)
  const sends = after.sendLoop - before.sendLoop + (after.sendPool - before.sendPool)
  const s: Sample = {
    size: size.name,
    cache,
    policy: edge.policy,
    round,
    requests: r.requests,
    rps: r.rps,
    p99Ms: r.p99Ms,
    errors: r.errors + r.non2xx,
    loopP99Ms: after.p99 * 1000,
    loopMaxMs: after.max * 1000,
    cpuUsPerReq: r.requests ? (cpu * 1e6) / r.requests : Number.NaN,
    syncShare: reads ? (after.sync - before.sync) / reads : Number.NaN,
    sendLoopShare: sends ? (after.sendLoop - before.sendLoop) / sends : Number.NaN,
    foreignCpuShare: Math.max(0, foreign / (wallS * cpus().length)),
    drops,
  }
  process.stderr.write(
    `${s.size} ${cache} ${s.policy}: ${fmt(s.rps)} req/s, loop p99 ${fmt(s.loopP99Ms)} ms max ${fmt(s.loopMaxMs)} ms, ${fmt(s.cpuUsPerReq)} us/req, sync ${fmt(s.syncShare * 100)}%, others ${fmt(s.foreignCpuShare * 100, 2)}%\n`,
  )
  return s
}

async function main(): Promise<void> {
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
  const canDrop = await dropCaches()
  if (!canDrop)
    process.stderr.write('cannot write /proc/sys/vm/drop_caches (needs root): dropped-cache runs skipped\n')
  const caches: Cache[] = canDrop ? ['warm', 'dropped'] : ['warm']
  const edges = { old: await startEdge('old', upstreamUrl), new: await startEdge('new', upstreamUrl) }
  const samples: Sample[] = []
  try {
    for (const e of Object.values(edges)) await fill(e)
    for (const size of SIZES)
      for (const cache of caches) {
        const got = await interleave(['old', 'new'] as const, ROUNDS, (policy, round) =>
          run(edges[policy], size, cache, round),
        )
        for (const list of got.values()) samples.push(...list)
      }
  } finally {
    for (const e of Object.values(edges)) await e.stop()
    upstream.close()
  }

  const rows = SIZES.flatMap((size) =>
    caches.flatMap((cache) =>
      (['old', 'new'] as const).map((policy) => {
        const mine = samples.filter((s) => s.size === size.name && s.cache === cache && s.policy === policy)
        const m = (f: (s: Sample) => number) => median(mine.map(f))
        return {
          size: size.name,
          cache,
          policy,
          rps: m((s) => s.rps),
          p99Ms: m((s) => s.p99Ms),
          loopP99Ms: m((s) => s.loopP99Ms),
          loopMaxMs: Math.max(...mine.map((s) => s.loopMaxMs)),
          cpuUsPerReq: m((s) => s.cpuUsPerReq),
          syncShare: m((s) => s.syncShare),
          sendLoopShare: m((s) => s.sendLoopShare),
          foreignMax: Math.max(...mine.map((s) => s.foreignCpuShare)),
          errors: mine.reduce((a, s) => a + s.errors, 0),
        }
      }),
    ),
  )
  type Row = (typeof rows)[number]
  const table = markdownTable<Row>(rows, [
    { header: 'object', cell: (r) => r.size },
    { header: 'page cache', cell: (r) => r.cache },
    {
      header: 'policy',
      cell: (r) => (r.policy === 'old' ? 'old (sync when read < 5 s)' : 'new (sync <= 64 KiB and hot)'),
    },
    { header: 'req/s', cell: (r) => fmt(r.rps), right: true },
    { header: 'latency p99 ms', cell: (r) => fmt(r.p99Ms), right: true },
    { header: 'loop delay p99 ms', cell: (r) => fmt(r.loopP99Ms), right: true },
    { header: 'loop delay max ms', cell: (r) => fmt(r.loopMaxMs), right: true },
    { header: 'CPU us/req', cell: (r) => fmt(r.cpuUsPerReq), right: true },
    { header: 'reads on the loop', cell: (r) => `${fmt(r.syncShare * 100)}%`, right: true },
    {
      header: 'sendfile sends on the loop',
      cell: (r) => (Number.isNaN(r.sendLoopShare) ? '-' : `${fmt(r.sendLoopShare * 100)}%`),
      right: true,
    },
    { header: 'other processes (max)', cell: (r) => `${fmt(r.foreignMax * 100, 2)}%`, right: true },
    { header: 'errors', cell: (r) => String(r.errors), right: true },
  ])
  const setup =
    `${ROUNDS} round(s) of ${DURATION_S} s (at most ${MAX_REQUESTS.toLocaleString('en-US')} requests) per row, ` +
    `${CONNECTIONS} connections (autocannon, in the bench process), medians over rounds (loop max: the worst round); ` +
    `${cpus().length} cores, node ${process.version}; edge \`--memory-size 0\` (every hit HIT-DISK).` +
    (canDrop
      ? ` Dropped: \`sync; echo 3 > /proc/sys/vm/drop_caches\` before the run and every ${DROP_EVERY_MS} ms during it.`
      : ' Dropped-cache rows skipped: /proc/sys/vm/drop_caches not writable (needs root).')
  const md = `# Disk-hit event-loop delay (issue 13)\n\n\`npm run bench:disk-delay\` (${new Date().toISOString().slice(0, 10)}). ${setup}\n\n${table}\n`
  writeResults(
    join(root, 'bench/results/disk-delay.json'),
    join(root, 'bench/results/disk-delay.md'),
    { setup, rows, samples },
    md,
  )
  process.stdout.write(md)
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
