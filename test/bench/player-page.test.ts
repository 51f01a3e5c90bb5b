/**
 * The browser benchmarks' shared page server and Chromium (bench/lib/player-page.ts): the page
 * and the repository's hls.js served on loopback, and hls.js loaded in the real headless browser.
 */
import { existsSync } from 'node:fs'
import t from 'tap'
import { repoRoot } from '../../bench/lib/paths.js'
import { CHROMIUM, launchChromium, pageServer, shapedTab } from '../../bench/lib/player-page.js'

const PAGE = '<!doctype html><meta charset="utf-8"><title>p</title><script src="/hls.js"></script>'

t.test('the page at any path, hls.js at /hls.js', async (t) => {
  const server = await pageServer(repoRoot(import.meta.url), PAGE)
  t.teardown(() => server.close())
  const page = await fetch(`${server.url}/anything`)
  t.equal(page.headers.get('content-type'), 'text/html')
  t.equal(await page.text(), PAGE)
  const js = await fetch(`${server.url}/hls.js`)
  t.equal(js.headers.get('content-type'), 'application/javascript')
  t.match(await js.text(), /Hls/)
})

t.test(
  'headless Chromium loads the page and hls.js',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  async (t) => {
    const server = await pageServer(repoRoot(import.meta.url), PAGE)
    t.teardown(() => server.close())
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const tab = await shapedTab(await browser.newContext(), server.url, { latencyMs: 5, bps: 20e6 })
    t.equal(await tab.evaluate('typeof Hls'), 'function')
  },
)
