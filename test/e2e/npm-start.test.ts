/**
 * `npm start` itself, run through npm as a new user would (`npm start -- --data-dir DIR
 * --base-port N`) in its own process group, on a temp data dir and a free port range. It must
 * print its URLs, each must answer, Ctrl-C (SIGINT to the group, as a terminal sends it) must
 * stop every node it started, and a second start must reuse the data (no new transcode). The
 * origin's store starts with the sample titles made once for the suite (see demo-helpers.ts).
 * Needs `npm run build` (the nodes run from dist/).
 */
import { rmSync } from 'node:fs'
import t from 'tap'
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
  t.ok(demo.player.startsWith(`http://127.0.0.1:${base}/`), `player URL printed: ${demo.player}`)
  t.equal(demo.fleet, `http://127.0.0.1:${base}/fleet`, 'fleet dashboard URL printed')
  t.equal(demo.metrics.length, nodes, 'one metrics URL per node')
  t.match(demo.stdout(), /Ctrl-C/, 'says how to stop')

  const player = await fetch(demo.player)
  t.equal(player.status, 200, 'player page answers')
  const html = await player.text()
  t.match(html, /\/assets\/hls\.js/, 'player loads hls.js from steering, not an outside CDN')
  t.notMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'no outside URL in the player page')
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
    u.includes(`:${base + topology.origin.port - topology.basePort}/`),
  )!
  const catalogue = async () =>
    (await (await fetch(titlesUrl.replace('/metrics', '/titles'))).json()) as {
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
    const port = base + topology.edges.find((e) => e.id === id)!.port - topology.basePort
    const complete = async () =>
      ((await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { titlesComplete: string[] })
        .titlesComplete
    await until(async () => (await complete()).includes(popular), 250)
    t.same(await complete(), [popular], `${id} holds ${popular} complete after the prefill, and only it`)
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

  const again = await startDemo(dataDir, base, { npm: true })
  t.teardown(() => stopDemo(again))
  const after = await catalogue()
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
