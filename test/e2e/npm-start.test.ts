/**
 * `npm start` itself, run through npm as a new user would (`npm start -- --data-dir DIR
 * --base-port N`) in its own process group, on a temp data dir and a free port range. It must
 * print its URLs (HTTPS, with the local CA it made and how to trust it), each must answer over
 * HTTP/2 trusting that CA, plain HTTP must still answer on every node's own port, Ctrl-C (SIGINT to the group, as a terminal sends it) must
 * stop every node it started, and a second start must reuse the data (no new transcode, the same
 * CA). The
 * origin's store starts with the sample titles made once for the suite (see demo-helpers.ts).
 * Needs `npm run build` (the nodes run from dist/).
 */
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { TLS_PORT_OFFSET } from '../../src/cli/demo/plan.js'
import { until } from '../helpers/wait.js'
import {
  alive,
  childrenOf,
  freshDataDir,
  type RunningDemo,
  startDemo,
  stopDemo,
  topology,
} from './demo-helpers.js'
import { root } from '../helpers/repo.js'

const cli = join(root, 'dist/src/cli/main.js')

/** The demo process under npm (npm → sh → node …/main.js demo), found among its descendants. */
function demoPid(demo: RunningDemo): number {
  const queue = [demo.proc.pid!]
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const c of childrenOf(pid)) {
      if (c.args.some((a) => a.endsWith('dist/src/cli/main.js')) && c.args.includes('demo')) return c.pid
      queue.push(c.pid)
    }
  }
  throw new Error('no demo process under npm start')
}

