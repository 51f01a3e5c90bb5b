/**
 * Age (RFC 9111 §4.2.3) through a chain of two edges (child → parent → origin) with the origin's
 * clock off by 5 s either way. The origin is an upstream on loopback that sets Date itself; both
 * edges share a manual clock, so every age below is exact:
 *   apparent_age = max(0, response_time - date_value)
 *   corrected_age_value = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 * An origin ahead adds nothing (apparent_age clamps at 0); one behind makes the copy 5 s older,
 * once: the child, reading the parent's Age and the origin's Date, counts the skew once, not twice.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { settled, startEdge } from '../helpers/edge.js'
import { get } from './http-get.js'
import { type Received, startEchoUpstream } from './upstream-server.js'

async function chain(t: Test, skewMs: number, extra: Record<string, string> = {}, delayMs = 0) {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000)
  const origin = await startEchoUpstream(t, (_r: Received) => {
    const date = new Date(clock.now() + skewMs).toUTCString()
    // The origin takes delayMs to answer: the edge's response_delay.
    clock.advance(delayMs)
    return { headers: { date, 'cache-control': 'max-age=60', ...extra } }
  })
  const parent = await startEdge(t, { upstream: origin.url, id: 'parent', clock })
  const child = await startEdge(t, { upstream: parent.url, id: 'child', clock })
  const at = async (edge: typeof child, p = '/vod/t/a.m4s') => {
    const r = await get(`${edge.url}${p}`)
    await settled(edge)
    return [r.h('age'), r.h('cache-status')]
  }
  return { clock, origin, parent, child, at }
}

t.test("origin's clock 5 s ahead: Age counts from when the edge got the answer", async (t) => {
  const { clock, parent, child, at } = await chain(t, 5000)
  t.same(await at(child), [
    '0',
    'parent;fwd=uri-miss;fwd-status=200;ttl=60;stored, child;fwd=uri-miss;fwd-status=200;ttl=60;stored',
  ])
  clock.advance(10_000)
  t.same((await at(child))[0], '10')
  t.same(await at(parent), ['10', 'parent;hit;ttl=50'])
  clock.advance(51_000)
  t.same(
    (await at(child))[1],
    'parent;fwd=stale;fwd-status=200;ttl=60;stored, child;fwd=stale;fwd-status=200;ttl=60;stored',
    'stale after 60 s, not 55 or 65',
  )
})

t.test(
  "origin's clock 5 s behind: the copy is 5 s old on arrival, counted once along the chain",
  async (t) => {
    const { clock, parent, child, at } = await chain(t, -5000)
    t.same(await at(child), [
      '5',
      'parent;fwd=uri-miss;fwd-status=200;ttl=55;stored, child;fwd=uri-miss;fwd-status=200;ttl=55;stored',
    ])
    clock.advance(10_000)
    t.same(await at(child), ['15', 'parent;fwd=uri-miss;fwd-status=200;ttl=55;stored, child;hit;ttl=45'])
    t.same(await at(parent), ['15', 'parent;hit;ttl=45'])
  },
)

t.test("an upstream's Age and the edge's response delay are added (corrected_age_value)", async (t) => {
  const { clock, child, parent, at } = await chain(t, 5000, { age: '20' })
  t.same((await at(child))[0], '20', "the origin's Age passed along the chain")
  clock.advance(10_000)
  t.same((await at(child))[0], '30')
  t.same((await at(parent))[0], '30')

  const slow = await chain(t, 5000, {}, 2000)
  t.same((await slow.at(slow.parent))[0], '2', 'the 2 s the origin took count as age')
})
