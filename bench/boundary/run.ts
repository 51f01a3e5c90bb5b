/**
 * Boundary benchmark (`npm run bench:boundary [-- --quick] [-- --budget 64MB|none] [-- --dist DIR]`):
 * the edge's memory under 1,000 concurrent connections. The edge (built CLI, child process,
 * `--memory-size 10MB`) sits in front of an in-process upstream; 1,000 connections run a mix of
 * memory hits, disk hits of 1-1.6 MB objects, misses and slow readers (raw sockets that never
 * read). Per round: the edge's RSS idle before the load, its peak during the load, and for a
 * minute after it (slow readers closed), sampled from /proc every 250 ms; the edge's own
 * `cdn_edge_inflight_bytes` scraped every second; its CPU per request.
 * Goal: peak RSS <= memory tier + in-flight budget + 150 MB, and back near idle within a minute.
 * `--dist DIR` runs another build of the edge (e.g. one made before a change) with the same load;
 * `--budget none` leaves --inflight-budget out (a build without it).
 * Writes bench/results/boundary.{json,md} (or boundary-LABEL with `--label LABEL`).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { argError, benchArgs } from '../lib/args.js'
import { machineBusySeconds, treeCpuSeconds } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { median } from '../lib/stats.js'
import type { LoadResult } from '../lib/load.js'
import { runMix, slowReaders, startUpstream, warm } from './load.js'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'
import { parseSize as edgeSize, SIZE_HINT } from '../../src/config/units.js'

const USAGE = `Usage: npm run bench:boundary -- [flags]
  the edge's RSS under 1,000 connections
  --quick          1 round of 10 s instead of 3 rounds of 30 s, a minute after each (default: off)
  --budget SIZE    the edge's --inflight-budget, or none to leave it out (a build without it) (default: 256MB)
  --dist DIR       run the edge of another build, e.g. one made before a change (default: this repo's dist)
  --label LABEL    write bench/results/boundary-LABEL.{json,md} (default: boundary.{json,md})
  -h, --help       print this and exit`
const args = benchArgs(USAGE, {
  options: {
    quick: { type: 'boolean' },
    budget: { type: 'string' },
    dist: { type: 'string' },
    label: { type: 'string' },
  },
})
const quick = args.quick === true
const ROUNDS = quick ? 1 : 3
const LOAD_S = quick ? 10 : 30
const AFTER_S = 60
const CONNECTIONS = 1000
const SLOW = 100
const MEMORY = '10MB'
const MEMORY_BYTES = 10e6
const budgetArg = args.budget ?? '256MB'
if (budgetArg !== 'none' && edgeSize(budgetArg) === undefined)
  argError(`--budget must be ${SIZE_HINT} or none, got '${budgetArg}'`)
const root = repoRoot(import.meta.url)
const dist = resolve(args.dist ?? join(root, 'dist'))
const label = args.label
const MB = 1e6

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** The edge's own view: bytes in flight, its body-buffer pool, V8 heap used and external (Buffer) memory. */
async function edgeMemory(
  url: string,
): Promise<{ inflight: number; pool: number; heap: number; external: number }> {
  const get = (text: string, name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    return m ? Number(m[1]) : Number.NaN
  }
  try {
    const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(15_000) })
    const text = await r.text()
    return {
      inflight: get(text, 'cdn_edge_inflight_bytes'),
      pool: get(text, 'cdn_edge_body_pool_bytes'),
      heap: get(text, 'cdn_edge_nodejs_heap_size_used_bytes'),
      external: get(text, 'cdn_edge_nodejs_external_memory_bytes'),
    }
  } catch {
    return { inflight: Number.NaN, pool: Number.NaN, heap: Number.NaN, external: Number.NaN }
  }
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(KB|MB|GB)?$/i.exec(s)
  if (!m) return Number.NaN
  const unit = { KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? '').toUpperCase() as 'KB'] ?? 1
  return Number(m[1]) * unit
}

