/**
 * `npm run bench:prefill` (after `npm run build`): what a prefill costs and what players feel.
 *
 * A real origin and a real edge, each its own process (`cdn origin`, `cdn edge`), on loopback.
 *   1. fill throughput, uncapped: POST /admin/prefill for N titles, wall time to `completed`;
 *   2. fill throughput, capped: the same at --cap, achieved rate vs the cap;
 *   3. players' hit path (ab.ts): paced players on a warm title's 720p segments, without a
 *      prefill and while a capped prefill runs (and, with --modes, while uncapped prefills
 *      loop), in interleaved rounds; p50/p99 pooled and per round, the ratio with/without, the
 *      machine's load and the edge's event-loop delay for every run.
 * Titles are purged between runs so every fill starts cold. Results: bench/results/prefill.{json,md}.
 *
 * Options: --quick, --titles N, --seconds S (title length), --rounds N (fill throughput; 0
 * skips it), --ab-rounds N (players, default 8), --modes none,capped[,uncapped], --duration S
 * (per players' run), --cap RATE (e.g. 20MB), --players N, --interval-ms N, --concurrency N,
 * --out DIR, --edge-prof DIR (the edge runs with node's --cpu-prof, its profile written to DIR
 * when it stops).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { parseSize, SIZE_HINT } from '../../src/config/units.js'
import { argError, benchArgs, numberArg } from '../lib/args.js'
import { processCpuSeconds, waitForQuiet } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { type Child, freePort, startProcess } from '../lib/proc.js'
import { fmt, writeResults } from '../lib/report.js'
import { median } from '../lib/stats.js'
import { runAb, summarize } from './ab.js'
import { prepareContent } from './content.js'
import { fillTable, parseModes, playersTable } from './tables.js'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'

const TOKEN = 'bench-admin-token'
const auth = { authorization: `Bearer ${TOKEN}` }

interface JobView {
  id: string
  state: string
  reason?: string
  startedAt?: string
  finishedAt?: string
  bytes: { done: number; total: number; fetched: number }
  objects: { done: number; total: number }
}

async function api(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<unknown> {
  const res = await request(url, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.body.text()
  if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${text}`)
  return text ? JSON.parse(text) : undefined
}

/** Polls a job to a final state, bounded by `timeoutMs`. */
async function waitJob(edge: string, id: string, timeoutMs: number): Promise<JobView> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = (await api('GET', `${edge}/admin/prefill/${id}`)) as JobView
    if (['completed', 'failed', 'cancelled'].includes(v.state)) return v
    if (performance.now() > deadline) throw new Error(`prefill ${id} still ${v.state} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

async function purge(edge: string, titles: readonly string[]): Promise<void> {
  for (const t of titles) await api('DELETE', `${edge}/admin/cache/vod/${t}`)
}

interface FillRun {
  bytes: number
  seconds: number
  mbps: number
  /** The edge's CPU over the fill per MB fetched, ms (planning included): every thread, main thread. */
  cpuMsPerMB: number
  mainCpuMsPerMB: number
}

async function fillOnce(
  edge: string,
  titles: readonly string[],
  cap: number | undefined,
  concurrency: number,
  edgePid: number,
): Promise<FillRun> {
  const cpu0 = processCpuSeconds(edgePid)
  const t0 = performance.now()
  const { id } = (await api('POST', `${edge}/admin/prefill`, {
    titles,
    concurrency,
    ...(cap ? { maxBytesPerSecond: cap } : {}),
  })) as { id: string }
  const v = await waitJob(edge, id, 600_000)
  const seconds = (performance.now() - t0) / 1000
  const cpu1 = processCpuSeconds(edgePid)
  if (v.state !== 'completed') throw new Error(`prefill ${id}: ${v.state} ${v.reason ?? ''}`)
  const mb = v.bytes.fetched / 1e6
  return {
    bytes: v.bytes.fetched,
    seconds,
    mbps: mb / seconds,
    cpuMsPerMB: ((cpu1.process - cpu0.process) * 1000) / mb,
    mainCpuMsPerMB: ((cpu1.main - cpu0.main) * 1000) / mb,
  }
}

/** `parseModes`, its error (an unknown mode) as a bad flag rather than a stack trace. */
function modesArg(s: string) {
  try {
    return parseModes(s)
  } catch (err) {
    return argError((err as Error).message)
  }
}

const USAGE = `Usage: npm run bench:prefill -- [flags]
  --quick             3 titles, 1 fill round, 5 s players' runs, 2 A/B rounds (default: off)
  --titles N          titles prefilled in the fill-throughput runs (default: 6, quick 3)
  --seconds S         length of each title (default: 60)
  --rounds N          fill-throughput rounds, 0 skips them (default: 3, quick 1)
  --ab-rounds N       interleaved rounds of the players' A/B (default: 8, quick 2)
  --modes none,capped[,uncapped]
                      the players' A/B modes: no prefill, a capped one, uncapped ones looping (default: none,capped)
  --duration S        seconds of each players' run (default: 10, quick 5)
  --cap RATE          the capped prefill's rate per second, e.g. 20MB (default: 20MB)
  --players N         paced players on the warm title (default: 20)
  --interval-ms N     each player's pause between requests (default: 500)
  --concurrency N     the edge's --prefill-concurrency (default: 4, the edge's default)
  --own-content       ingest this bench's own title even when the peer benchmark's is there (default: off)
  --out DIR           where the results go (default: bench/results)
  --edge-prof DIR     run the edge under node's --cpu-prof, its profile written to DIR when it stops (default: off)
  -h, --help          print this and exit`

async function main(): Promise<void> {
  const values = benchArgs(USAGE, {
    options: {
      quick: { type: 'boolean', default: false },
      titles: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      cap: { type: 'string' },
      players: { type: 'string' },
      'interval-ms': { type: 'string' },
      out: { type: 'string' },
      'own-content': { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      modes: { type: 'string' },
      'ab-rounds': { type: 'string' },
      'edge-prof': { type: 'string' },
    },
  })
  const quick = values.quick === true
  const count = { integer: true, min: 1 }
  const o = {
    titles: numberArg(values.titles, '--titles', quick ? 3 : 6, count),
    seconds: numberArg(values.seconds, '--seconds', 60, { min: 1 }),
    rounds: numberArg(values.rounds, '--rounds', quick ? 1 : 3, { integer: true, min: 0 }),
    durationS: numberArg(values.duration, '--duration', quick ? 5 : 10, { min: 0 }),
    cap: parseSize(values.cap ?? '20MB') ?? argError(`--cap must be ${SIZE_HINT}, got '${values.cap}'`),
    players: numberArg(values.players, '--players', 20, count),
    intervalMs: numberArg(values['interval-ms'], '--interval-ms', 500, { min: 0 }),
    /** The edge's default (--prefill-concurrency). */
    concurrency: numberArg(values.concurrency, '--concurrency', 4, count),
    /** The players' A/B: modes (none, capped, uncapped) and interleaved rounds of them. */
    modes: modesArg(values.modes ?? 'none,capped'),
    abRounds: numberArg(values['ab-rounds'], '--ab-rounds', quick ? 2 : 8, { integer: true, min: 0 }),
  }
  const root = repoRoot(import.meta.url)
  const out = values.out ?? join(root, 'bench/results')
  const log = (l: string) => process.stdout.write(`${l}\n`)
  const work = mkdtempSync(join(tmpdir(), 'bench-prefill-'))
  const children: Child[] = []
  try {
    const content = await prepareContent(root, work, {
      titles: o.titles,
      seconds: o.seconds,
      ownContent: values['own-content'] === true,
      log,
    })
    // The cdn binary of the tree this benchmark was compiled into (dist/ normally).
    const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
    const originPort = await freePort()
    const edgePort = await freePort()
    const originUrl = `http://127.0.0.1:${originPort}`
    const edge = `http://127.0.0.1:${edgePort}`
    children.push(
      await startProcess({
        name: 'origin',
        cmd: process.execPath,
        args: [cli, 'origin', '--store', content.store, '--port', String(originPort), '--log-level', 'warn'],
        readyUrl: `${originUrl}/healthz`,
      }),
    )
    const prof = values['edge-prof']
    const edgeChild = await startProcess({
      name: 'edge',
      cmd: process.execPath,
      args: [
        ...NODE_FLAGS,
        ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
        cli,
        'edge',
        '--upstream',
        originUrl,
        '--port',
        String(edgePort),
        '--cache-dir',
        join(work, 'edge'),
        '--memory-size',
        '256MB',
        '--disk-size',
        '4GB',
        '--admin-token',
        TOKEN,
        '--log-level',
        'warn',
      ],
      readyUrl: `${edge}/healthz`,
    })
    children.push(edgeChild)
    const totalBytes = content.titleBytes * content.titles.length
    log(
      `${content.titles.length} titles of ${fmt(content.titleBytes / 1e6)} MB; players: ${o.players} every ${o.intervalMs} ms`,
    )

    // Warm the players' title (two passes: disk, then memory).
    for (let pass = 0; pass < 2; pass++)
      for (const p of content.playerPaths) await (await request(`${edge}${p}`)).body.dump()

    const uncapped: FillRun[] = []
    const capped: FillRun[] = []
    for (let r = 0; r < o.rounds; r++) {
      await waitForQuiet(0.15, quick ? 2000 : 10_000)
      uncapped.push(await fillOnce(edge, content.titles, undefined, o.concurrency, edgeChild.pid))
      await purge(edge, content.titles)
      await waitForQuiet(0.15, quick ? 2000 : 10_000)
      capped.push(await fillOnce(edge, content.titles, o.cap, o.concurrency, edgeChild.pid))
      await purge(edge, content.titles)
      log(
        `round ${r + 1}: uncapped ${fmt(uncapped.at(-1)!.mbps)} MB/s, capped ${fmt(capped.at(-1)!.mbps)} MB/s (cap ${fmt(o.cap / 1e6)})`,
      )
    }

    // Players without a prefill and while a prefill runs, interleaved (ab.ts).
    const playerCap = Math.min(o.cap, Math.floor(totalBytes / (o.durationS + 3)))
    const ab = await runAb(
      {
        edge,
        players: {
          origin: edge,
          paths: content.playerPaths,
          players: o.players,
          intervalMs: o.intervalMs,
          durationS: o.durationS,
        },
        startCapped: async () => {
          const { id } = (await api('POST', `${edge}/admin/prefill`, {
            titles: content.titles,
            concurrency: o.concurrency,
            maxBytesPerSecond: playerCap,
          })) as { id: string }
          return async () => {
            await api('DELETE', `${edge}/admin/prefill/${id}`)
            return ((await api('GET', `${edge}/admin/prefill/${id}`)) as JobView).bytes.fetched
          }
        },
        startUncapped: async () => {
          let stop = false
          let bytes = 0
          const loop = (async () => {
            for (let i = 0; i < 100 && !stop; i++) {
              bytes += (await fillOnce(edge, content.titles, undefined, o.concurrency, edgeChild.pid)).bytes
              await purge(edge, content.titles)
            }
          })()
          return async () => {
            stop = true
            await loop
            return bytes
          }
        },
        edgeCpu: () => processCpuSeconds(edgeChild.pid),
        purge: () => purge(edge, content.titles),
        quietMaxWaitMs: quick ? 2000 : 10_000,
        log,
      },
      o.modes,
      o.abRounds,
    )
    const summary = summarize(ab.runs, ab.latencies, o.modes)
    const doc = {
      date: new Date().toISOString(),
      command: `npm run bench:prefill${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
      params: { ...o, titleBytes: content.titleBytes, totalBytes, playerCap, content: content.source },
      fill: {
        uncapped: {
          runs: uncapped,
          medianMBps: median(uncapped.map((r) => r.mbps)),
          cpuMsPerMB: median(uncapped.map((r) => r.cpuMsPerMB)),
          mainCpuMsPerMB: median(uncapped.map((r) => r.mainCpuMsPerMB)),
        },
        capped: {
          capMBps: o.cap / 1e6,
          runs: capped,
          medianMBps: median(capped.map((r) => r.mbps)),
          cpuMsPerMB: median(capped.map((r) => r.cpuMsPerMB)),
          mainCpuMsPerMB: median(capped.map((r) => r.mainCpuMsPerMB)),
          ratioToCap: median(capped.map((r) => r.mbps)) / (o.cap / 1e6),
        },
      },
      players: { capMBps: playerCap / 1e6, summary, runs: ab.runs },
    }
    const md = [
      '# Prefill benchmark',
      '',
      `${doc.date}, ${doc.machine.cpus} × ${doc.machine.model}: \`${doc.command}\`. ${content.titles.length} titles × ${fmt(content.titleBytes / 1e6)} MB (${content.source}), origin and edge as separate processes on loopback.`,
      '',
      fillTable(doc.fill, o.rounds),
      '',
      playersTable(summary, {
        players: o.players,
        intervalMs: o.intervalMs,
        durationS: o.durationS,
        rounds: o.abRounds,
        capMBps: playerCap / 1e6,
      }),
      '',
    ].join('\n')
    writeResults(join(out, 'prefill.json'), join(out, 'prefill.md'), doc, md)
    log(md)
  } finally {
    for (const c of children.reverse()) await c.stop()
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:prefill: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
