/**
 * `cdn status` against a real steering watching a real tree (origin, tier-2 parent, tier-1
 * edge on loopback): the table shows each node with its state and figures, and a node that
 * died shows its last figures marked stale.
 */
import t from 'tap'
import { request } from 'undici'
import { command } from '../../src/cli/status.js'
import { startTree } from '../helpers/tree.js'
import { runCommand } from '../helpers/cli.js'

const run = (argv: string[]) => runCommand(command, argv)

t.test('cdn status prints the fleet and the tree as steering sees them', async (t) => {
  const tree = await startTree(t)
  const res = await request(`${tree.edge.url}/vod/clip/master.m3u8`)
  await res.body.dump()
  await tree.checkNow()

  const live = await run(['--steering', tree.steering])
  t.equal(live.code, 0)
  const lines = live.out.split('\n')
  t.match(lines[0], /1 of 1 edges in rotation/)
  t.match(live.out, /^EDGE\s+SITE\s+STATE\s+LOAD\s+HIT\s+EGRESS\s+TITLES/m, 'a table of edges')
  t.match(
    live.out,
    /^rome-1\s+rome\s+up\s+\d+%\s+\d+%\s+\S+ \S*B\/s\s+clip\s+\d+s ago$/m,
    'the edge, its figures and titles',
  )
  t.match(live.out, /^UPSTREAM\s+ROLE\s+STATE/m, 'and one of the tree above')
  t.match(live.out, /^fra-parent\s+parent\s+up\s+\d+%\s+.+B\/s\s+rome-1\s+\d+s ago$/m, 'the parent')
  t.match(live.out, /^origin\s+origin\s+up\s+-\s+.+B\/s\s+-\s+\d+s ago$/m, 'the origin')
  t.notMatch(live.out, /stale/, 'nothing stale while everything answers')

  const json = await run(['--steering', tree.steering, '--json'])
  t.same(
    (JSON.parse(json.out) as { upstreams: { id: string }[] }).upstreams.map((u) => u.id),
    ['fra-parent', 'origin'],
    '--json prints the document',
  )

  await tree.parent.app.close()
  await tree.checkNow()
  await tree.checkNow()
  const after = await run(['--steering', tree.steering])
  t.match(
    after.out,
    /^fra-parent\s+parent\s+down\s+.+\(stale figures\)$/m,
    'a dead parent: its last figures, stale',
  )
  t.match(after.out, /^fra-parent is down: /m, 'and why')
})

t.test('cdn status says clearly when steering does not answer', async (t) => {
  const r = await run(['--steering', 'http://127.0.0.1:1', '--timeout', '2s'])
  t.equal(r.code, 1)
  t.equal(
    r.err,
    'cdn status: GET http://127.0.0.1:1/edges: connect ECONNREFUSED 127.0.0.1:1 [CDN_ERR_UPSTREAM]\n',
  )
})

t.test('cdn status reads its steering from CDN_STATUS_STEERING, or the older CDN_STEERING_URL', async (t) => {
  const tree = await startTree(t)
  for (const name of ['CDN_STATUS_STEERING', 'CDN_STEERING_URL']) {
    const r = await runCommand(command, [], { [name]: tree.steering })
    t.equal(r.code, 0, `${name}: ${r.err}`)
    t.match(r.out, /^rome-1\s/m, name)
  }
})
