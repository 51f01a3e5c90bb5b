/**
 * A purge never waits for a slow fetch of its title (single-flight.ts `purge`): a real edge over
 * a real upstream that sends part of a body and holds the rest until the test lets it go. The
 * purge answers while the fetch runs; its client still gets every byte; nothing of it is stored;
 * and a request after the purge starts a fetch of its own instead of joining the old one.
 */
import t, { type Test } from 'tap'
import { settled, startEdge } from '../helpers/edge.js'
import { until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { fetchRaw, latin1, rangeUpstream } from './range-upstream.js'
import { pattern, startUpstream } from './upstream-server.js'
import { ManualClock } from '../../src/clock.js'

const PATH = '/vod/p/v1/720p/seg-00001.m4s'
const SIZE = 300_000

const TOKEN = 'purge-flight-token'

/**
 * An edge whose upstream has sent the first `pauseBytes` of PATH's body to one client's fetch
 * and holds the rest until `release`; then the title purged (its answer asserted 200).
 */
async function purgedMidFetch(t: Test, seed: number, pauseBytes: number) {
  // Were the purge to wait for the fetch, it would wait for the test, which waits for it: the
  // test's own timeout is the failure then.
  t.setTimeout(30_000)
  const body = pattern(SIZE, seed)
  const up = await rangeUpstream(t, body)
  let release: () => void = () => undefined
  up.state.pauseAt = { bytes: pauseBytes, until: new Promise<void>((resolve) => (release = resolve)) }
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
  const first = fetchRaw(`${edge.url}${PATH}`)
  // The fetch is under way once the upstream has the request (it sent the first bytes).
  await until(() => up.methods.length > 0)
  const purge = await fetch(`${edge.url}/admin/cache/vod/p`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  t.equal(purge.status, 200, 'the purge answers while the fetch still runs')
  return { body, up, edge, first, release }
}

t.test('a purge answers while a fetch of its title runs, and that fetch stores nothing', async (t) => {
  const { body, up, edge, first, release } = await purgedMidFetch(t, 5, 100_000)
  t.equal(up.methods.length, 1, 'one fetch so far')

  // A request now does not join the fetch that started before the purge: it goes upstream itself.
  up.state.pauseAt = undefined
  const second = await get(`${edge.url}${PATH}`)
  t.equal(second.h('x-cache'), 'MISS', 'not COALESCED onto the purged fetch')
  t.equal(second.body, latin1(body))
  t.equal(up.methods.length, 2, 'its own upstream request')

  release()
  const got = await first
  t.ok(got.complete, 'the first client still gets the whole body')
  t.equal(latin1(got.body), latin1(body))
  await settled(edge)
  // The purged fetch stored nothing; the second's is what the cache holds.
  const third = await get(`${edge.url}${PATH}`)
  t.equal(third.h('x-cache'), 'HIT-MEM', "the second fetch's copy")
  t.equal(up.methods.length, 2, 'no third upstream request')
})

t.test('a fetch whose title is purged mid-body stores nothing, in either tier', async (t) => {
  const { body, up, edge, first, release } = await purgedMidFetch(t, 9, 50_000)
  release()
  const got = await first
  t.ok(got.complete, 'the client gets the whole body')
  t.equal(latin1(got.body), latin1(body))
  await settled(edge)
  t.notOk(edge.app.edge.store.has(PATH), 'neither memory nor disk holds it')
  const next = await get(`${edge.url}${PATH}`)
  t.equal(next.h('x-cache'), 'MISS', 'the next request goes upstream')
  t.equal(up.methods.length, 2)
})

t.test(
  'a revalidation under way when its title is purged refreshes nothing stored after the purge',
  async (t) => {
    t.setTimeout(30_000)
    const clock = new ManualClock(Date.now())
    // The upstream's answers carry a label the operator changes along with the purge (a header
    // fixed at the origin: the reason for the purge). Revalidations are held until the test lets go.
    let label = 'before'
    let held = 0
    let hold: Promise<void> = Promise.resolve()
    let release: () => void = () => undefined
    const up = await startUpstream(t, {
      [PATH]: async (req, reply) => {
        // Dated by the edge's clock, which the test moves.
        reply
          .header('etag', '"one"')
          .header('cache-control', 'public, max-age=10')
          .header('date', new Date(clock.now()).toUTCString())
        if (req.headers['if-none-match'] === '"one"') {
          held++
          await hold
          return reply.code(304).send()
        }
        return reply
          .header('x-label', label)
          .header('content-type', 'video/iso.segment')
          .send(pattern(1000, 3))
      },
    })
    const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN, clock })
    const url = `${edge.url}${PATH}`
    t.equal((await get(url)).h('x-label'), 'before')
    await settled(edge)

    // Stale: the next request revalidates, and the upstream holds its 304.
    clock.advance(20_000)
    hold = new Promise<void>((resolve) => (release = resolve))
    const revalidating = get(url)
    await until(() => held === 1)
    const purge = await fetch(`${edge.url}/admin/cache/vod/p`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    t.equal(purge.status, 200)
    label = 'after'
    const refill = await get(url)
    t.equal(refill.h('x-cache'), 'MISS', 'a request after the purge fetches anew')
    t.equal(refill.h('x-label'), 'after')
    await until(() => edge.app.edge.store.lookup?.(PATH)?.meta.headers['x-label'] === 'after')

    release()
    t.equal((await revalidating).status, 200, 'the revalidating client is answered')
    await settled(edge)
    const next = await get(url)
    t.equal(next.h('x-cache'), 'HIT-MEM')
    t.equal(next.h('x-label'), 'after', 'the copy fetched after the purge keeps its own fields')
    t.equal(edge.app.edge.store.lookup?.(PATH)?.meta.headers['x-label'], 'after', 'in the store too')
  },
)
