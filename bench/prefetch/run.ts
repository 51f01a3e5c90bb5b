/**
 * `npm run bench:prefetch` (after `npm run build`; `-- --quick`: one round): is CMCD
 * next-segment prefetch (edge/prefetch) worth its upstream bytes on a COLD edge, with real
 * hls.js in headless Chromium (Debian's, driven by playwright-core)?
 *
 * A real origin and a real edge (in-process, loopback; the edge's cache in a fresh directory for
 * every session, so nothing is prefilled or warm), and hls.js with `cmcd: {}` as the demo's
 * player page sets it (CMCD in the query, `nor` naming the next segment). Each session plays the
 * prefill benchmark's 60 s title (720p/480p/360p/240p, 4 s segments) to its end at 2x speed over
 * a link shaped with CDP (Network.emulateNetworkConditions), with prefetch on
 * (`--prefetch-concurrency 4`, the default) and off (0), interleaved and flipped every round.
 *
 * Per session, from the edge's own counters (/status `demand.prefetch`, the same counts as
 * `cdn_edge_prefetches_total{result}` and `cdn_edge_prefetch_upstream_bytes_total`) and the
 * origin's bytes sent: prefetches started, used (asked for while held), late (asked for while in
 * flight: the player joined it), never asked for by the session's end, wasted (evicted first),
 * the upstream bytes prefetch cost, all upstream bytes, and the bytes the player loaded; the
 * player's requests that missed. Writes bench/results/prefetch.{json,md}.
 *
 * Options: --quick, --rounds N, --rate R (playback rate, default 2).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { edgeConfig } from '../../edge/config/validate.js'
import { startEdge } from '../../edge/main.js'
import { buildOriginApp } from '../../origin/app.js'
import { ContentStore } from '../../origin/store/content-store.js'
import type { DemandStatus } from '../../src/http/status.js'
import { benchArgs, numberArg } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { CHROMIUM, launchChromium, pageServer, shapedTab } from '../lib/player-page.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { max, median } from '../lib/stats.js'
import { prepareContent } from '../prefill/content.js'

const root = repoRoot(import.meta.url)
const LINKS = [
  { name: '5 Mbit/s', bps: 5e6, latencyMs: 30 },
  { name: '20 Mbit/s', bps: 20e6, latencyMs: 20 },
]
const MODES = ['prefetch', 'off'] as const
type Mode = (typeof MODES)[number]
const log = (s: string) => process.stderr.write(`bench:prefetch: ${s}\n`)

const PAGE = `<!doctype html><meta charset="utf-8"><title>prefetch</title>
<video id="v" muted playsinline style="width:640px"></video>
<script src="/hls.js"></script>
<script>
  window.start = (src, rate) => {
    const v = document.getElementById('v')
    const out = (window.bench = { ended: false, frags: 0, fragBytes: 0, levels: {}, errors: [] })
    // As the demo's player page: CMCD on every request, in the query.
    const hls = new Hls({ cmcd: {} })
    hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
      out.frags++
      out.fragBytes += d.frag.stats.total
      out.levels[d.frag.level] = (out.levels[d.frag.level] || 0) + 1
    })
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) out.errors.push(d.details) })
    v.addEventListener('ended', () => { out.ended = true })
    v.addEventListener('playing', () => { v.playbackRate = rate })
    hls.loadSource(src)
    hls.attachMedia(v)
    v.play().catch(() => {})
  }
</script>`

/** Sum of a counter's samples whose labels include `labels` (Prometheus text). */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

export interface Session {
  link: string
  mode: Mode
  round: number
  seconds: number
  ended: boolean
  playerFragments: number
  playerBytes: number
  /** Player requests of media segments the edge answered from upstream (miss or joined). */
  segmentMisses: number
  prefetch: DemandStatus['prefetch']
  /** Prefetched and held at the end, never asked for (the session ended, or the player switched). */
  unasked: number
  upstreamBytes: number
  upstreamRequests: number
  loadavg1: number
}

const USAGE = `Usage: npm run bench:prefetch -- [flags]
  --quick       one round (default: off)
  --rounds N    rounds, each playing every (link, prefetch on/off) session (default: 3, quick 1)
  --rate R      the player's playback rate (default: 2)
  -h, --help    print this and exit`