t.test('npm start runs the demo, prints where to look, and Ctrl-C stops every node', async (t) => {
  const dataDir = freshDataDir()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const demo = await startDemo(dataDir, undefined, { npm: true })
  const base = demo.base
  t.teardown(() => stopDemo(demo))
  const nodes = 2 + topology.edges.length
  const https = base + TLS_PORT_OFFSET
  const fetch = demo.fetch
  t.ok(demo.player.startsWith(`https://127.0.0.1:${https}/`), `player URL printed: ${demo.player}`)
  t.equal(demo.fleet, `https://127.0.0.1:${https}/fleet`, 'fleet dashboard URL printed')
  t.equal(demo.metrics.length, nodes, 'one metrics URL per node')
  t.ok(
    demo.metrics.every((u) => u.startsWith('https://')),
    'every node over https',
  )
  t.match(demo.stdout(), /Ctrl-C/, 'says how to stop')
  t.ok(demo.stdout().includes(demo.caCert), 'names the CA file to trust')
  t.match(demo.stdout(), /update-ca-certificates/, 'says how to trust it on Debian')
  t.match(demo.stdout(), /security add-trusted-cert/, 'on macOS')
  t.match(demo.stdout(), /certutil -d sql:\$HOME\/\.pki\/nssdb/, 'and for Chrome on Linux')
  t.match(demo.stdout(), /--tls false/, 'and how to do without it')
  const ca = new X509Certificate(readFileSync(demo.caCert))
  t.ok(ca.ca, 'the CA file holds a CA certificate')

  // demo.fetch trusts the demo's CA (and only it) and speaks HTTP/2: every URL below is https.
  const plainAgent = new Agent()
  t.teardown(() => plainAgent.close())
  const metricsOf = await (await fetch(`${demo.steering}/metrics`)).text()
  t.match(
    metricsOf,
    /cdn_steering_requests_by_protocol_total\{protocol="h2"\} [1-9]/,
    'steering counted h2 requests',
  )
  const untrusted = await request(demo.player, { dispatcher: plainAgent }).catch((e: Error) => e)
  t.type(untrusted, Error, 'a client without the CA refuses the certificate')

  // Plain HTTP still answers on every node's own port.
  const plainSteering = `http://127.0.0.1:${base}`
  const plainFleet = await globalThis.fetch(`${plainSteering}/fleet`)
  t.equal(plainFleet.status, 200, 'the dashboard over plain HTTP')
  await plainFleet.text()
  t.ok(demo.stdout().includes(`${plainSteering}/fleet`), 'and the demo says so')
  for (const e of topology.edges) {
    const res = await globalThis.fetch(`http://127.0.0.1:${base + e.port - topology.basePort}/healthz`)
    t.equal(res.status, 200, `${e.id} over plain HTTP`)
    await res.text()
  }

  const player = await fetch(demo.player)
  t.equal(player.status, 200, 'player page answers')
  const html = await player.text()
  t.match(html, /\/assets\/hls\.js/, 'player loads hls.js from steering, not an outside CDN')
  t.notMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'no outside URL in the player page')
  t.notMatch(html, /http:\/\//, 'no http URL in the page served over https (no mixed content)')
  t.equal((await fetch(`${demo.steering}/assets/hls.js`)).status, 200, 'hls.js is served')
  const fleet = await fetch(demo.fleet)
  t.equal(fleet.status, 200, 'fleet dashboard answers')
  t.match(await fleet.text(), /fleet\.js/)
  for (const url of demo.metrics) {
    const res = await fetch(url)
    t.equal(res.status, 200, `${url} answers`)
    t.match(await res.text(), /^# (HELP|TYPE) /m, `${url} is Prometheus text`)
  }

  const titlesUrl = demo.metrics.find((u) =>
    u.includes(`:${https + topology.origin.port - topology.basePort}/`),
  )!
  const catalogue = async (f = fetch) =>
    (await (await f(titlesUrl.replace('/metrics', '/titles'))).json()) as {
      titles: { id: string; current: string }[]
    }
  const before = await catalogue()
  t.same(
    before.titles.map((x) => x.id).sort(),
    topology.samples.map((s) => s.title).sort(),
    'the origin holds every sample title',
  )

  // The most popular sample is prefilled on one site: those edges end up holding it complete.
  const popular = [...topology.samples].sort((a, b) => (b.popularity ?? 0) - (a.popularity ?? 0))[0]!.title
  const said = new RegExp(`prefilling "${popular}" on ([a-z0-9-]+(?:, [a-z0-9-]+)*)`).exec(demo.stderr())
  t.ok(said, `the demo says it prefills ${popular}`)
  const filled = said ? said[1]!.split(', ') : []
  t.ok(filled.length >= 1, `on the edges of one site (${filled.join(', ')})`)
  for (const id of filled) {
    const port = base + TLS_PORT_OFFSET + topology.edges.find((e) => e.id === id)!.port - topology.basePort
    const complete = async () =>
      ((await (await fetch(`https://127.0.0.1:${port}/status`)).json()) as { titlesComplete: string[] })
        .titlesComplete
    await until(async () => (await complete()).includes(popular), 250)
    t.same(await complete(), [popular], `${id} holds ${popular} complete after the prefill, and only it`)
  }

  // The operator commands the demo prints work as printed: its CA and its admin token in them.
  const tries = [...demo.stdout().matchAll(/^(?:\s+Try)?\s+npx cdn (\S.*)$/gm)].map((m) => m[1]!.split(' '))
  t.same(
    tries.map((args) => args[0]),
    ['status', 'prefill', 'purge'],
    'three commands to try',
  )
  for (const args of tries) {
    t.ok(args.join(' ').includes(`--ca ${demo.caCert}`), `${args[0]}: --ca names the demo's CA`)
    if (args[0] !== 'status')
      t.ok(args.join(' ').includes('--token demo-admin-token'), `${args[0]}: the token`)
    // The prefill as a dry run: the edges' holdings were checked above and stay as they are.
    const r = spawnSync(process.execPath, [cli, ...args, ...(args[0] === 'prefill' ? ['--dry-run'] : [])], {
      encoding: 'utf8',
      cwd: root,
    })
    t.equal(r.status, 0, `npx cdn ${args.join(' ')}: ${r.stderr}`)
  }

  const kids = childrenOf(demoPid(demo))
  t.equal(kids.length, nodes, `the demo runs ${nodes} node processes`)
  // npm passes Ctrl-C on and ends by it, as a shell expects; the demo first stops its nodes.
  t.same(await stopDemo(demo), { code: null, signal: 'SIGINT' }, 'Ctrl-C ends npm start')
  t.match(demo.stderr(), /cdn demo: stopped\n/, 'the demo stopped its nodes')
  t.same(
    kids.filter((k) => alive(k.pid)).map((k) => k.args.slice(3, 4).join(' ')),
    [],
    'no node process outlives the demo',
  )

  const caBefore = readFileSync(demo.caCert, 'utf8')
  const again = await startDemo(dataDir, base, { npm: true })
  t.teardown(() => stopDemo(again))
  t.equal(
    readFileSync(again.caCert, 'utf8'),
    caBefore,
    'a second start keeps the CA (a browser keeps trusting it)',
  )
  const after = await catalogue(again.fetch)
  t.same(
    after.titles.map((x) => `${x.id}@${x.current}`).sort(),
    before.titles.map((x) => `${x.id}@${x.current}`).sort(),
    'a second start reuses the data: same versions, nothing transcoded again',
  )
  const second = childrenOf(demoPid(again))
  t.same(await stopDemo(again), { code: null, signal: 'SIGINT' })
  t.match(again.stderr(), /cdn demo: stopped\n/)
  t.same(second.filter((k) => alive(k.pid)).length, 0, 'no node outlives the second run either')
})
