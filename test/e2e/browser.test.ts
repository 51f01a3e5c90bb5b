/**
 * The demo in a real browser: Debian's chromium (installed by .ci/run) driven by playwright-core.
 * Starts the default topology in a temp dir, over HTTPS with the CA the demo made: chromium
 * trusts exactly that CA's key (--ignore-certificate-errors-spki-list), not every certificate.
 * The player page is served over HTTPS by a tiny static server of its own (page-server.ts), so
 * it lives on another origin than steering and every edge, as on any site that embeds a player:
 * everything it asks steering and the edges is cross-origin, and any http URL would be blocked
 * as mixed content. The playlists and segments must come over HTTP/2 (chromium's network layer
 * says which protocol each used).
 * It plays the longest sample through steering's ranked list and checks that playback advances
 * past several segments from the edge steering chose, that forcing a lower then a higher
 * rendition switches (LEVEL_SWITCHED), and that killing the edge in use moves playback to
 * another edge without a stall (the video never waits for data); then it plays through HLS Content Steering and through
 * /play's redirect. The dashboard must list every edge and the delivery tree above them (the
 * tier-2 parent and the origin), and show the killed edge's figures as stale. Every wait is on
 * an event or a DOM state. Screenshots go to test-artifacts/. Needs `npm run build`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import t from 'tap'
import { spkiHash } from '../../src/cli/demo/certs.js'
import { TLS_PORT_OFFSET } from '../../src/cli/demo/plan.js'
import { childrenOf, freshDataDir, root, startDemo, stopDemo, topology } from './demo-helpers.js'
import { startPageServer } from './page-server.js'

const CHROMIUM = '/usr/bin/chromium'
const artifacts = join(root, 'test-artifacts')
const longest = [...topology.samples].sort((a, b) => b.seconds - a.seconds)[0]!
const tier1 = topology.edges.filter((e) => (e.tier ?? 1) === 1)
const parents = topology.edges.filter((e) => e.tier === 2)

interface Steered {
  edges: { id: string; url: string; site: string }[]
}

/**
 * The protocol of every playlist and segment a page loads, as chromium's network layer records
 * it (DevTools protocol: Network.responseReceived). The page's own resource timing would say the
 * same (nextHopProtocol) but hides it for cross-origin answers without Timing-Allow-Origin.
 */
async function mediaProtocols(
  browser: BrowserContext,
  page: Page,
  title: string,
): Promise<{ name: string; protocol: string }[]> {
  const out: { name: string; protocol: string }[] = []
  const cdp = await browser.newCDPSession(page)
  cdp.on('Network.responseReceived', (e) => {
    const url = new URL(e.response.url)
    if (url.pathname.includes(`/vod/${title}/`) && /\.(m3u8|m4s|mp4)$/.test(url.pathname))
      out.push({ name: url.pathname, protocol: e.response.protocol ?? '' })
  })
  await cdp.send('Network.enable')
  return out
}

/** Every 404 a page meets (a missing favicon, a script), by URL. */
function notFound(page: Page): string[] {
  const out: string[] = []
  page.on('response', (r) => {
    if (r.status() === 404) out.push(r.url())
  })
  return out
}

/** Mixed-content and certificate complaints the page's console or network meets. */
function tlsProblems(page: Page): string[] {
  const out: string[] = []
  page.on('console', (m) => {
    if (/mixed content|ERR_CERT|ERR_SSL/i.test(m.text())) out.push(m.text())
  })
  page.on('requestfailed', (r) => {
    if (/ERR_CERT|ERR_SSL|blocked:mixed/i.test(r.failure()?.errorText ?? ''))
      out.push(`${r.url()}: ${r.failure()!.errorText}`)
  })
  return out
}

/** The dashboard, once it has drawn every tier-1 edge and the tree above them. */
async function openFleet(browser: BrowserContext, url: string) {
  const page = await browser.newPage()
  const missing = notFound(page)
  const insecure = tlsProblems(page)
  await page.goto(url)
  await page.waitForFunction(
    ([n, m]) =>
      document.querySelectorAll('article.card[data-edge-id]').length === n &&
      document.querySelectorAll('article.card[data-node-id]').length === m,
    [tier1.length, parents.length + 1] as const,
    { timeout: 0 },
  )
  return { page, missing, insecure }
}