/** Samples `fn` every `everyMs` until `stop()`; returns the samples with their time (s). */
function sampler<T = number>(fn: () => T | Promise<T>, everyMs: number) {
  const samples: { t: number; v: T }[] = []
  const t0 = performance.now()
  let on = true
  const done = (async () => {
    // Bounded by the phase that stops it.
    while (on) {
      samples.push({ t: (performance.now() - t0) / 1000, v: await fn() })
      await sleep(everyMs)
    }
  })()
  return {
    samples,
    stop: async () => {
      on = false
      await done
    },
  }
}

interface Round {
  idleRss: number
  peakRss: number
  /** RSS 15 s and 30 s after the load, and at the end of the minute after it. */
  rss15s: number
  rss30s: number
  afterRss: number
  /** Seconds after the load until RSS was within NEAR of idle (NaN: not within the minute). */
  backNearIdleS: number
  peakInflight: number
  /** Bytes held by the edge's pool of body buffers: peak under load, and at the end. */
  peakPool: number
  afterPool: number
  /** The edge's V8 heap used and external (Buffer) memory: peak under load, and at the end. */
  peakExternal: number
  peakHeap: number
  afterExternal: number
  afterHeap: number
  afterInflight: number
  load: LoadResult
  cpuMsPerRequest: number
  machineBusyShare: number
  loadavg1: number
}

/** "Near idle": within this much of the idle RSS. */
const NEAR = 30 * MB

