/**
 * What the browser benchmarks (bench:startup, bench:prefetch) share: a loopback server for a
 * player page and the repository's hls.js, and headless Debian Chromium set up to autoplay.
 */
import { createReadStream, existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** Serves `page` at every path but /hls.js, which is the repository's hls.js build. */
export function pageServer(root: string, page: string): Promise<{ url: string; close(): void }> {
  const hlsJs = join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js')
  const server = createServer((req, res) => {
    if (req.url === '/hls.js') {
      res.writeHead(200, { 'content-type': 'application/javascript' })
      createReadStream(hlsJs).pipe(res)
    } else res.writeHead(200, { 'content-type': 'text/html' }).end(page)
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        close: () => server.close(),
      }),
    ),
  )
}

/** Headless Chromium that plays without a gesture and makes no connections of its own. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`)
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-networking',
    ],
  })
}

/** A tab on `url` behind a shaped link (CDP network emulation, the browser cache off). */
export async function shapedTab(
  context: BrowserContext,
  url: string,
  link: { latencyMs: number; bps: number },
): Promise<Page> {
  const tab = await context.newPage()
  await tab.goto(url)
  const cdp = await context.newCDPSession(tab)
  await cdp.send('Network.enable')
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: link.latencyMs,
    downloadThroughput: link.bps / 8,
    uploadThroughput: link.bps / 8,
  })
  return tab
}
