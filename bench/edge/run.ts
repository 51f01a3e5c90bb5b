/**
 * Edge benchmark (`npm run bench:edge [-- --quick]`): our edge as a child process (built
 * dist) in front of an in-process upstream, on loopback.
 *   hit path: 2 KB playlist (autocannon) and 1 MB segment (wrk), 100 connections, from the
 *             memory tier and from the disk tier (memory tier off);
 *   miss path: cold 1 MB segments, 10 at a time;
 *   stampede: 200 clients at once on one cold 1 MB segment behind a 200 ms upstream.
 * Writes bench/results/edge.{json,md}.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchArgs } from '../lib/args.js'
import { runAutocannon } from '../lib/autocannon.js'
import type { LoadResult } from '../lib/load.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { stampede } from '../lib/stampede.js'
import { percentile } from '../lib/stats.js'
import { runWrk } from '../lib/wrk.js'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'

const USAGE = `Usage: npm run bench:edge -- [flags]
  --quick       3 s per hit-path run instead of 8, 100 cold misses instead of 300 (default: off)
  -h, --help    print this and exit`
const quick = benchArgs(USAGE, { options: { quick: { type: 'boolean' } } }).quick === true
const DURATION = quick ? 3 : 8
const root = repoRoot(import.meta.url)
const PLAYLIST = Buffer.from(`#EXTM3U\n${'#EXTINF:4.000,\nseg-00001.m4s\n'.repeat(70)}`.slice(0, 2048))
const SEGMENT = Buffer.alloc(1_000_000, 7)

let upstreamFetches = 0
const upstream = createServer((req, res) => {
  upstreamFetches++
  const url = req.url ?? ''
  const body = url.endsWith('.m3u8') ? PLAYLIST : SEGMENT
  const send = () => {
    res.writeHead(200, {
      'content-length': body.length,
      'cache-control': 'public, max-age=31536000, immutable',
      'content-type': url.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/iso.segment',
      etag: '"b"',
    })
    res.end(body)
  }
  if (url.includes('/slow/')) setTimeout(send, 200)
  else send()
})

async function startEdge(memorySize: string) {
  const port = await freePort()
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-edge-'))
  const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
  const child = await startProcess({
    name: 'edge',
    cmd: process.execPath,
    args: [
      ...NODE_FLAGS,
      join(root, 'dist/src/cli/main.js'),
      'edge',
      '--port',
      String(port),
      '--upstream',
      up,
      '--cache-dir',
      cacheDir,
      '--memory-size',
      memorySize,
      '--disk-size',
      '2GB',
      '--log-level',
      'silent',
    ],
    readyUrl: `http://127.0.0.1:${port}/healthz`,
    readyTimeoutMs: 15_000,
  })
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await child.stop(2000)
      rmSync(cacheDir, { recursive: true, force: true })
    },
  }
}

interface Row {
  name: string
  tier: string
  generator: string
  rps: number
  mbps: number
  p50Ms: number
  p99Ms: number
  errors: number
  note?: string
}

const rows: Row[] = []
const row = (name: string, tier: string, r: LoadResult) =>
  rows.push({
    name,
    tier,
    generator: r.generator,
    rps: r.rps,
    mbps: r.mbps,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    errors: r.errors + r.non2xx,
  })

async function warm(url: string, n = 3) {
  for (let i = 0; i < n; i++) await fetch(url).then((r) => r.arrayBuffer())
  await new Promise((r) => setTimeout(r, 300))
}

async function hitPath(tier: 'memory' | 'disk') {
  const edge = await startEdge(tier === 'memory' ? '512MB' : '0')
  try {
    const pl = `${edge.url}/vod/bench/v1/720p/index.m3u8`
    const seg = `${edge.url}/vod/bench/v1/720p/seg-00001.m4s`
    await warm(pl)
    await warm(seg)
    row('2 KB playlist hit', tier, await runAutocannon({ url: pl, connections: 100, durationS: DURATION }))
    row(
      '1 MB segment hit',
      tier,
      await runWrk({ url: seg, connections: 100, durationS: DURATION, threads: 2 }),
    )
  } finally {
    await edge.stop()
  }
}

async function missPath() {
  const edge = await startEdge('512MB')
  try {
    const n = quick ? 100 : 300
    const lat: number[] = []
    const started = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < n) {
          const i = next++
          const t0 = performance.now()
          await fetch(`${edge.url}/vod/miss/v1/720p/seg-${String(i).padStart(5, '0')}.m4s`).then((r) =>
            r.arrayBuffer(),
          )
          lat.push(performance.now() - t0)
        }
      }),
    )
    const s = (performance.now() - started) / 1000
    rows.push({
      name: '1 MB segment miss (cold, 10 concurrent)',
      tier: 'upstream',
      generator: 'fetch',
      rps: n / s,
      mbps: (n * SEGMENT.length) / s / 1e6,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      errors: 0,
    })
  } finally {
    await edge.stop()
  }
}

async function stampedeRun() {
  const edge = await startEdge('512MB')
  try {
    const before = upstreamFetches
    const { summary: s } = await stampede(`${edge.url}/vod/st/v1/720p/slow/seg-00001.m4s`, 200)
    return { ...s, upstreamFetches: upstreamFetches - before, upstreamDelayMs: 200 }
  } finally {
    await edge.stop()
  }
}

await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
try {
  await hitPath('memory')
  await hitPath('disk')
  await missPath()
  const st = await stampedeRun()
  const md = [
    `# Edge benchmark${quick ? ' (quick)' : ''}`,
    '',
    `${new Date().toISOString()}, ${DURATION} s per hit-path run, 100 connections, loopback, load generator on the same 2 cores.`,
    'Playlists measured with autocannon, segments with wrk; the miss path with fetch() from the bench process.',
    '',
    markdownTable(rows, [
      { header: 'workload', cell: (r) => r.name },
      { header: 'tier', cell: (r) => r.tier },
      { header: 'generator', cell: (r) => r.generator },
      { header: 'req/s', cell: (r) => fmt(r.rps), right: true },
      { header: 'MB/s', cell: (r) => fmt(r.mbps), right: true },
      { header: 'p50 ms', cell: (r) => fmt(r.p50Ms), right: true },
      { header: 'p99 ms', cell: (r) => fmt(r.p99Ms), right: true },
      { header: 'errors', cell: (r) => String(r.errors), right: true },
    ]),
    '',
    `Stampede: ${st.clients} clients on one cold 1 MB segment, upstream answers after ${st.upstreamDelayMs} ms: ` +
      `${st.upstreamFetches} upstream fetch(es), ${st.ok} ok, ${st.distinctBodies} distinct bodies, ` +
      `TTFB p50 ${fmt(st.ttfbP50Ms)} ms / max ${fmt(st.ttfbMaxMs)} ms, done p50 ${fmt(st.doneP50Ms)} ms / max ${fmt(st.doneMaxMs)} ms.`,
    '',
  ].join('\n')
  writeResults(
    join(root, 'bench/results/edge.json'),
    join(root, 'bench/results/edge.md'),
    { quick, durationS: DURATION, rows, stampede: st },
    md,
  )
  process.stdout.write(md)
} finally {
  upstream.close()
}