async function round(upstreamUrl: string, n: number): Promise<Round> {
  const port = await freePort()
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-boundary-'))
  const url = `http://127.0.0.1:${port}`
  const extra = budgetArg === 'none' ? [] : ['--inflight-budget', budgetArg]
  const child = await startProcess({
    name: 'edge',
    cmd: process.execPath,
    args: [
      ...NODE_FLAGS,
      join(dist, 'src/cli/main.js'),
      'edge',
      ...['--port', String(port), '--upstream', upstreamUrl, '--cache-dir', cacheDir],
      ...['--memory-size', MEMORY, '--disk-size', '1GB', '--log-level', 'error', ...extra],
    ],
    readyUrl: `${url}/healthz`,
    // A loaded shared machine can take that long to start a node.
    readyTimeoutMs: 60_000,
  })
  try {
    await warm(url)
    // At rest: past the body pool's 10 s idle trim of the buffers warming used.
    await sleep(15_000)
    const idle = sampler(() => rssBytes(child.pid), 250)
    await sleep(2000)
    await idle.stop()
    const idleRss = median(idle.samples.map((s) => s.v))

    const rss = sampler(() => rssBytes(child.pid), 250)
    const inflight = sampler(() => edgeMemory(url), 1000)
    const cpu0 = treeCpuSeconds(child.pid)
    const busy0 = machineBusySeconds()
    const t0 = performance.now()
    const slow = await slowReaders(url, SLOW, `${n}-${Date.now()}`)
    const load = await runMix(url, CONNECTIONS - SLOW, LOAD_S)
    const wall = (performance.now() - t0) / 1000
    const cpu = treeCpuSeconds(child.pid) - cpu0
    const machineBusyShare = (machineBusySeconds() - busy0) / (wall * availableParallelism())
    for (const s of slow) s.destroy()
    await inflight.stop()
    await rss.stop()
    const finite = (xs: number[]) => xs.filter(Number.isFinite)
    const peakInflight = Math.max(...finite(inflight.samples.map((s) => s.v.inflight)))
    const peakPool = Math.max(...finite(inflight.samples.map((s) => s.v.pool)))
    const peakExternal = Math.max(...finite(inflight.samples.map((s) => s.v.external)))
    const peakHeap = Math.max(...finite(inflight.samples.map((s) => s.v.heap)))

    const after = sampler(() => rssBytes(child.pid), 250)
    await sleep(AFTER_S * 1000)
    await after.stop()
    const end = await edgeMemory(url)
    const near = after.samples.find((s) => s.v <= idleRss + NEAR)
    const rssAt = (t: number) => after.samples.find((s) => s.t >= t)?.v ?? Number.NaN
    // The edge may still be working through what the load left queued after it stopped.
    const peakRss = Math.max(...rss.samples.map((s) => s.v), ...after.samples.map((s) => s.v))
    return {
      idleRss,
      peakRss,
      rss15s: rssAt(15),
      rss30s: rssAt(30),
      afterRss: after.samples.at(-1)!.v,
      backNearIdleS: near ? near.t : Number.NaN,
      peakInflight,
      peakPool,
      afterPool: end.pool,
      peakExternal,
      peakHeap,
      afterExternal: end.external,
      afterHeap: end.heap,
      afterInflight: end.inflight,
      load,
      cpuMsPerRequest: (cpu * 1000) / Math.max(1, load.requests),
      machineBusyShare,
      loadavg1: loadavg()[0]!,
    }
  } finally {
    await child.stop(3000)
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

function mmm(values: readonly number[], scale = 1): { min: number; median: number; max: number } {
  const v = values.filter(Number.isFinite).map((x) => x / scale)
  return { min: Math.min(...v), median: median(v), max: Math.max(...v) }
}

async function main(): Promise<void> {
  const up = await startUpstream()
  const loadBefore = loadavg()
  const rounds: Round[] = []
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const r = await round(up.url, i)
      rounds.push(r)
      console.log(
        `round ${i + 1}/${ROUNDS}: idle ${fmt(r.idleRss / MB)} MB, peak ${fmt(r.peakRss / MB)} MB, after ${fmt(r.afterRss / MB)} MB, in flight peak ${fmt(r.peakInflight / MB)} MB, ${r.load.requests} requests`,
      )
    }
  } finally {
    up.server.closeAllConnections()
    up.server.close()
  }
  const budget = budgetArg === 'none' ? Number.NaN : parseSize(budgetArg)
  const goal = MEMORY_BYTES + (Number.isFinite(budget) ? budget : parseSize('256MB')) + 150 * MB
  const summary = {
    idleRssMB: mmm(
      rounds.map((r) => r.idleRss),
      MB,
    ),
    peakRssMB: mmm(
      rounds.map((r) => r.peakRss),
      MB,
    ),
    rss15sMB: mmm(
      rounds.map((r) => r.rss15s),
      MB,
    ),
    rss30sMB: mmm(
      rounds.map((r) => r.rss30s),
      MB,
    ),
    afterRssMB: mmm(
      rounds.map((r) => r.afterRss),
      MB,
    ),
    backNearIdleS: mmm(rounds.map((r) => r.backNearIdleS)),
    peakInflightMB: mmm(
      rounds.map((r) => r.peakInflight),
      MB,
    ),
    afterInflightMB: mmm(
      rounds.map((r) => r.afterInflight),
      MB,
    ),
    peakPoolMB: mmm(
      rounds.map((r) => r.peakPool),
      MB,
    ),
    afterPoolMB: mmm(
      rounds.map((r) => r.afterPool),
      MB,
    ),
    peakExternalMB: mmm(
      rounds.map((r) => r.peakExternal),
      MB,
    ),
    afterExternalMB: mmm(
      rounds.map((r) => r.afterExternal),
      MB,
    ),
    peakHeapMB: mmm(
      rounds.map((r) => r.peakHeap),
      MB,
    ),
    afterHeapMB: mmm(
      rounds.map((r) => r.afterHeap),
      MB,
    ),
    requests: mmm(rounds.map((r) => r.load.requests)),
    cpuMsPerRequest: mmm(rounds.map((r) => r.cpuMsPerRequest)),
    errors: mmm(rounds.map((r) => r.load.errors)),
    non2xx: mmm(rounds.map((r) => r.load.non2xx)),
    machineBusyShare: mmm(rounds.map((r) => r.machineBusyShare)),
  }
  const goalMet = {
    peak: rounds.every((r) => r.peakRss <= goal),
    backNearIdle: rounds.every((r) => Number.isFinite(r.backNearIdleS)),
  }
  const doc = {
    when: new Date().toISOString(),
    quick,
    setup: {
      dist,
      connections: CONNECTIONS,
      slowReaders: SLOW,
      loadSeconds: LOAD_S,
      afterSeconds: AFTER_S,
      memorySize: MEMORY,
      inflightBudget: budgetArg,
      mix: 'per connection: memory hit, disk hit (1-1.6 MB), memory hit, disk hit, miss (1 MB, new object); slow readers: half disk hits, half misses, never read',
      nearIdleMB: NEAR / MB,
      goalPeakRssMB: goal / MB,
      cores: availableParallelism(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
    },
    goalMet,
    summary,
    rounds,
  }
  type Row = { what: string; v: { min: number; median: number; max: number } }
  const rows: Row[] = [
    { what: 'idle RSS before (MB)', v: summary.idleRssMB },
    { what: 'peak RSS, load and the minute after (MB)', v: summary.peakRssMB },
    { what: 'RSS 15 s after (MB)', v: summary.rss15sMB },
    { what: 'RSS 30 s after (MB)', v: summary.rss30sMB },
    { what: `RSS ${AFTER_S} s after (MB)`, v: summary.afterRssMB },
    { what: `s until within ${NEAR / MB} MB of idle`, v: summary.backNearIdleS },
    { what: 'peak cdn_edge_inflight_bytes (MB)', v: summary.peakInflightMB },
    { what: `cdn_edge_inflight_bytes ${AFTER_S} s after (MB)`, v: summary.afterInflightMB },
    { what: 'peak cdn_edge_body_pool_bytes (MB)', v: summary.peakPoolMB },
    { what: `cdn_edge_body_pool_bytes ${AFTER_S} s after (MB)`, v: summary.afterPoolMB },
    { what: 'peak V8 external memory (MB)', v: summary.peakExternalMB },
    { what: `V8 external memory ${AFTER_S} s after (MB)`, v: summary.afterExternalMB },
    { what: 'peak V8 heap used (MB)', v: summary.peakHeapMB },
    { what: `V8 heap used ${AFTER_S} s after (MB)`, v: summary.afterHeapMB },
    { what: 'requests completed', v: summary.requests },
    { what: 'errors + timeouts', v: summary.errors },
    { what: 'non-2xx', v: summary.non2xx },
    { what: 'edge CPU ms per request', v: summary.cpuMsPerRequest },
    { what: 'machine busy share during load', v: summary.machineBusyShare },
  ]
  const md = [
    `# Boundary benchmark${label ? ` (${label})` : ''}`,
    '',
    `${CONNECTIONS} connections (${CONNECTIONS - SLOW} autocannon cycling memory hit, disk hit of 1-1.6 MB, memory hit, disk hit, miss; ${SLOW} slow readers that never read) for ${LOAD_S} s, edge with --memory-size ${MEMORY}, --inflight-budget ${budgetArg}, ${ROUNDS} round(s)${quick ? ' (quick)' : ''}; ${availableParallelism()} cores, load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before. Build: \`${dist}\`.`,
    '',
    markdownTable(rows, [
      { header: 'measure', cell: (r) => r.what },
      { header: 'min', cell: (r) => fmt(r.v.min), right: true },
      { header: 'median', cell: (r) => fmt(r.v.median), right: true },
      { header: 'max', cell: (r) => fmt(r.v.max), right: true },
    ]),
    '',
    `Goal: peak RSS <= ${fmt(goal / MB)} MB (memory tier + in-flight budget + 150 MB): ${goalMet.peak ? 'met' : 'NOT met'}; back within ${NEAR / MB} MB of idle within ${AFTER_S} s: ${goalMet.backNearIdle ? 'met' : 'NOT met'}.`,
    '',
  ].join('\n')
  const name = label ? `boundary-${label}` : 'boundary'
  writeResults(join(root, `bench/results/${name}.json`), join(root, `bench/results/${name}.md`), doc, md)
  console.log(md)
}

await main()