async function main(): Promise<void> {
  const values = benchArgs(USAGE, {
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      rate: { type: 'string' },
    },
  })
  const rounds = numberArg(values.rounds, '--rounds', values.quick ? 1 : 3, { integer: true, min: 1 })
  const rate = numberArg(values.rate, '--rate', 2, { min: 0 })
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`)
  const work = mkdtempSync(join(tmpdir(), 'bench-prefetch-'))
  const content = await prepareContent(root, work, { titles: 1, seconds: 60, ownContent: true, log })
  const origin = buildOriginApp({ config: {}, store: await new ContentStore(content.store).init() })
  // Every byte the origin sends: what the edge fetched upstream.
  let upstreamBytes = 0
  let upstreamRequests = 0
  origin.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'GET') return
    upstreamRequests++
    upstreamBytes += Number(reply.getHeader('content-length') ?? 0)
  })
  await origin.listen({ port: 0, host: '127.0.0.1' })
  const originUrl = `http://127.0.0.1:${(origin.server.address() as { port: number }).port}`
  const page = await pageServer(root, PAGE)
  const browser = await launchChromium()
  const sessions: Session[] = []
  try {
    for (let round = 0; round < rounds; round++)
      for (const link of LINKS)
        for (const mode of round % 2 ? [...MODES].reverse() : MODES) {
          const cacheDir = join(work, `edge-${sessions.length}`)
          const edge = await startEdge(
            edgeConfig({
              upstream: [originUrl],
              cacheDir,
              port: 0,
              host: '127.0.0.1',
              memorySize: 64e6,
              diskSize: 1e9,
              prefetchConcurrency: mode === 'prefetch' ? 4 : 0,
              logLevel: 'silent',
            }),
            { logger: false },
          )
          const up0 = { bytes: upstreamBytes, requests: upstreamRequests }
          const context = await browser.newContext()
          try {
            const tab = await shapedTab(context, page.url, link)
            const t0 = performance.now()
            await tab.evaluate(
              ([src, r]) => (window as unknown as { start(s: string, r: number): void }).start(src, r),
              [`${edge.url}/vod/player/master.m3u8`, rate] as const,
            )
            let ended = true
            await tab
              .waitForFunction(
                () => {
                  const b = (window as unknown as { bench: { ended: boolean; errors: string[] } }).bench
                  return b.ended || b.errors.length > 0
                },
                null,
                { timeout: 180_000, polling: 250 },
              )
              .catch(() => {
                ended = false
              })
            const seconds = (performance.now() - t0) / 1000
            const b = (await tab.evaluate(() => (window as unknown as { bench: unknown }).bench)) as {
              ended: boolean
              frags: number
              fragBytes: number
              errors: string[]
            }
            // Prefetches still landing settle before the counts are read.
            for (let i = 0; i < 100 && edge.app.edge.flights.size > 0; i++)
              await new Promise((r) => setTimeout(r, 50))
            const status = (await (await fetch(`${edge.url}/status`)).json()) as { demand: DemandStatus }
            const metrics = await (await fetch(`${edge.url}/metrics`)).text()
            const p = status.demand.prefetch
            const s: Session = {
              link: link.name,
              mode,
              round,
              seconds,
              ended: ended && b.ended && b.errors.length === 0,
              playerFragments: b.frags,
              playerBytes: b.fragBytes,
              segmentMisses:
                metricSum(metrics, 'cdn_edge_requests_total', { result: 'miss' }) +
                metricSum(metrics, 'cdn_edge_requests_total', { result: 'coalesced' }),
              prefetch: p,
              unasked: Math.max(0, p.started - p.used - p.late - p.wasted - p.failed),
              upstreamBytes: upstreamBytes - up0.bytes,
              upstreamRequests: upstreamRequests - up0.requests,
              loadavg1: loadavg()[0]!,
            }
            sessions.push(s)
            log(
              `round ${round + 1}/${rounds} ${link.name} ${mode}: ${fmt(seconds)} s, ${s.playerFragments} fragments, ` +
                `prefetch started ${p.started} used ${p.used} late ${p.late} unasked ${s.unasked} wasted ${p.wasted}, ` +
                `upstream ${fmt(s.upstreamBytes / 1e6)} MB (prefetch ${fmt(p.upstreamBytes / 1e6)} MB), player ${fmt(s.playerBytes / 1e6)} MB${s.ended ? '' : ' (did not end)'}`,
            )
          } finally {
            await context.close()
            await edge.app.close()
            rmSync(cacheDir, { recursive: true, force: true })
          }
        }
  } finally {
    await browser.close()
    page.close()
    await origin.close()
    rmSync(work, { recursive: true, force: true })
  }
  report(sessions, rounds, rate)
}

