/**
 * The namespace drills (issue 18): the demo's topology with every node in its own network
 * namespace, real delay between sites (the relay) and tbf on edge uplinks (src/cli/demo/
 * netns*.ts). One lab, three drills in turn, each undone before the next:
 * - partition a child edge from its parent: its misses go to the origin (its second upstream);
 * - slow one edge's uplink: steering's queueing-delay signal takes it out for new clients,
 *   while the player on it keeps playing;
 * - cut a site's link: steering sends the site's players elsewhere and they keep playing.
 * Everything waits on steering's answers, metrics and the players' progress; nothing sleeps.
 * Needs root and `ip netns` (skipped otherwise) and `npm run build` (nodes run compiled).
 */
import t from 'tap'
import { labUnavailable, nodeMetric, Player, startLab, steer, steeringEdge } from '../helpers/netns.js'
import { until } from '../helpers/wait.js'

const why = await labUnavailable()
if (why) t.plan(0, `namespace drills skipped: ${why}`)
else {
  const lab = await startLab(t)
  const node = (id: string) => lab.plan.nodes.find((n) => n.id === id)!
  const site = (id: string) => node(id).site
  const parentUrl = node('fra-parent').plan.httpUrl
  const originUrl = lab.plan.demo.origin.httpUrl

  t.test('partition a child edge from its parent: it falls back to the origin', async (t) => {
    const child = node('rome-1')
    const media = async (title: string) => {
      const masterUrl = `${child.plan.httpUrl}/vod/${title}/master.m3u8`
      const master = await (await lab.fetchFrom('rome', masterUrl)).text()
      const variant = master.split('\n').find((l) => l && !l.startsWith('#'))!
      const mediaUrl = new URL(variant, masterUrl).href
      const playlist = await (await lab.fetchFrom('rome', mediaUrl)).text()
      const segs = playlist.split('\n').filter((l) => l && !l.startsWith('#'))
      return segs.map((s) => new URL(s, mediaUrl).href)
    }
    const segs = await media('trailer')
    const through = async (url: string) => {
      const res = await lab.fetchFrom('rome', url)
      return {
        status: res.status,
        cacheStatus: res.headers.get('cache-status') ?? '',
        bytes: (await res.arrayBuffer()).byteLength,
      }
    }
    const before = await through(segs[0]!)
    t.equal(before.status, 200)
    t.match(before.cacheStatus, /fra-parent/, 'a miss goes through the parent while they are connected')
    const missesBefore = await nodeMetric(lab, 'rome-1', 'cdn_edge_misses_total')

    await lab.partition('rome-1', 'fra-parent')
    const cut = await through(segs[1]!)
    t.equal(cut.status, 200, 'the miss is still served')
    t.ok(cut.bytes > 0)
    t.notMatch(cut.cacheStatus, /fra-parent/, 'not through the parent')
    t.equal(
      await nodeMetric(lab, 'rome-1', 'cdn_edge_upstream_up', { upstream: parentUrl }),
      0,
      'parent marked down',
    )
    t.equal(await nodeMetric(lab, 'rome-1', 'cdn_edge_upstream_up', { upstream: originUrl }), 1, 'origin up')
    t.ok((await nodeMetric(lab, 'rome-1', 'cdn_edge_upstream_down_total', { upstream: parentUrl })) >= 1)
    t.ok((await nodeMetric(lab, 'rome-1', 'cdn_edge_misses_total')) > missesBefore, 'counted as a miss')
    const next = await through(segs[2]!)
    t.equal(next.status, 200)
    t.notMatch(next.cacheStatus, /fra-parent/, 'later misses go straight to the origin too')

    await lab.partition('rome-1', 'fra-parent', false)
    // The edge's probe finds the parent again.
    await until(
      async () => (await nodeMetric(lab, 'rome-1', 'cdn_edge_upstream_up', { upstream: parentUrl })) === 1,
      200,
    )
    const healed = await through(segs[3]!)
    t.equal(healed.status, 200)
    t.match(healed.cacheStatus, /fra-parent/, 'through the parent again once healed')
  })

  t.test("slow one edge's uplink: new clients go elsewhere, its player keeps playing", async (t) => {
    // The drill before this one may leave a Rome edge briefly out for its queueing delay (150 ms
    // in the lab) on a busy machine (CI once saw New York first): wait until both are back.
    await until(
      async () => (await steer(lab, 'rome', 'feature')).filter((e) => e.site === 'rome').length === 2,
      200,
    )
    const first = (await steer(lab, 'rome', 'feature'))[0]!
    t.equal(first.site, 'rome', 'a Rome player starts on a Rome edge')
    const slow = first.id
    // Two players on it keep its uplink busy (one leaves it idle between segments).
    const players = [new Player(lab, 'rome', 'feature'), new Player(lab, 'rome', 'feature')]
    const [player] = players as [Player, Player]
    t.teardown(() => Promise.all(players.map((p) => p.stop())))
    await until(() => players.every((p) => p.count((e) => e === slow) >= 1), 50)

    const capacity = node(slow).uplinkBytesPerSec!
    await lab.setUplink(slow, 500_000)
    const mark = player.played.length
    await until(async () => !(await steeringEdge(lab, slow)).inRotation, 200)
    const view = await steeringEdge(lab, slow)
    t.equal(view.state, 'up', 'still answering')
    t.match(view.why, /uplink's queue/, 'out for its queueing delay')
    const now = await steer(lab, 'rome', 'feature')
    t.equal(now[0]?.site, 'rome', 'the next Rome edge takes new clients')
    t.not(now[0]?.id, slow)
    t.notOk(
      now.some((e) => e.id === slow),
      'the slow edge is out of the answer',
    )
    await until(() => player.count((e) => e === slow, mark) >= 2, 50)
    t.pass('the player on the slowed edge kept getting segments')

    await Promise.all(players.map((p) => p.stop()))
    await lab.setUplink(slow, capacity)
    await until(async () => (await steeringEdge(lab, slow)).inRotation, 200)
    // Back in the answer. Not necessarily first at once: the load it reported while slowed can
    // still put it behind the other Rome edge (bounded load) until its next health round.
    const back = await steer(lab, 'rome', 'feature')
    t.ok(
      back.some((e) => e.id === slow),
      'back in the answer once its uplink is',
    )
    t.equal(back[0]?.site, 'rome', 'and Rome still serves Rome')
  })

  t.test("cut a site's link: steering moves its players, who keep playing", async (t) => {
    const player = new Player(lab, 'rome', 'feature')
    t.teardown(() => player.stop())
    const inRome = (e: string) => site(e) === 'rome'
    await until(() => player.count(inRome) >= 2, 50)

    await lab.cutSite('rome')
    const mark = player.played.length
    await until(async () => (await steer(lab, 'rome', 'feature'))[0]?.site !== 'rome', 200)
    const answer = await steer(lab, 'rome', 'feature')
    t.equal(answer[0]?.site, 'new-york', 'the next-nearest site with edges')
    t.notOk(
      answer.some((e) => inRome(e.id)),
      'no Rome edge in the answer',
    )
    await until(() => player.count((e) => !inRome(e), mark) >= 3, 50)
    const indices = player.played.map((p) => p.index)
    t.same(
      indices,
      indices.map((_, i) => i),
      'every segment played in order, none skipped',
    )
    t.ok(
      player.failures.some((f) => inRome(f.edge)),
      'the player saw its Rome edge fail',
    )

    await player.stop()
    await lab.cutSite('rome', false)
    await until(async () => (await steer(lab, 'rome', 'feature'))[0]?.site === 'rome', 200)
    t.pass('Rome players go back to Rome once its link is up')
  })
}
