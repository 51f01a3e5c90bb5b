/**
 * Startup benchmark: `npm run bench:startup` (after `npm run build`; `-- --quick` for 2 rounds).
 *
 * Time to first frame in a throttled Chromium (Debian's, driven by playwright-core; the link is
 * shaped with CDP Network.emulateNetworkConditions) for the demo's feature title, published with
 * masters that differ only in order (content.ts): `top-first`, the highest rendition listed
 * first as masters were written before; `startup-first`, the mid-ladder startup variant first
 * as ingest writes them now; `low-first` (a 600 kbit/s startup bitrate), for the trade-off. hls.js with its default config (what a site embedding it gets)
 * starts with the first variant listed. The player page, an origin and an edge (warmed with
 * every object, so the link is what is measured) run on loopback.
 *
 * Every round opens a fresh browser context (empty cache) per (link, order), the orders
 * interleaved and flipped every round. Time is from hls.loadSource() to the first video frame
 * presented (requestVideoFrameCallback), with the rendition of that frame and the bytes loaded
 * before it. Writes bench/results/startup.{json,md}: min/median/max per cell, and the machine's
 * load (load average and the busy share of all cores during each run).
 */
import { existsSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { edgeConfig } from '../../edge/config/validate.js'
import { startEdge } from '../../edge/main.js'
import { buildOriginApp } from '../../origin/app.js'
import { ContentStore } from '../../origin/store/content-store.js'
import { benchArgs, numberArg } from '../lib/args.js'
import { machineBusySeconds } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { CHROMIUM, launchChromium, pageServer, shapedTab } from '../lib/player-page.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { max, median } from '../lib/stats.js'
import { ORDERS, type Order, prepareContent } from './content.js'

const root = repoRoot(import.meta.url)
const USAGE = `Usage: npm run bench:startup -- [flags]
  --quick       2 rounds instead of 5 (default: off)
  --rounds N    rounds of every (link, order) cell (default: 5, quick 2)
  -h, --help    print this and exit`
const args = benchArgs(USAGE, { options: { quick: { type: 'boolean' }, rounds: { type: 'string' } } })
const quick = args.quick === true
const ROUNDS = numberArg(args.rounds, '--rounds', quick ? 2 : 5, { integer: true, min: 1 })
/** The links: bits/s down, and the latency CDP adds to every request (ms). */
const LINKS = [
  { name: '1.5 Mbit/s', bps: 1.5e6, latencyMs: 40 },
  { name: '20 Mbit/s', bps: 20e6, latencyMs: 20 },
]
const log = (s: string) => process.stderr.write(`bench:startup: ${s}\n`)

const PAGE = `<!doctype html><meta charset="utf-8"><title>startup</title>
<video id="v" muted playsinline style="width:640px"></video>
<script src="/hls.js"></script>
<script>
  window.start = (src) => {
    const v = document.getElementById('v')
    const out = (window.bench = { t0: performance.now(), firstFrame: null, height: null, bytes: 0, frags: [], firstLevel: null, levels: [] })
    const hls = new Hls()
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
      out.levels = d.levels.map((l) => l.height)
      out.firstLevel = hls.firstLevel
    })
    hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
      if (out.firstFrame === null) out.bytes += d.frag.stats.total
      out.frags.push({ level: d.frag.level, sn: d.frag.sn, bytes: d.frag.stats.total, at: performance.now() - out.t0 })
    })
    v.requestVideoFrameCallback((_now, meta) => {
      out.firstFrame = performance.now() - out.t0
      out.height = meta.height
    })
    hls.loadSource(src)
    hls.attachMedia(v)
    v.play().catch(() => {})
  }
</script>`

/** Fetches every object of a title through the edge, so measured runs are all cache hits. */
async function warm(edge: string, title: string): Promise<number> {
  const get = async (u: string) => {
    const r = await fetch(u)
    if (!r.ok) throw new Error(`${r.status} for ${u}`)
    return r
  }
  const uris = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'))
  const master = `${edge}/vod/${title}/master.m3u8`
  let n = 0
  for (const media of uris(await (await get(master)).text())) {
    const url = new URL(media, master).href
    const text = await (await get(url)).text()
    const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1]
    for (const seg of [...(map ? [map] : []), ...uris(text)]) {
      await (await get(new URL(seg, url).href)).arrayBuffer()
      n++
    }
  }
  return n
}

