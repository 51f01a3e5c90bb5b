/**
 * The demo in a real browser: Debian's chromium (installed by .ci/run) driven by playwright-core.
 * Starts the default topology in a temp dir, opens the player page, plays the longest sample
 * and checks that playback advances past several segments, that the media came from the edge
 * steering chose, that forcing a lower then a higher rendition switches (LEVEL_SWITCHED), that
 * the dashboard lists every edge, and that killing the edge in use moves playback to another
 * edge with only a short stall. Screenshots go to test-artifacts/. Needs `npm run build`.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import {
  childrenOf,
  freeBasePort,
  freshDataDir,
  rememberTitles,
  root,
  startDemo,
  stopDemo,
  topology,
  withFirstRunLock,
} from './demo-helpers.js'

const CHROMIUM = '/usr/bin/chromium'
const artifacts = join(root, 'test-artifacts')
const longest = [...topology.samples].sort((a, b) => b.seconds - a.seconds)[0]!
const tier1 = topology.edges.filter((e) => (e.tier ?? 1) === 1)

interface Steered {
  edges: { id: string; url: string; site: string }[]
}

async function status(url: string): Promise<{ bytesServed: number }> {
  return (await (await fetch(`${url}/status`)).json()) as { bytesServed: number }
}

t.test(
  'the player and the dashboard in chromium',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  async (t) => {
    t.ok(longest.seconds >= 30, `plays a sample of at least 30 s (${longest.title}, ${longest.seconds} s)`)
    const dataDir = freshDataDir()
    const profile = mkdtempSync(join(tmpdir(), 'cdn-chromium-'))
    t.teardown(() => {
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(profile, { recursive: true, force: true })
    })
    mkdirSync(artifacts, { recursive: true })
    const base = await freeBasePort()
    const demo = await withFirstRunLock(async () => {
      const d = await startDemo(dataDir, base)
      rememberTitles(dataDir)
      return d
    })
    t.teardown(() => stopDemo(demo))

    const steered = (await (await fetch(`${demo.steering}/steer?title=${longest.title}`)).json()) as Steered
    const chosen = steered.edges[0]!
    const chosenOrigin = new URL(chosen.url).origin
    const edgeUrl = (id: string) =>
      `http://127.0.0.1:${base + topology.edges.find((e) => e.id === id)!.port - topology.basePort}`
    const cors = (await fetch(chosen.url, { headers: { origin: demo.steering } })).headers.get(
      'access-control-allow-origin',
    )

    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 860 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    t.teardown(() => browser.close())

    await t.test('the fleet dashboard lists every edge', async (t) => {
      const page = await browser.newPage()
      await page.goto(demo.fleet)
      await page.waitForFunction(
        (n) => document.querySelectorAll('article.card[data-edge-id]').length === n,
        tier1.length,
        { timeout: 20_000 },
      )
      const ids = await page.$$eval('article.card[data-edge-id]', (els) =>
        els.map((e) => e.getAttribute('data-edge-id')),
      )
      t.same(ids.sort(), tier1.map((e) => e.id).sort(), 'one card per edge of the fleet')
      t.equal(await page.locator('#map [data-edge-id]').count(), tier1.length, 'every edge is on the map')
      await page.waitForFunction(() => !document.querySelector('#map .edge.unknown'), null, {
        timeout: 15_000,
      })
      await page.screenshot({ path: join(artifacts, 'demo-fleet.png'), fullPage: true })
      await page.close()
    })

    t.equal(
      cors,
      '*',
      'edges let the player page (another origin) read their responses (Access-Control-Allow-Origin)',
    )

    const page: Page = await browser.newPage()
    const media: { url: string; xCache: string | undefined; at: number }[] = []
    page.on('response', (r) => {
      if (r.url().includes(`/vod/${longest.title}/`) && /\.m4s$/.test(new URL(r.url()).pathname))
        media.push({ url: r.url(), xCache: r.headers()['x-cache'], at: Date.now() })
    })
    await page.goto(`${demo.player}${demo.player.includes('?') ? '&' : '?'}title=${longest.title}&play=1`)

    await t.test('plays through the edge steering chose', async (t) => {
      await page.waitForFunction(() => document.querySelector('video')!.currentTime > 12, null, {
        timeout: 60_000,
      })
      const state = await page.evaluate(() => ({
        edge: window.player.edge?.id,
        first: window.player.book.ranked[0]?.id,
        fragments: window.player.fragments.length,
      }))
      t.equal(state.first, chosen.id, `the player got the same first choice from steering (${chosen.id})`)
      t.equal(state.edge, chosen.id, 'and plays from it')
      t.ok(state.fragments >= 4, `several segments loaded (${state.fragments})`)
      t.ok(media.length >= 4, 'the browser fetched media segments')
      t.same(
        media.filter((m) => new URL(m.url).origin !== chosenOrigin),
        [],
        'every segment came from the chosen edge',
      )
      t.ok(
        media.every((m) => /^(HIT|MISS|STALE)/i.test(m.xCache ?? '')),
        'each segment carries the edge X-Cache header',
      )
      t.ok((await status(edgeUrl(chosen.id))).bytesServed > 0, 'the chosen edge reports bytes served')
      for (const e of tier1.filter((e) => e.site !== chosen.site))
        t.equal((await status(edgeUrl(e.id))).bytesServed, 0, `${e.id} (another site) served nothing`)
    })

    await t.test('forcing a lower then a higher rendition switches', async (t) => {
      await page.waitForFunction(() => window.player.hls.currentLevel > 0, null, { timeout: 20_000 })
      const top = await page.evaluate(() => window.player.hls.levels.length - 1)
      t.ok(top >= 1, 'the ladder has several renditions')
      for (const level of [0, top]) {
        await page.evaluate((l) => window.player.setLevel(l), level)
        await page.waitForFunction(
          (l) => window.player.switches.some((s: { to: number; auto: boolean }) => s.to === l && !s.auto),
          level,
          {
            timeout: 20_000,
          },
        )
        t.pass(`LEVEL_SWITCHED to level ${level}`)
      }
      await page.screenshot({ path: join(artifacts, 'demo-player.png'), fullPage: true })
    })

    await t.test('killing the edge in use moves playback to another edge with a short stall', async (t) => {
      await page.evaluate(() => {
        const v = document.querySelector('video')!
        const w = window as unknown as { stall: { ms: number; since: number } }
        w.stall = { ms: 0, since: 0 }
        v.addEventListener('waiting', () => {
          w.stall.since = performance.now()
        })
        v.addEventListener('playing', () => {
          if (w.stall.since) w.stall.ms += performance.now() - w.stall.since
          w.stall.since = 0
        })
      })
      const victim = childrenOf(demo.proc.pid!).find(
        (c) => c.args.includes('--id') && c.args[c.args.indexOf('--id') + 1] === chosen.id,
      )
      t.ok(victim, `found the process of ${chosen.id}`)
      process.kill(victim!.pid, 'SIGKILL')
      const killedAt = Date.now()
      const t0 = await page.evaluate(() => document.querySelector('video')!.currentTime)
      const until = Math.min(t0 + 12, longest.seconds - 1)
      await page.waitForFunction((u) => document.querySelector('video')!.currentTime > u, until, {
        timeout: 60_000,
      })
      const after = await page.evaluate(() => ({
        edge: window.player.edge?.id,
        failovers: window.player.events.filter((e: { type: string }) => e.type === 'failover').length,
        stallMs: (window as unknown as { stall: { ms: number } }).stall.ms,
      }))
      t.not(after.edge, chosen.id, `now playing from ${after.edge}`)
      t.ok(after.failovers >= 1, 'the player logged the failover')
      const later = media.filter((m) => m.at > killedAt)
      t.ok(
        later.length >= 1 && later.every((m) => new URL(m.url).origin !== chosenOrigin),
        'segments after the kill came from another edge',
      )
      t.ok(after.stallMs < 8000, `stall after the kill was short (${Math.round(after.stallMs)} ms)`)
      await page.screenshot({ path: join(artifacts, 'demo-player-failover.png'), fullPage: true })
    })
  },
)

declare global {
  interface Window {
    // The page's own state object, plain JS.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    player: any
  }
}
