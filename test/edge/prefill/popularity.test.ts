import t from 'tap'
import { Popularity } from '../../../edge/prefill/popularity.js'
import { ManualClock } from '../../../src/clock.js'

t.test('scores decay by half every half-life', async (t) => {
  const clock = new ManualClock()
  const p = new Popularity({ clock, halfLifeMs: 60_000 })
  for (let i = 0; i < 8; i++) p.hit('a')
  t.equal(p.score('a'), 8)
  clock.advance(60_000)
  t.ok(Math.abs(p.score('a') - 4) < 1e-9)
  p.hit('a')
  t.ok(Math.abs(p.score('a') - 5) < 1e-9, 'a hit adds one to the decayed score')
  clock.advance(120_000)
  t.ok(Math.abs(p.score('a') - 1.25) < 1e-9)
  t.equal(p.score('nobody'), 0)
})

t.test('the ranking favours recent traffic and its weights sum to 1', async (t) => {
  const clock = new ManualClock()
  const p = new Popularity({ clock, halfLifeMs: 3_600_000 })
  for (let i = 0; i < 100; i++) p.hit('old-hit')
  clock.advance(6 * 3_600_000)
  for (let i = 0; i < 10; i++) p.hit('new-hit')
  p.hit('one-off')
  const r = p.ranking()
  t.same(
    r.map((x) => x.title),
    ['new-hit', 'old-hit', 'one-off'],
    '100 requests six half-lives ago weigh less than 10 now',
  )
  t.equal(r[1]!.requests, 100)
  t.ok(Math.abs(r.reduce((s, x) => s + x.weight, 0) - 1) < 1e-9)
  t.same(
    p.ranking(1).map((x) => x.title),
    ['new-hit'],
  )
})

t.test('the map stays within its bound, dropping the weakest', async (t) => {
  const clock = new ManualClock()
  const p = new Popularity({ clock, maxTitles: 100 })
  for (let i = 0; i < 50; i++) p.hit('popular')
  for (let i = 0; i < 5000; i++) {
    p.hit(`t${i}`)
    clock.advance(1)
    if (p.size > 100) t.fail(`size ${p.size} over the bound`)
  }
  t.ok(p.size <= 100)
  t.ok(p.score('popular') > 40, 'a popular title survives a flood of one-offs')
})
