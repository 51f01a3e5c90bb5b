/**
 * Steering with REAL edges (five, on three sites) in front of one real origin, all on
 * loopback. Clients are placed by address through the zones file (the test connects from
 * 127.0.0.1, a trusted proxy, and names the client in X-Forwarded-For).
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import * as edgeConfig from '../../edge/config/validate.js'
import * as edgeMain from '../../edge/main.js'
import * as edgeHelpers from '../helpers/edge.js'
import { decodeAll } from '../helpers/media.js'
import * as originHelpers from '../helpers/origin.js'
import { PLACES, startSteering } from '../helpers/steering.js'

const helpers = { edge: edgeHelpers, origin: originHelpers, edgeConfig, edgeMain }

const ZONES = {
  regions: { rome: PLACES.rome, 'new-york': PLACES.newYork, tokyo: PLACES.tokyo },
  zones: [
    { cidr: '10.1.0.0/16', region: 'rome' },
    { cidr: '10.2.0.0/16', region: 'new-york' },
    { cidr: '10.3.0.0/16', region: 'tokyo' },
  ],
}
const CLIENT = { rome: '10.1.0.7', newYork: '10.2.0.7', tokyo: '10.3.0.7' }

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, text: () => body.toString('utf8') }
}

/** Walks a whole playback: master → every media playlist → init + every segment. */
async function walk(masterUrl: string): Promise<string[]> {
  const urls: string[] = []
  const text = async (u: string) => {
    urls.push(u)
    const r = await get(u)
    if (r.status !== 200) throw new Error(`${r.status} for ${u}`)
    return r.text()
  }
  const lines = (s: string) => s.split('\n').map((l) => l.trim())
  const master = await text(masterUrl)
  for (const l of lines(master).filter((l) => l && !l.startsWith('#'))) {
    const media = new URL(l, masterUrl).href
    const playlist = await text(media)
    const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)
    const parts = [...(map ? [map[1]!] : []), ...lines(playlist).filter((x) => x && !x.startsWith('#'))]
    for (const p of parts) await text(new URL(p, media).href)
  }
  return urls
}

function dirBytes(dir: string): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    n += e.isDirectory() ? dirBytes(p) : /\.(m4s|mp4|ts)$/.test(e.name) ? statSync(p).size : 0
  }
  return n
}

