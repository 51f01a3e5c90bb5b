/**
 * `npm start` itself: the command package.json runs, started as a child process on a temp data
 * dir and a free port range. It must print its URLs, each must answer, Ctrl-C (SIGINT) must
 * stop every node it started, and a second start must reuse the data (no new transcode).
 * Needs `npm run build` (the nodes run from dist/).
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  alive,
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

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>
}

t.test('npm start runs the demo, prints where to look, and Ctrl-C stops every node', async (t) => {
  t.equal(pkg.scripts.start, 'node dist/src/cli/main.js demo', 'npm start is the demo command this test runs')
  const dataDir = freshDataDir()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const base = await freeBasePort()

  const demo = await withFirstRunLock(async () => {
    const d = await startDemo(dataDir, base)
    rememberTitles(dataDir)
    return d
  })
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
    let complete: string[] = []
    for (let i = 0; i < 120 && !complete.includes(popular); i++) {
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
        titlesComplete: string[]
      }
      complete = status.titlesComplete
      if (!complete.includes(popular)) await new Promise((r) => setTimeout(r, 500))
    }
    t.ok(complete.includes(popular), `${id} holds ${popular} complete after the prefill`)
  }

  const kids = childrenOf(demo.proc.pid!)
  t.equal(kids.length, nodes, `the demo runs ${nodes} node processes`)
  const { code } = await stopDemo(demo)
  t.equal(code, 0, 'SIGINT: the demo exits 0 after stopping its nodes')
  t.same(
    kids.filter((k) => alive(k.pid)).map((k) => k.args.slice(3, 4).join(' ')),
    [],
    'no node process outlives the demo',
  )

  const again = await startDemo(dataDir, base, 60_000)
  t.teardown(() => stopDemo(again))
  const after = await catalogue()
  t.same(
    after.titles.map((x) => `${x.id}@${x.current}`).sort(),
    before.titles.map((x) => `${x.id}@${x.current}`).sort(),
    'a second start reuses the data: same versions, nothing transcoded again',
  )
  const second = childrenOf(again.proc.pid!)
  t.equal((await stopDemo(again)).code, 0)
  t.same(second.filter((k) => alive(k.pid)).length, 0, 'no node outlives the second run either')
})