interface Run {
  link: string
  order: Order
  round: number
  ttffMs: number
  height: number | null
  firstLevelHeight: number | null
  bytesBeforeFirstFrame: number
  fragsBeforeFirstFrame: number
  busyShare: number
  loadavg1: number
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`)
  const content = await prepareContent(join(root, '.cache', 'bench', 'startup'), log)
  const origin = buildOriginApp({ config: {}, store: await new ContentStore(content.store).init() })
  await origin.listen({ port: 0, host: '127.0.0.1' })
  const originUrl = `http://127.0.0.1:${(origin.server.address() as { port: number }).port}`
  const cacheDir = join(root, '.cache', 'bench', 'startup', `edge-${process.pid}`)
  const edge = await startEdge(
    edgeConfig({
      upstream: [originUrl],
      cacheDir,
      port: 0,
      host: '127.0.0.1',
      memorySize: 512e6,
      logLevel: 'silent',
    }),
    { logger: false },
  )
  for (const title of Object.values(content.titles))
    log(`warmed ${await warm(edge.url, title)} objects of ${title}`)
  const page = await pageServer(root, PAGE)
  const browser = await launchChromium()
  const runs: Run[] = []
  const cores = availableParallelism()
  try {
    for (let round = 0; round < ROUNDS; round++)
      for (const link of LINKS) {
        const orders = Object.keys(ORDERS) as Order[]
        for (const order of round % 2 ? orders.reverse() : orders) {
          const context = await browser.newContext()
          const tab = await shapedTab(context, page.url, link)
          const busy0 = machineBusySeconds()
          const t0 = performance.now()
          await tab.evaluate(
            (src) => (window as unknown as { start(s: string): void }).start(src),
            `${edge.url}/vod/${content.titles[order]}/master.m3u8`,
          )
          await tab.waitForFunction(
            () => (window as unknown as { bench: { firstFrame: number | null } }).bench.firstFrame !== null,
            null,
            {
              timeout: 120_000,
            },
          )
          const wall = (performance.now() - t0) / 1000
          const b = (await tab.evaluate(() => (window as unknown as { bench: unknown }).bench)) as {
            firstFrame: number
            height: number | null
            bytes: number
            frags: { at: number }[]
            firstLevel: number | null
            levels: number[]
          }
          const run: Run = {
            link: link.name,
            order,
            round,
            ttffMs: Math.round(b.firstFrame),
            height: b.height,
            firstLevelHeight: b.firstLevel === null ? null : (b.levels[b.firstLevel] ?? null),
            bytesBeforeFirstFrame: b.bytes,
            fragsBeforeFirstFrame: b.frags.filter((f) => f.at <= b.firstFrame).length,
            busyShare: (machineBusySeconds() - busy0) / (wall * cores),
            loadavg1: loadavg()[0]!,
          }
          runs.push(run)
          log(
            `round ${round + 1}/${ROUNDS} ${link.name} ${order}: first frame ${run.ttffMs} ms (${run.height}p)`,
          )
          await context.close()
        }
      }
  } finally {
    await browser.close()
    page.close()
    await edge.app.close()
    await origin.close()
    const { rm } = await import('node:fs/promises')
    await rm(cacheDir, { recursive: true, force: true })
  }
  report(
    runs,
    content.version.renditions.map((r) => `${r.name} ${fmt(r.bandwidth / 1e6)} Mbit/s`),
  )
}

function report(runs: Run[], ladder: string[]): void {
  const cells = LINKS.flatMap((link) =>
    (Object.keys(ORDERS) as Order[]).map((order) => {
      const rs = runs.filter((r) => r.link === link.name && r.order === order)
      const t = rs.map((r) => r.ttffMs)
      return {
        link: link.name,
        order,
        startsAt: rs[0]?.firstLevelHeight ? `${rs[0].firstLevelHeight}p` : 'n/a',
        firstFrame: [...new Set(rs.map((r) => `${r.height}p`))].join(', '),
        minMs: Math.min(...t),
        medianMs: median(t),
        maxMs: max(t),
        medianBytes: median(rs.map((r) => r.bytesBeforeFirstFrame)),
        busy: median(rs.map((r) => r.busyShare)),
        rounds: rs.length,
      }
    }),
  )
  const gains = LINKS.map((link) => {
    const top = cells.find((c) => c.link === link.name && c.order === 'top-first')!
    const mid = cells.find((c) => c.link === link.name && c.order === 'startup-first')!
    return {
      link: link.name,
      topMs: top.medianMs,
      startupMs: mid.medianMs,
      speedup: top.medianMs / mid.medianMs,
    }
  })
  const load = loadavg()
  const doc = {
    when: new Date().toISOString(),
    machine: { cores: availableParallelism(), loadavg: load },
    ladder,
    links: LINKS,
    rounds: ROUNDS,
    cells,
    gains,
    runs,
  }
  const md = [
    '# Startup: time to first frame, top rendition first vs startup variant first',
    '',
    `\`npm run bench:startup\`, ${new Date().toISOString().slice(0, 16)}Z, ${ROUNDS} rounds, Chromium throttled with CDP, hls.js defaults, edge warm.`,
    `Ladder (peak BANDWIDTH): ${ladder.join(', ')}. Machine: ${availableParallelism()} cores, load average ${load.map((x) => x.toFixed(2)).join(' / ')} at the end.`,
    '',
    markdownTable(cells, [
      { header: 'link', cell: (c) => c.link },
      { header: 'master order', cell: (c) => c.order },
      { header: 'starts at', cell: (c) => c.startsAt },
      { header: 'first frame from', cell: (c) => c.firstFrame },
      { header: 'min ms', cell: (c) => fmt(c.minMs), right: true },
      { header: 'median ms', cell: (c) => fmt(c.medianMs), right: true },
      { header: 'max ms', cell: (c) => fmt(c.maxMs), right: true },
      { header: 'bytes before it (median)', cell: (c) => fmt(c.medianBytes), right: true },
      { header: 'machine busy (median)', cell: (c) => `${Math.round(c.busy * 100)}%`, right: true },
    ]),
    '',
    markdownTable(gains, [
      { header: 'link', cell: (g) => g.link },
      { header: 'top-first median ms', cell: (g) => fmt(g.topMs), right: true },
      { header: 'startup-first median ms', cell: (g) => fmt(g.startupMs), right: true },
      { header: 'faster by', cell: (g) => `${fmt(g.speedup)}x`, right: true },
    ]),
    '',
    '"machine busy" is the share of all cores in use (every process, the browser included) while the run waited for its first frame.',
  ].join('\n')
  writeResults(join(root, 'bench/results/startup.json'), join(root, 'bench/results/startup.md'), doc, md)
  process.stdout.write(`${md}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:startup: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
