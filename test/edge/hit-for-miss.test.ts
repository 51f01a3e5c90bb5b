/**
 * Hit-for-miss (edge/upstream/single-flight.ts `hitForMiss`): once a URL answered personally
 * (Set-Cookie, private, no-store, Vary: *), its next requests go upstream at once, each alone,
 * instead of queueing behind one fetch whose answer they could not share. A shareable answer,
 * a purge or the end of --hit-for-miss forgets it. The upstream is a real server holding its
 * answers; the edge's metrics say what it did.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../../src/clock.js'
import { startEdge, type TestEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { type Answer, type EchoUpstream, startEchoUpstream } from './upstream-server.js'

const PATH = '/vod/t/me.json'
const TOKEN = 'hit-for-miss-token'
const COOKIE: Answer = { headers: { 'set-cookie': 'session=S; HttpOnly', 'cache-control': 'no-store' } }
const SHARED: Answer = { headers: { 'cache-control': 'public, max-age=60' } }

interface Setup {
  up: EchoUpstream
  edge: TestEdge
  clock: ManualClock
  /** What the upstream answers next (gated when `held`: `release` lets every held answer go). */
  next: { answer: Answer; held: boolean }
  release: () => void
}

async function setup(t: Test, edgeOpts: Record<string, unknown> = {}): Promise<Setup> {
  const clock = new ManualClock(Date.now())
  let release: () => void = () => undefined
  let gate = new Promise<void>((resolve) => (release = resolve))
  const s = { next: { answer: COOKIE, held: false } } as Setup
  s.release = () => {
    release()
    gate = new Promise<void>((resolve) => (release = resolve))
  }
  s.up = await startEchoUpstream(t, () => ({
    ...s.next.answer,
    body: `answer ${s.up.received.length}`,
    ...(s.next.held ? { gate } : {}),
  }))
  s.edge = await startEdge(t, { upstream: s.up.url, adminToken: TOKEN, clock, ...edgeOpts })
  s.clock = clock
  return s
}

const metric = (s: Setup, name: string) => metricAt(`${s.edge.url}/metrics`, name)

/**
 * Two clients for PATH while the upstream holds its answers: 'alone' when both requests reached
 * the upstream (neither waited on the other), 'collapsed' when the second joined the first's fetch.
 */
async function twoAtOnce(s: Setup): Promise<'alone' | 'collapsed'> {
  s.next.held = true
  const before = s.up.received.length
  const coalesced = await metric(s, 'cdn_edge_coalesced_waiters_total')
  const first = get(`${s.edge.url}${PATH}`)
  await until(() => s.up.received.length === before + 1)
  const second = get(`${s.edge.url}${PATH}`)
  // The first sign wins; the other wait then ends too (nothing polls after the race).
  let how: 'alone' | 'collapsed' | undefined
  await Promise.race([
    until(() => how !== undefined || s.up.received.length === before + 2).then(() => (how ??= 'alone')),
    until(
      async () => how !== undefined || (await metric(s, 'cdn_edge_coalesced_waiters_total')) > coalesced,
    ).then(() => (how ??= 'collapsed')),
  ])
  s.next.held = false
  s.release()
  await Promise.all([first, second])
  return how!
}

t.test(
  'after a personal answer, concurrent requests for the URL go upstream at once, each alone',
  async (t) => {
    const s = await setup(t)
    const one = await get(`${s.edge.url}${PATH}`)
    t.equal(one.headers['set-cookie']?.toString(), 'session=S; HttpOnly')
    t.equal(await twoAtOnce(s), 'alone', 'the second request did not queue behind the first')
    t.equal(await metric(s, 'cdn_edge_hit_for_miss_total'), 2, 'both counted as hit-for-miss')
    t.equal(await metric(s, 'cdn_edge_coalesced_waiters_total'), 0)
  },
)

t.test('a shareable answer ends it: the URL collapses again', async (t) => {
  const s = await setup(t)
  await get(`${s.edge.url}${PATH}`)
  // Shareable but stale at once: every request goes upstream, so the next two are misses.
  s.next.answer = { headers: { 'cache-control': 'public, max-age=0' } }
  const shared = await get(`${s.edge.url}${PATH}`)
  t.equal(shared.headers['x-cache'], 'MISS')
  t.equal(await twoAtOnce(s), 'collapsed', 'no longer marked personal')
  t.equal(await metric(s, 'cdn_edge_hit_for_miss_total'), 1, 'only the request after the personal answer')
})

t.test('a purge of the title forgets it', async (t) => {
  const s = await setup(t)
  await get(`${s.edge.url}${PATH}`)
  const purged = await fetch(`${s.edge.url}/admin/cache/vod/t`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  t.equal(purged.status, 200)
  s.next.answer = SHARED
  t.equal(await twoAtOnce(s), 'collapsed')
})

t.test('it lasts --hit-for-miss, and 0 turns it off', async (t) => {
  const s = await setup(t, { hitForMiss: 30_000 })
  await get(`${s.edge.url}${PATH}`)
  s.clock.advance(29_000)
  t.equal(await twoAtOnce(s), 'alone', 'still within 30 s')
  s.clock.advance(31_000)
  t.equal(await twoAtOnce(s), 'collapsed', 'over once 30 s passed since the last personal answer')

  const off = await setup(t, { hitForMiss: 0 })
  await get(`${off.edge.url}${PATH}`)
  t.equal(await twoAtOnce(off), 'collapsed', 'never remembered with 0')
  t.equal(await metric(off, 'cdn_edge_hit_for_miss_total'), 0)
})

t.test('an upstream error leaves the mark as it was', async (t) => {
  const s = await setup(t)
  await get(`${s.edge.url}${PATH}`)
  s.next.answer = { status: 500 }
  const failed = await get(`${s.edge.url}${PATH}`)
  t.equal(failed.status, 500)
  s.next.answer = COOKIE
  t.equal(await twoAtOnce(s), 'alone', 'still marked after the 500')
})
