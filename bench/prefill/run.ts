/**
 * `npm run bench:prefill` (after `npm run build`): what a prefill costs and what players feel.
 *
 * A real origin and a real edge, each its own process (`cdn origin`, `cdn edge`), on loopback.
 *   1. fill throughput, uncapped: POST /admin/prefill for N titles, wall time to `completed`;
 *   2. fill throughput, capped: the same at --cap, achieved rate vs the cap;
 *   3. players' hit path: paced players on a warm title's 720p segments, without a prefill and
 *      while a capped prefill runs (and while uncapped prefills loop), interleaved in one run;
 *      p50/p99 and the ratio with/without.
 * Titles are purged between runs so every fill starts cold. Results: bench/results/prefill.{json,md}.
 *
 * Options: --quick, --titles N, --seconds S (title length), --rounds N, --duration S,
 * --cap RATE (e.g. 20MB), --players N, --interval-ms N, --out DIR.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { parseSize } from '../../src/config/units.js'
import { waitForQuiet } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { type Child, freePort, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { median } from '../lib/stats.js'
import { prepareContent } from './content.js'
import { type PlayersResult, runPlayers } from './players.js'

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
}

async function fillOnce(
  edge: string,
  titles: readonly string[],
  cap: number | undefined,
  concurrency: number,
): Promise<FillRun> {
  const t0 = performance.now()
  const { id } = (await api('POST', `${edge}/admin/prefill`, {
    titles,
    concurrency,
    ...(cap ? { maxBytesPerSecond: cap } : {}),
  })) as { id: string }
  const v = await waitJob(edge, id, 600_000)
  const seconds = (performance.now() - t0) / 1000
  if (v.state !== 'completed') throw new Error(`prefill ${id}: ${v.state} ${v.reason ?? ''}`)
  return { bytes: v.bytes.fetched, seconds, mbps: v.bytes.fetched / seconds / 1e6 }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
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
    },
  })
  const quick = values.quick === true
  const o = {
    titles: Number(values.titles ?? (quick ? 3 : 6)),
    seconds: Number(values.seconds ?? 60),
    rounds: Number(values.rounds ?? (quick ? 1 : 3)),
    durationS: Number(values.duration ?? (quick ? 5 : 10)),
    cap: parseSize(values.cap ?? '20MB')!,
    players: Number(values.players ?? 20),
    intervalMs: Number(values['interval-ms'] ?? 500),
    /** The edge's default (--prefill-concurrency). */
    concurrency: Number(values.concurrency ?? 4),
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
    children.push(
      await startProcess({
        name: 'edge',
        cmd: process.execPath,
        args: [
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
      }),
    )
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
      uncapped.push(await fillOnce(edge, content.titles, undefined, o.concurrency))
      await purge(edge, content.titles)
      await waitForQuiet(0.15, quick ? 2000 : 10_000)
      capped.push(await fillOnce(edge, content.titles, o.cap, o.concurrency))
      await purge(edge, content.titles)
      log(
        `round ${r + 1}: uncapped ${fmt(uncapped.at(-1)!.mbps)} MB/s, capped ${fmt(capped.at(-1)!.mbps)} MB/s (cap ${fmt(o.cap / 1e6)})`,
      )
    }

    // Players without a prefill, with a capped one running, with uncapped ones looping;
    // the order is rotated every round so drift spreads over all three.
    const playerCap = Math.min(o.cap, Math.floor(totalBytes / (o.durationS + 3)))
    const modes = ['none', 'capped', 'uncapped'] as const
    const samples: Record<(typeof modes)[number], PlayersResult[]> = { none: [], capped: [], uncapped: [] }
    const playerOpts = {
      origin: edge,
      paths: content.playerPaths,
      players: o.players,
      intervalMs: o.intervalMs,
      durationS: o.durationS,
    }
    for (let r = 0; r < o.rounds; r++) {
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(k + r) % modes.length]!
        await waitForQuiet(0.15, quick ? 2000 : 10_000)
        if (mode === 'none') samples.none.push(await runPlayers(playerOpts))
        else if (mode === 'capped') {
          const { id } = (await api('POST', `${edge}/admin/prefill`, {
            titles: content.titles,
            concurrency: o.concurrency,
            maxBytesPerSecond: playerCap,
          })) as { id: string }
          samples.capped.push(await runPlayers(playerOpts))
          await api('DELETE', `${edge}/admin/prefill/${id}`)
        } else {
          let stop = false
          const loop = (async () => {
            for (let i = 0; i < 100 && !stop; i++) {
              await fillOnce(edge, content.titles, undefined, o.concurrency)
              await purge(edge, content.titles)
            }
          })()
          samples.uncapped.push(await runPlayers(playerOpts))
          stop = true
          await loop
        }
        await purge(edge, content.titles)
        const last = samples[mode].at(-1)!
        log(
          `players (${mode}): p50 ${fmt(last.p50Ms)} ms, p99 ${fmt(last.p99Ms)} ms, ${last.requests} requests, ${last.errors} errors`,
        )
      }
    }
    const p99 = (m: (typeof modes)[number]) => median(samples[m].map((s) => s.p99Ms))
    const p50 = (m: (typeof modes)[number]) => median(samples[m].map((s) => s.p50Ms))
    const doc = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
      params: { ...o, titleBytes: content.titleBytes, totalBytes, playerCap, content: content.source },
      fill: {
        uncapped: { runs: uncapped, medianMBps: median(uncapped.map((r) => r.mbps)) },
        capped: {
          capMBps: o.cap / 1e6,
          runs: capped,
          medianMBps: median(capped.map((r) => r.mbps)),
          ratioToCap: median(capped.map((r) => r.mbps)) / (o.cap / 1e6),
        },
      },
      players: {
        none: { runs: samples.none, p50Ms: p50('none'), p99Ms: p99('none') },
        capped: {
          capMBps: playerCap / 1e6,
          runs: samples.capped,
          p50Ms: p50('capped'),
          p99Ms: p99('capped'),
        },
        uncapped: { runs: samples.uncapped, p50Ms: p50('uncapped'), p99Ms: p99('uncapped') },
        p99RatioCapped: p99('capped') / p99('none'),
        p99RatioUncapped: p99('uncapped') / p99('none'),
      },
    }
    const fillRows = [
      { what: 'uncapped', mbps: doc.fill.uncapped.medianMBps, cap: undefined as number | undefined },
      { what: `capped at ${fmt(o.cap / 1e6)} MB/s`, mbps: doc.fill.capped.medianMBps, cap: o.cap / 1e6 },
    ]
    const hitShare = (m: (typeof modes)[number]) => {
      let hits = 0
      let all = 0
      for (const r of samples[m])
        for (const [x, n] of Object.entries(r.xcache)) {
          all += n
          if (x.startsWith('HIT')) hits += n
        }
      return all ? hits / all : Number.NaN
    }
    const playerRows = modes.map((m) => ({
      m,
      p50: p50(m),
      p99: p99(m),
      ratio: p99(m) / p99('none'),
      requests: samples[m].reduce((s, r) => s + r.requests, 0),
      errors: samples[m].reduce((s, r) => s + r.errors, 0),
      hits: hitShare(m),
    }))
    const md = [
      '# Prefill benchmark',
      '',
      `${doc.date}, ${doc.machine.cpus} × ${doc.machine.model}. ${content.titles.length} titles × ${fmt(content.titleBytes / 1e6)} MB (${content.source}), origin and edge as separate processes on loopback; medians of ${o.rounds} round(s).`,
      '',
      '## Fill throughput',
      '',
      markdownTable(fillRows, [
        { header: 'prefill', cell: (r) => r.what },
        { header: 'MB/s (wall time, planning included)', cell: (r) => fmt(r.mbps), right: true },
        { header: 'share of the cap', cell: (r) => (r.cap ? fmt(r.mbps / r.cap) : ''), right: true },
      ]),
      '',
      `## Players' hit path (${o.players} players, one 720p segment every ${o.intervalMs} ms each, ${o.durationS} s per run)`,
      '',
      markdownTable(playerRows, [
        {
          header: 'while',
          cell: (r) =>
            r.m === 'none'
              ? 'no prefill'
              : r.m === 'capped'
                ? `prefill capped at ${fmt(playerCap / 1e6)} MB/s`
                : 'uncapped prefills, looping',
        },
        { header: 'p50 ms', cell: (r) => fmt(r.p50), right: true },
        { header: 'p99 ms', cell: (r) => fmt(r.p99), right: true },
        { header: 'p99 / no prefill', cell: (r) => fmt(r.ratio), right: true },
        { header: 'requests', cell: (r) => String(r.requests), right: true },
        { header: 'errors', cell: (r) => String(r.errors), right: true },
        { header: 'hits', cell: (r) => fmt(r.hits), right: true },
      ]),
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