t.test(
  'the player on another origin and the dashboard, in chromium',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  async (t) => {
    const dataDir = freshDataDir()
    const profile = mkdtempSync(join(tmpdir(), 'cdn-chromium-'))
    t.teardown(() => {
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(profile, { recursive: true, force: true })
    })
    mkdirSync(artifacts, { recursive: true })
    const demo = await startDemo(dataDir)
    const base = demo.base + TLS_PORT_OFFSET
    t.teardown(() => stopDemo(demo))
    const fetch = demo.fetch
    const status = async (url: string) =>
      (await (await fetch(`${url}/status`)).json()) as {
        bytesServed: number
        demand: {
          misses: Record<string, number>
          prefetch: {
            started: number
            used: number
            late: number
            held: number
            upstreamBytes: number
            cmcd: { valid: number; malformed: number }
          }
        }
      }
    const tlsDir = join(dataDir, 'tls')
    const site = await startPageServer(root, {
      cert: readFileSync(join(tlsDir, 'demo-chain.pem'), 'utf8'),
      key: readFileSync(join(tlsDir, 'demo-key.pem'), 'utf8'),
    })
    t.teardown(() => site.close())
    t.match(demo.steering, /^https:/, 'the demo serves steering over https')
    t.match(site.url, /^https:/, 'and the page is on https too')

    const steered = (await (await fetch(`${demo.steering}/steer?title=${longest.title}`)).json()) as Steered
    // Steering's first choice for this title; the player asks steering itself later, and a health
    // check or a load reading in between can move the first place (see the subtest below).
    let chosen = steered.edges[0]!
    let chosenOrigin = new URL(chosen.url).origin
    t.ok(
      steered.edges.every((e) => e.url.startsWith('https://')),
      'steering hands out https edges only',
    )
    const edgeUrl = (id: string) =>
      `https://127.0.0.1:${base + topology.edges.find((e) => e.id === id)!.port - topology.basePort}`
    const edgeOrigins = tier1.map((e) => new URL(edgeUrl(e.id)).origin)
    t.not(site.url, demo.steering, `the page (${site.url}) is not on steering's origin (${demo.steering})`)
    t.notOk(edgeOrigins.includes(site.url), 'nor on any edge')
    const playerUrl = (via: string) =>
      `${site.url}/?steering=${encodeURIComponent(demo.steering)}&title=${longest.title}&via=${via}&play=1`

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
        '--autoplay-policy=no-user-gesture-required',
        // Trust the demo's CA (its key, by hash) and nothing else: no blanket ignoreHTTPSErrors.
        `--ignore-certificate-errors-spki-list=${await spkiHash(demo.caCert)}`,
      ],
    })
    t.teardown(() => browser.close())
    // Waits end on the page's events and states; tap's timeout bounds the file, not a guess per step.
    browser.setDefaultTimeout(0)

    await t.test('the fleet dashboard shows every edge and the tree above them', async (t) => {
      const { page, missing, insecure } = await openFleet(browser, demo.fleet)
      t.equal(await page.evaluate(() => location.protocol), 'https:', 'the dashboard is on https')
      const ids = await page.$$eval('article.card[data-edge-id]', (els) =>
        els.map((e) => e.getAttribute('data-edge-id')),
      )
      t.same(ids.sort(), tier1.map((e) => e.id).sort(), 'one card per edge of the fleet')
      const nodes = await page.$$eval('article.card[data-node-id]', (els) =>
        els.map((e) => e.getAttribute('data-node-id')),
      )
      t.same(
        nodes.sort(),
        [...parents.map((e) => e.id), topology.origin.id ?? 'origin'].sort(),
        'parent and origin',
      )
      t.equal(await page.locator('#map [data-edge-id]').count(), tier1.length, 'every edge is on the map')
      t.equal(await page.locator('#map [data-node-id]').count(), parents.length, 'the parent too')
      t.ok((await page.locator('#map path.land').getAttribute('d'))?.length, 'over real coastlines')
      await page.waitForFunction(
        () => !document.querySelector('#map .edge.unknown, #map .node.unknown, article.card.unknown'),
        null,
        { timeout: 0 },
      )
      t.equal(
        await page.locator('article.card[data-stale="true"]').count(),
        0,
        'nothing is stale while all run',
      )
      t.equal(await page.locator('.hits-legend .key').count(), 3, 'a legend names the hit-ratio colours')
      await page.screenshot({ path: join(artifacts, 'demo-fleet.png'), fullPage: true })
      await page.setViewportSize({ width: 390, height: 844 })
      await page.waitForFunction(
        () => Number(document.querySelector('#map')!.getAttribute('viewBox')!.split(' ')[2]) < 400,
      )
      await page.screenshot({ path: join(artifacts, 'demo-fleet-phone.png'), fullPage: true })
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      t.ok(overflow <= 0, `nothing wider than a phone (${overflow} px over)`)
      t.same(missing, [], 'no 404 on the dashboard (favicon included)')
      t.same(insecure, [], 'no mixed content nor certificate error on the dashboard')
      await page.close()
    })

    const page: Page = await browser.newPage()
    const missing = notFound(page)
    const insecure = tlsProblems(page)
    const protocols = await mediaProtocols(browser, page, longest.title)
    const media: { url: string; xCache: string | undefined; at: number }[] = []
    page.on('response', (r) => {
      if (r.url().includes(`/vod/${longest.title}/`) && /\.m4s$/.test(new URL(r.url()).pathname))
        // When the request was sent (wall clock), not when its response event reached this process:
        // under load that event can arrive after the kill for a segment the victim served before it.
        media.push({ url: r.url(), xCache: r.headers()['x-cache'], at: r.request().timing().startTime })
    })
    await page.goto(playerUrl('steer'))

    await t.test('plays through the edge steering chose, from another origin', async (t) => {
      await page.waitForFunction(() => document.querySelector('video')!.currentTime > 12, null, {
        timeout: 0,
      })
      const state = await page.evaluate(() => ({
        origin: location.origin,
        edge: window.player.edge?.id,
        first: window.player.book.ranked[0]?.id,
        fragments: window.player.fragments.length,
        fatal: window.player.events.filter((e: { type: string }) => e.type === 'fatal').length,
        muted: document.querySelector('video')!.muted,
        notice: !document.querySelector<HTMLElement>('#muted')!.hidden,
      }))
      t.equal(state.origin, site.url, 'the page runs on its own origin')
      const ranked = steered.edges.map((e) => e.id)
      const theirs = steered.edges.find((e) => e.id === state.first)
      t.ok(
        theirs,
        `the player's first choice (${state.first}) is in steering's ranking (${ranked.join(', ')})`,
      )
      if (theirs && theirs.id !== chosen.id) {
        t.comment(`steering's first choice moved from ${chosen.id} to ${theirs.id} between the two asks`)
        chosen = theirs
        chosenOrigin = new URL(theirs.url).origin
      }
      t.equal(state.edge, chosen.id, `and plays from it (${chosen.id})`)
      t.equal(state.fatal, 0, 'no fatal error')
      t.ok(state.fragments >= 4, `several segments loaded (${state.fragments})`)
      t.ok(state.muted && state.notice, 'it plays muted and says so')
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
      // hls.js sends CMCD (the page's `cmcd: {}`): the edge prefetches the next segment it names.
      t.ok(
        media.every((m) => new URL(m.url).searchParams.get('CMCD')?.includes('nor=')),
        'every segment request carries CMCD with the next object (nor)',
      )
      const { demand } = await status(edgeUrl(chosen.id))
      t.comment(
        `segment requests: ${media
          .slice(0, 2)
          .map((m) => m.url)
          .join(' ')}`,
      )
      t.comment(
        `${chosen.id} prefetch: ${JSON.stringify(demand.prefetch)}; misses: ${JSON.stringify(demand.misses)}`,
      )
      t.ok(
        demand.prefetch.cmcd.valid >= media.length,
        `the edge read every segment's CMCD (${demand.prefetch.cmcd.valid})`,
      )
      t.equal(demand.prefetch.cmcd.malformed, 0, 'none malformed')
      // The demo prefills its titles: the next segment named is mostly held already, else prefetched.
      t.ok(
        demand.prefetch.held + demand.prefetch.started > 0,
        `the edge acted on nor (${demand.prefetch.held} held already, ${demand.prefetch.started} prefetched)`,
      )
      for (const e of tier1.filter((e) => e.site !== chosen.site))
        t.equal((await status(edgeUrl(e.id))).bytesServed, 0, `${e.id} (another site) served nothing`)
      const words = await page.evaluate(async (module) => {
        const { describeError } = (await import(module)) as { describeError: (d: unknown) => string }
        return describeError({ details: 'fragLoadError', fatal: false, response: { code: 503 } })
      }, '/assets/words.js')
      t.equal(words, 'A segment could not be loaded (HTTP 503); retrying.', 'errors are told in words')
      t.ok(
        protocols.some((p) => p.name.endsWith('.m3u8')) && protocols.some((p) => p.name.endsWith('.m4s')),
        `chromium recorded the playlists and segments (${protocols.length})`,
      )
      t.same(
        protocols.filter((p) => p.protocol !== 'h2'),
        [],
        'every playlist and segment came over HTTP/2',
      )
      t.same(insecure, [], 'no mixed content nor certificate error')
    })

    await t.test('forcing a lower then a higher rendition switches', async (t) => {
      const top = await page.evaluate(() => window.player.hls.levels.length - 1)
      t.ok(top >= 1, 'the ladder has several renditions')
      for (const level of [0, top]) {
        await page.evaluate((l) => window.player.setLevel(l), level)
        await page.waitForFunction(
          (l) => window.player.switches.some((s: { to: number; auto: boolean }) => s.to === l && !s.auto),
          level,
          { timeout: 0 },
        )
        t.pass(`LEVEL_SWITCHED to level ${level}`)
      }
      await page.screenshot({ path: join(artifacts, 'demo-player.png'), fullPage: true })
    })

    await t.test('killing the edge in use moves playback to another edge without a stall', async (t) => {
      // Play the title again from its start. Playback ran on in real time through the subtests above:
      // on a busy machine it can be so near the end that every segment is already fetched, and the
      // failover would have nothing left to show (CI's node20 leg met it).
      await page.evaluate((title) => window.player.play(title), longest.title)
      // Media buffered ahead: the player has time to move to another edge before it runs out.
      await page.waitForFunction(
        () => {
          const v = document.querySelector('video')!
          const ahead = v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : 0
          return window.player.edge && v.currentTime > 0 && ahead >= 8
        },
        null,
        { timeout: 0 },
      )
      const inUse = await page.evaluate(() => window.player.edge!.id)
      if (inUse !== chosen.id) {
        const theirs = steered.edges.find((e) => e.id === inUse)
        t.ok(theirs, `the edge the player went back to (${inUse}) is in steering's ranking`)
        t.comment(`the player now plays from ${inUse}, not ${chosen.id}`)
        chosen = theirs!
        chosenOrigin = new URL(chosen.url).origin
      }
      const at = await page.evaluate(() => document.querySelector('video')!.currentTime)
      t.ok(at + 12 < longest.seconds - 8, `enough of the title is left to fetch after the kill (at ${at} s)`)
      await page.evaluate(() => {
        const v = document.querySelector('video')!
        const w = window as unknown as { stalls: number }
        w.stalls = 0
        v.addEventListener('waiting', () => {
          w.stalls++
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
        timeout: 0,
      })
      const after = await page.evaluate(() => ({
        edge: window.player.edge?.id,
        failovers: window.player.events.filter((e: { type: string }) => e.type === 'failover').length,
        stalls: (window as unknown as { stalls: number }).stalls,
      }))
      t.not(after.edge, chosen.id, `now playing from ${after.edge}`)
      t.ok(after.failovers >= 1, 'the player logged the failover')
      const later = media.filter((m) => m.at > killedAt) // requested after the kill
      t.ok(
        later.length >= 1 && later.every((m) => new URL(m.url).origin !== chosenOrigin),
        'segments after the kill came from another edge',
      )
      t.equal(after.stalls, 0, 'no stall (the video never waited for data) after the kill')
      await page.screenshot({ path: join(artifacts, 'demo-player-failover.png'), fullPage: true })
      t.same(missing, [], 'no 404 on the player page')
      t.same(insecure, [], 'no mixed content nor certificate error after the failover')
      await page.close()
    })

    await t.test('the dashboard shows the killed edge as down, its figures stale', async (t) => {
      const { page } = await openFleet(browser, demo.fleet)
      const card = `article.card[data-edge-id="${chosen.id}"]`
      await page.waitForFunction(
        (sel) => document.querySelector(sel)?.getAttribute('data-stale') === 'true',
        card,
        {
          timeout: 0,
        },
      )
      t.match(await page.locator(`${card} .pill`).textContent(), /down/i, `${chosen.id} is down`)
      t.match(
        await page.locator(`${card} .stale-note`).textContent(),
        /figures from .+ ago/,
        'with how long ago its figures were true',
      )
      t.equal(
        await page.locator(`#map .edge.down.stale[data-edge-id="${chosen.id}"]`).count(),
        1,
        'greyed on the map',
      )
      // Every edge's card splits its misses by cause (the killed one keeps its last figures).
      const splits = await page.$$eval('article.card[data-edge-id] .misses', (els) =>
        els.map((e) => Object.keys(JSON.parse(e.getAttribute('data-misses') ?? '{}') as object).sort()),
      )
      t.equal(splits.length, tier1.length, 'a misses row on every edge card')
      for (const keys of splits)
        t.same(keys, ['capacity', 'content', 'freshness', 'health', 'prefetch-late', 'variant'], 'by cause')
      for (const id of [...parents.map((e) => e.id), topology.origin.id ?? 'origin'])
        t.match(
          await page.locator(`article.card[data-node-id="${id}"] .pill`).textContent(),
          /up/i,
          `${id} is up`,
        )
      await page.screenshot({ path: join(artifacts, 'demo-fleet-stale.png'), fullPage: true })
      await page.close()
    })

    await t.test('plays through HLS Content Steering from another origin', async (t) => {
      const cs = await browser.newPage()
      const csMissing = notFound(cs)
      await cs.goto(playerUrl('cs'))
      await cs.waitForFunction(
        () =>
          document.querySelector('video')!.currentTime > 2 &&
          window.player.steeringManifests.length >= 1 &&
          window.player.fragments.length >= 2,
        null,
        { timeout: 0 },
      )
      const state = await cs.evaluate(() => ({
        edge: window.player.edge?.id,
        priority: window.player.steeringManifests.at(-1).priority,
        origins: [...new Set(window.player.fragments.map((f: { url: string }) => new URL(f.url).origin))],
      }))
      t.ok(state.priority.length >= 1, `steering's manifest ranks pathways (${state.priority.join(' > ')})`)
      t.notOk(state.priority.includes(chosen.id), 'without the dead edge')
      t.equal(state.edge, state.priority[0], 'hls.js plays the first pathway')
      t.ok(
        (state.origins as string[]).every((o) => edgeOrigins.includes(o) && o !== chosenOrigin),
        'segments come from live edges',
      )
      await cs.screenshot({ path: join(artifacts, 'demo-player-cs.png'), fullPage: true })
      t.same(csMissing, [], 'no 404')
      await cs.close()
    })

    await t.test("plays through /play's redirect from another origin", async (t) => {
      const play = await browser.newPage()
      await play.goto(playerUrl('play'))
      await play.waitForFunction(
        () => document.querySelector('video')!.currentTime > 1 && window.player.fragments.length >= 1,
        null,
        { timeout: 0 },
      )
      const got = await play.evaluate(() => ({
        origin: new URL(window.player.fragments[0].url).origin,
        edge: window.player.edge?.id,
      }))
      t.ok(
        edgeOrigins.includes(got.origin) && got.origin !== chosenOrigin,
        `served by a live edge (${got.origin})`,
      )
      t.equal(
        got.edge,
        tier1.find((e) => edgeUrl(e.id) === got.origin)?.id,
        `the page names it (${got.edge})`,
      )
      await play.close()
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