function report(sessions: Session[], rounds: number, rate: number): void {
  const cells = LINKS.flatMap((link) =>
    MODES.map((mode) => {
      const ss = sessions.filter((s) => s.link === link.name && s.mode === mode)
      const sum = (f: (s: Session) => number) => ss.reduce((n, s) => n + f(s), 0)
      const started = sum((s) => s.prefetch.started)
      const used = sum((s) => s.prefetch.used)
      const late = sum((s) => s.prefetch.late)
      const wasted = sum((s) => s.prefetch.wasted)
      const unasked = sum((s) => s.unasked)
      const extra = sum((s) => s.upstreamBytes) - sum((s) => s.playerBytes)
      return {
        link: link.name,
        mode,
        sessions: ss.length,
        ended: ss.filter((s) => s.ended).length,
        fragments: sum((s) => s.playerFragments),
        segmentMissShare:
          sum((s) => s.segmentMisses) /
          Math.max(
            1,
            sum((s) => s.upstreamRequests),
          ),
        started,
        used,
        late,
        wasted,
        unasked,
        usedShare: started ? used / started : Number.NaN,
        usefulShare: started ? (used + late) / started : Number.NaN,
        prefetchMB: sum((s) => s.prefetch.upstreamBytes) / 1e6,
        upstreamMB: sum((s) => s.upstreamBytes) / 1e6,
        playerMB: sum((s) => s.playerBytes) / 1e6,
        extraShare:
          extra /
          Math.max(
            1,
            sum((s) => s.playerBytes),
          ),
        upstreamPerSession: ss.map((s) => s.upstreamBytes / 1e6),
      }
    }),
  )
  const load = loadavg()
  const doc = {
    when: new Date().toISOString(),
    machine: { cores: availableParallelism(), loadavg: load },
    links: LINKS,
    rounds,
    playbackRate: rate,
    cells,
    sessions,
  }
  const md = [
    '# CMCD next-segment prefetch on a cold edge, real hls.js',
    '',
    `\`npm run bench:prefetch\`, ${doc.when.slice(0, 16)}Z, ${rounds} round(s) per link and mode, hls.js ${'`cmcd: {}`'} in headless Chromium, the prefill benchmark's 60 s title (720p/480p/360p/240p, 4 s segments) played to its end at ${rate}x, a fresh (cold) edge cache per session. Machine: ${availableParallelism()} cores, load average ${load.map((x) => x.toFixed(2)).join(' / ')} at the end.`,
    '',
    markdownTable(cells, [
      { header: 'link', cell: (c) => c.link },
      { header: 'prefetch', cell: (c) => c.mode },
      { header: 'sessions (ended)', cell: (c) => `${c.sessions} (${c.ended})`, right: true },
      { header: 'player fragments', cell: (c) => String(c.fragments), right: true },
      { header: 'started', cell: (c) => String(c.started), right: true },
      { header: 'used', cell: (c) => String(c.used), right: true },
      { header: 'late (joined)', cell: (c) => String(c.late), right: true },
      { header: 'never asked', cell: (c) => String(c.unasked), right: true },
      { header: 'wasted (evicted)', cell: (c) => String(c.wasted), right: true },
      { header: 'used share', cell: (c) => (c.started ? fmt(c.usedShare) : ''), right: true },
      { header: 'prefetch MB', cell: (c) => fmt(c.prefetchMB), right: true },
      { header: 'upstream MB', cell: (c) => fmt(c.upstreamMB), right: true },
      { header: 'player MB', cell: (c) => fmt(c.playerMB), right: true },
      {
        header: 'upstream per session MB (min/median/max)',
        cell: (c) =>
          `${fmt(Math.min(...c.upstreamPerSession))} / ${fmt(median(c.upstreamPerSession))} / ${fmt(max(c.upstreamPerSession))}`,
        right: true,
      },
    ]),
    '',
    '"used": the player asked for the object while the edge held it (a hit it would otherwise have missed); "late": it asked while the prefetch was still in flight and joined it (no second upstream fetch, but no hit); "never asked": held at the end of the session and never requested (the player switched rendition, or the title ended); "wasted": evicted before anyone asked. Upstream MB is every byte the origin sent, playlists included; player MB the fragment bytes hls.js loaded.',
  ].join('\n')
  writeResults(join(root, 'bench/results/prefetch.json'), join(root, 'bench/results/prefetch.md'), doc, md)
  process.stdout.write(`${md}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:prefetch: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