async function fleetOfFive(t: Test, h: typeof helpers, extra: { signingKey?: string[] } = {}) {
  const store = await h.origin.ingestedStore(t, { titles: [{ id: 'alpha', seconds: 10 }] })
  const origin = await h.origin.startOrigin(t, { store })
  const specs = [
    { id: 'rome-1', site: 'rome', ...PLACES.rome },
    { id: 'rome-2', site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', site: 'nyc', ...PLACES.newYork },
    { id: 'nyc-2', site: 'nyc', ...PLACES.newYork },
    { id: 'tokyo-1', site: 'tokyo', ...PLACES.tokyo, capacityBytesPerSec: 20_000 },
  ]
  const edges = new Map<string, { url: string; app: { close(): Promise<void> }; cacheDir: string }>()
  for (const s of specs)
    edges.set(s.id, await h.edge.startEdge(t, { upstream: origin.url, id: s.id, ...extra }))
  const fleet = specs.map((s) => ({ ...s, url: edges.get(s.id)!.url }))
  return { origin, store, edges, fleet }
}

t.test(
  'real edges: nearest, failover and return, load, rendezvous, ffmpeg through the redirect',
  async (t) => {
    const h = helpers
    const { edges, fleet, store, origin } = await fleetOfFive(t, h)
    const s = await startSteering(
      t,
      fleet,
      // Health rounds run when the test says (health.checkNow()), not on a timer; the check
      // timeout is startSteering's (30 s), so a busy machine never makes a live edge look down
      // (the killed edge refuses at once).
      { trustedProxy: ['127.0.0.0/8'], failAfter: 2, recoverAfter: 2 },
      { zones: ZONES },
    )
    const play = (title: string, client: string) =>
      get(`${s.url}/play/${title}/master.m3u8`, { 'x-forwarded-for': client })
    const chosen = async (title: string, client: string) =>
      (await play(title, client)).headers['x-steering-edge'] as string
    const edgeState = async (id: string) =>
      (
        JSON.parse((await get(`${s.url}/edges`)).text()).edges as {
          id: string
          state: string
          why: string
          overloaded: boolean
        }[]
      ).find((e) => e.id === id)!

    // Clients in each region go to their nearest site.
    t.match(await chosen('alpha', CLIENT.rome), /^rome-/)
    t.match(await chosen('alpha', CLIENT.newYork), /^nyc-/)
    t.equal(await chosen('alpha', CLIENT.tokyo), 'tokyo-1')

    // Rendezvous: one title stays on one edge of the site, for every client there...
    const home = await chosen('alpha', CLIENT.rome)
    for (let i = 1; i < 30; i++) t.equal(await chosen('alpha', `10.1.${i}.${i}`), home, `rome client ${i}`)
    // ...and many titles spread across the site's edges.
    const spread = new Map<string, number>()
    for (let i = 0; i < 200; i++) {
      const id = await chosen(`title-${i}`, CLIENT.rome)
      spread.set(id, (spread.get(id) ?? 0) + 1)
    }
    t.comment(`spread of 200 titles over the Rome site: ${JSON.stringify(Object.fromEntries(spread))}`)
    t.same([...spread.keys()].sort(), ['rome-1', 'rome-2'])
    for (const n of spread.values()) t.ok(n >= 60, `each Rome edge gets a fair share (${n}/200)`)

    // A whole playback through the redirect, ffmpeg as the HLS client.
    const before = JSON.parse((await get(`${edges.get(home)!.url}/status`)).text()).bytesServed as number
    await decodeAll(`${s.url}/play/alpha/master.m3u8?region=rome`)
    const served = JSON.parse((await get(`${edges.get(home)!.url}/status`)).text()).bytesServed - before
    const media = dirBytes(join(store, 'titles', 'alpha'))
    t.ok(
      served >= media * 0.95,
      `ffmpeg played every rendition to the end through ${home}: ${served} of ${media} media bytes`,
    )

    // Kill the title's edge: after failAfter failed checks clients go to the other Rome edge.
    const victim = edges.get(home)!
    const port = Number(new URL(victim.url).port)
    await victim.app.close()
    await s.health.checkNow()
    t.equal(await chosen('alpha', CLIENT.rome), home, 'one failed check is not enough')
    for (let i = 1; i < s.config.failAfter; i++) await s.health.checkNow()
    const moved = await chosen('alpha', CLIENT.rome)
    t.match(moved, /^rome-/, `failed over within the site after ${s.config.failAfter} failed checks`)
    t.not(moved, home)
    t.match((await edgeState(home)).why, /refused|error|timeout/)

    // Bring it back on the same port and cache: clients return after M good checks.
    const config = h.edgeConfig.edgeConfig({
      upstream: [origin.url],
      id: home,
      port,
      host: '127.0.0.1',
      cacheDir: victim.cacheDir,
      logLevel: 'silent',
      memorySize: 64e6,
      diskSize: 256e6,
    })
    const revived = await h.edgeMain.startEdge(config, { logger: false })
    t.teardown(() => revived.app.close())
    for (let i = 0; i < s.config.recoverAfter; i++) await s.health.checkNow()
    t.equal(
      await chosen('alpha', CLIENT.rome),
      home,
      `${home} is back after ${s.config.recoverAfter} good checks`,
    )
    t.equal((await edgeState(home)).state, 'up')

    // Load over threshold moves new clients away (tokyo-1's fleet capacity is 20 kB/s).
    await walk(`${edges.get('tokyo-1')!.url}/vod/alpha/master.m3u8`)
    await s.health.checkNow()
    t.ok((await edgeState('tokyo-1')).overloaded, 'tokyo-1 reported over its load threshold')
    t.match((await edgeState('tokyo-1')).why, /^overloaded: load/)
    t.not(await chosen('alpha', CLIENT.tokyo), 'tokyo-1', 'a new Tokyo client goes elsewhere')
  },
)

t.test(
  'signed URLs through real edges: a whole playback carries the token; forged, expired, other-title refused',
  async (t) => {
    const key = 'integration-signing-key-0123456789'
    const store = await helpers.origin.ingestedStore(t, {
      titles: [
        { id: 'alpha', seconds: 10 },
        { id: 'beta', seconds: 10 },
      ],
    })
    const origin = await helpers.origin.startOrigin(t, { store })
    const edge = await helpers.edge.startEdge(t, { upstream: origin.url, id: 'rome-1', signingKey: [key] })
    const s = await startSteering(t, [{ id: 'rome-1', url: edge.url, site: 'rome', ...PLACES.rome }], {
      signingKey: key,
      tokenIpv4Prefix: 24,
    })

    const loc = (await get(`${s.url}/play/alpha/master.m3u8`)).headers.location as string
    t.match(new URL(loc).pathname, /^\/t\/0,\d+,2,127\.0\.0\.0_24,[\w-]{43}\/vod\/alpha\/master\.m3u8$/)
    const urls = await walk(loc)
    t.ok(urls.length > 5, `${urls.length} requests in the playback`)
    t.ok(
      urls.every((u) =>
        new URL(u).pathname.startsWith(
          new URL(loc).pathname.slice(0, new URL(loc).pathname.indexOf('/vod/')),
        ),
      ),
      'every request carries the token',
    )
    await decodeAll(`${s.url}/play/alpha/master.m3u8`)
    t.pass('ffmpeg plays the signed title to the end through the redirect')

    const seg = urls.find((u) => u.endsWith('.m4s') || u.endsWith('.ts'))!
    const token = new URL(seg).pathname.split('/')[2]!
    const [kid, expiry, scope, net, sig] = token.split(',') as [string, string, string, string, string]
    const forged = seg.replace(
      token,
      `${kid},${expiry},${scope},${net},${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`,
    )
    const expired = seg.replace(token, `${kid},${Number(expiry) - 10 * 24 * 3600},${scope},${net},${sig}`)
    const otherNet = seg.replace(token, `${kid},${expiry},${scope},10.0.0.0_24,${sig}`)
    const otherTitle = seg.replace('/vod/alpha/', '/vod/beta/')
    const unsigned = `${edge.url}${new URL(seg).pathname.slice(new URL(seg).pathname.indexOf('/vod/'))}`
    for (const [what, u] of [
      ['forged', forged],
      ['expired', expired],
      ['other title', otherTitle],
      ['another network', otherNet],
      ['unsigned', unsigned],
    ] as const)
      t.equal((await get(u)).status, 403, `${what} → 403`)
  },
)

t.test('content steering with real edges: every pathway plays', async (t) => {
  const { fleet } = await fleetOfFive(t, helpers)
  const s = await startSteering(t, fleet, { pathways: 3 }, { zones: ZONES })
  const master = (await get(`${s.url}/cs/alpha/master.m3u8?region=new-york`)).text()
  t.match(
    master,
    /#EXT-X-CONTENT-STEERING:SERVER-URI="\/cs\/steer\?title=alpha&pathways=nyc-[^,]+,nyc-[^,]+,rome-[^&]+&region=new-york",PATHWAY-ID="nyc-/,
  )
  const serverUri = /SERVER-URI="([^"]+)"/.exec(master)![1]!
  const variants = master.split('\n').filter((l) => l.startsWith('http'))
  const pathways = new Set(variants.map((u) => new URL(u).origin))
  t.equal(pathways.size, 3, 'three edges offered')
  for (const u of variants) t.equal((await get(u)).status, 200, u)
  const steer = JSON.parse((await get(`${s.url}${serverUri}`)).text())
  t.match(steer, { VERSION: 1, TTL: 10, 'PATHWAY-PRIORITY': [/^nyc-/, /^nyc-/, /^rome-/] })
})
