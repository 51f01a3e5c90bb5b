/**
 * The demand model (edge/cache/demand.ts): where a path sits in its stream, the survival curve
 * and segment duration it learns, the rates it gives (title popularity, rendition share,
 * position, live playheads), and its bounds; the edge builds it from the config.
 */
import t from 'tap'
import { DemandModel, keysFor, MAX_KEYS } from '../../../edge/cache/demand.js'
import { DemandAdmission } from '../../../edge/cache/demand-order.js'
import { EDGE_SPEC } from '../../../edge/config/spec.js'
import { edgeConfig } from '../../../edge/config/validate.js'
import { admissionFor, demandFor } from '../../../edge/main.js'
import { ManualClock } from '../../../src/clock.js'
import { play, seg } from './demand-paths.js'

t.test('a path is placed in its stream: title, version, rendition, position', async (t) => {
  const m = new DemandModel({ clock: new ManualClock() })
  const a = m.keyOf(seg('film', '720p', 5))!
  t.equal(a.pos, 5)
  t.equal(m.keyOf('/vod/film/v1/720p/index.m3u8')!.pos, 0, 'a playlist is at 0')
  t.equal(m.keyOf('/vod/film/v1/720p/init.mp4')!.pos, 0, 'an init segment is at 0')
  t.equal(m.keyOf(`${seg('film', '720p', 7)}#s=2`)!.pos, 7, 'a slice sits where its object does')
  t.equal(m.keyOf(seg('film', '720p', 9))!.stream, a.stream, 'one stream per rendition')
  const low = m.keyOf(seg('film', '240p', 5))!
  t.not(low.stream, a.stream, 'another rendition, another stream')
  t.equal(low.stream.title, a.stream.title, 'of the same title')
  t.equal(m.keyOf('/vod/film/master.m3u8'), undefined, 'a master playlist has no stream')
  t.equal(m.keyOf('/static/app.js'), undefined, 'outside /vod/')
  m.record('/static/app.js')
  t.equal(m.recorded, 0, 'not counted')
})

t.test('the survival curve: the share of sessions that reach a position', async (t) => {
  const clock = new ManualClock()
  const m = new DemandModel({ clock })
  t.equal(m.survival(50), 1, 'nothing learned: every position as likely as the first')
  // Ten sessions read segments 1-2, five of them go on to 8.
  for (let s = 0; s < 10; s++) play(m, clock, (n) => seg(`t${s}`, '720p', n), s < 5 ? 8 : 2)
  t.equal(m.survival(1), 1)
  t.equal(m.survival(0), 1)
  t.equal(m.survival(2), 1, 'every session read position 2')
  t.equal(m.survival(3), 0.5, 'half of them position 3: positions up to 7 have a bin each')
  t.equal(m.survival(5), 0.5)
  // Positions 8-9 share a bin: 5 requests over two positions, of 10 sessions.
  t.equal(m.survival(9), 0.25)
  t.equal(m.survival(100), 0, 'nobody got that far')
})

t.test('the survival curve of titles of about the same length', async (t) => {
  const clock = new ManualClock()
  const m = new DemandModel({ clock })
  // Episodes end at 8; half their sessions stop at 2. A feature's sessions all read to 40.
  for (let s = 0; s < 100; s++) play(m, clock, (n) => seg('episode', '720p', n), s % 2 === 0 ? 8 : 2)
  for (let s = 0; s < 100; s++) play(m, clock, (n) => seg('feature', '720p', n), 40)
  const episode = m.keyOf(seg('episode', '720p', 1))!.stream.title
  const feature = m.keyOf(seg('feature', '720p', 1))!.stream.title
  t.equal(episode.last, 8, "a title's length: the furthest position asked for")
  t.equal(feature.last, 40)
  // Each title's first session was filed under the lengths it had reached: 99 of 100 count here,
  // beside ten sessions of the curve over every title (0.75 at 6).
  const short = m.survival(6, episode)
  t.ok(short > 0.5 && short < 0.55, `half an episode's sessions reach 6: ${short}`)
  const long = m.survival(6, feature)
  t.ok(long > 0.97 && long <= 1, `every feature's session does: ${long}`)
  const all = m.survival(6)
  t.ok(all > short && all < 1, `over every title, in between: ${all}`)
  clock.advance(60_000) // no live playhead
  t.ok(
    m.rate(m.keyOf(seg('feature', '720p', 6))!) > 1.5 * m.rate(m.keyOf(seg('episode', '720p', 6))!),
    "as many starts, the feature's position 6 wanted about twice as much",
  )
})

t.test("a rendition's share is read by position, over every title", async (t) => {
  const clock = new ManualClock()
  const h = 3_600_000
  const m = new DemandModel({ clock, halfLifeMs: h, minAgeMs: 1000 * h })
  // Sessions start on 240p and climb to 720p from position 3.
  for (let s = 0; s < 10; s++) play(m, clock, (n) => seg('film', n <= 2 ? '240p' : '720p', n), 8)
  const rate = (title: string, rung: string, n: number) => m.rate(m.keyOf(seg(title, rung, n))!)
  t.equal(rate('film', '240p', 1), (10 * Math.LN2) / h, 'every start is on 240p: the whole start rate')
  t.equal(rate('film', '720p', 1), 0, 'no session starts on 720p')
  clock.advance(60_000) // no live playhead
  t.ok(rate('film', '720p', 5) > 0, 'where sessions play 720p')
  t.equal(rate('film', '240p', 5), 0, 'and no longer 240p')
  // A title seen only on 720p: its sessions will start on 240p all the same.
  m.record(seg('other', '720p', 1))
  t.ok(
    rate('other', '240p', 1) > 5 * rate('other', '720p', 1),
    'its 240p start wanted, learned from the others',
  )
})

t.test(
  'rates: more sessions, a larger rendition share and an earlier position each weigh more',
  async (t) => {
    const clock = new ManualClock()
    const h = 3_600_000
    // Counts taken to cover a thousand half-lives: the correction for a title's age is 1 here.
    const m = new DemandModel({ clock, halfLifeMs: h, minAgeMs: 1000 * h })
    for (let s = 0; s < 4; s++) play(m, clock, (n) => seg('hit', '720p', n), 1)
    play(m, clock, (n) => seg('flop', '720p', n), 1)
    const now = m.now()
    t.equal(m.rate(m.keyOf(seg('hit', '720p', 1))!, now), (4 * Math.LN2) / h, 'four starts a half-life')
    t.equal(m.rate(m.keyOf(seg('flop', '720p', 1))!, now), Math.LN2 / h, 'one start a half-life')
    // A third of the requests at position 1 go to 240p (3 of 9): half the rate of 720p's.
    for (let i = 0; i < 3; i++) m.record(seg('hit', '240p', 1))
    m.record(seg('hit', '720p', 1))
    const r720 = m.rate(m.keyOf(seg('hit', '720p', 1))!)
    const r240 = m.rate(m.keyOf(seg('hit', '240p', 1))!)
    t.equal(r240 / r720, 2 / 4, 'the rendition share')
    // Sessions read on to 8, half of them: later positions are worth less.
    for (const to of [8, 8, 4, 4, 1, 1]) play(m, clock, (n) => seg('hit', '720p', n), to)
    clock.advance(60_000)
    const early = m.rate(m.keyOf(seg('hit', '720p', 2))!)
    const late = m.rate(m.keyOf(seg('hit', '720p', 6))!)
    t.ok(late > 0 && late < early, `position 6 (${late}) below position 2 (${early})`)
    // Counts decay: an hour later, half the rate.
    const before = m.rate(m.keyOf(seg('flop', '720p', 1))!)
    clock.advance(h)
    t.equal(Math.round((m.rate(m.keyOf(seg('flop', '720p', 1))!) / before) * 1000) / 1000, 0.5)
  },
)

t.test('a title followed for less than a few half-lives is not taken for a slower one', async (t) => {
  const clock = new ManualClock()
  const h = 3_600_000
  const m = new DemandModel({ clock, halfLifeMs: h })
  t.equal(m.minAgeMs, 1_800_000, 'counts cover at least 30 minutes')
  // An old title: one start every 10 minutes for ten half-lives (its count has settled).
  const oldKey = () => m.keyOf(seg('old', '720p', 1))!
  for (let i = 0; i < 60; i++) {
    m.record(seg('old', '720p', 1))
    clock.advance(600_000)
  }
  // A release at the same pace, for one hour: a decaying count holds half what it will.
  for (let i = 0; i < 6; i++) {
    m.record(seg('new', '720p', 1))
    m.record(seg('old', '720p', 1))
    clock.advance(600_000)
  }
  const ratio = m.rate(m.keyOf(seg('new', '720p', 1))!) / m.rate(oldKey())
  t.ok(ratio > 0.85 && ratio < 1.2, `as fast as the old title: ${ratio}`)
  // Within its first 30 minutes a title's count is taken over 30 minutes, not less.
  m.record(seg('brand', '720p', 1))
  clock.advance(60_000)
  const one = m.rate(m.keyOf(seg('brand', '720p', 1))!)
  const expected = ((Math.LN2 / h) * 2 ** (-60_000 / h)) / (1 - 2 ** -0.5)
  t.equal(Math.round((one / expected) * 1e6) / 1e6, 1, 'one start over 30 minutes')
})

t.test(
  'a live playhead makes the segments just ahead of it wanted; behind it, it does nothing',
  async (t) => {
    const clock = new ManualClock()
    const m = new DemandModel({ clock })
    // Survival learned elsewhere: sessions read to 8.
    for (let s = 0; s < 4; s++) play(m, clock, (n) => seg(`o${s}`, '480p', n), 8)
    // One session reads 1-3 of the title at the media's pace (4 s).
    play(m, clock, (n) => seg('film', '720p', n), 3, 4000)
    const ahead = m.keyOf(seg('film', '720p', 4))!
    const behind = m.keyOf(seg('film', '720p', 2))!
    t.ok(m.rate(ahead) > 10 * m.rate(behind), 'the next segment wanted far more than one already read')
    const far = m.keyOf(seg('film', '720p', 7))!
    t.ok(m.rate(ahead) > m.rate(far), 'sooner is worth more')
    // The session stops: three segment durations later its playhead is dead.
    clock.advance(3 * m.segmentMs + 1)
    t.ok(m.rate(ahead) <= m.rate(behind), 'no playhead: the earlier segment is worth at least as much')
    // Two sessions at once: each keeps its own playhead.
    play(m, clock, (n) => seg('film', '720p', n), 6, 0)
    m.record(seg('film', '720p', 1))
    const { stream } = m.keyOf(seg('film', '720p', 1))!
    const live = [...stream.headPos].filter((_, i) => stream.headAt[i] === m.now()).sort((a, b) => a - b)
    t.same(live, [1, 6], 'a playhead at 6 and one at 1')
    t.ok(
      m.rate(m.keyOf(seg('film', '720p', 2))!) > m.rate(m.keyOf(seg('film', '720p', 6))!),
      'next to one, far from the other',
    )
  },
)

t.test('the segment duration is learned from runs of one rendition', async (t) => {
  const clock = new ManualClock()
  const m = new DemandModel({ clock })
  t.equal(m.segmentMs, 4000)
  play(m, clock, (n) => seg('film', '1080p', n), 20, 6000)
  t.ok(m.segmentMs > 5000 && m.segmentMs < 6000, `moved toward 6 s: ${m.segmentMs}`)
  // Requests too far apart are not a run: they teach nothing.
  const learned = m.segmentMs
  clock.advance(600_000)
  m.record(seg('film', '1080p', 21))
  t.equal(m.segmentMs, learned)
})

t.test('titles and streams are bounded', async (t) => {
  const m = new DemandModel({ clock: new ManualClock(), maxTitles: 2 })
  for (const title of ['a', 'b', 'c']) m.record(seg(title, '720p', 1))
  t.equal(m.titleCount, 2, 'the longest-known title dropped')
  for (const r of ['144p', '240p', '360p', '480p', '540p', '720p', '1080p', '1440p', '2160p'])
    for (const title of ['b', 'c']) m.record(seg(title, r, 1))
  t.equal(m.streamCount, 16, 'eight streams a title')
})

t.test('a key is parsed once: its place is kept, within a bound, until its stream is dropped', async (t) => {
  const m = new DemandModel({ clock: new ManualClock(), maxTitles: 1, maxKeys: 4 })
  const k = m.keyOf(seg('a', '720p', 1))!
  t.equal(m.keyOf(seg('a', '720p', 1)), k, 'the same place, not a new parse')
  t.equal(m.keyOf('/static/app.js'), undefined)
  t.equal(m.keyOf('/static/app.js'), undefined, 'a key with no place is kept as such')
  for (let n = 2; n < 20; n++) m.record(seg('a', '720p', n))
  t.ok(m.keyCount <= 4, `at most maxKeys kept: ${m.keyCount}`)
  t.equal(m.recorded, 18, 'every request counted')
  // Eight more renditions of the title: its first stream (720p) is dropped past the bound.
  for (const r of ['144p', '240p', '360p', '480p', '540p', '1080p', '1440p', '2160p'])
    m.record(seg('a', r, 1))
  t.ok(k.stream.dropped)
  const again = m.keyOf(seg('a', '720p', 1))!
  t.not(again.stream, k.stream, 'a kept place of a dropped stream is parsed again')
  t.notOk(again.stream.dropped)
  t.equal(m.keyOf(seg('a', '720p', 1)), again)
})

t.test('the edge keeps two keys a megabyte of disk, within bounds', async (t) => {
  t.equal(keysFor(20e9), MAX_KEYS, 'the default disk: the floor')
  t.equal(keysFor(100e9), 200_000)
  t.equal(keysFor(10e12), 2 ** 19)
  const base = { upstream: ['http://127.0.0.1:9'], diskEviction: 'demand' as const }
  t.equal(demandFor(edgeConfig({ ...base, diskSize: 100e9 }))!.maxKeys, 200_000)
  t.equal(new DemandModel({ clock: new ManualClock() }).maxKeys, MAX_KEYS, 'built alone')
})

t.test('the edge builds the model from --disk-eviction and --disk-admission', async (t) => {
  const base = { upstream: ['http://127.0.0.1:9'] }
  const defaults = edgeConfig(base)
  t.equal(defaults.diskEviction, 'demand', 'demand eviction by default')
  t.equal(defaults.diskAdmission, 'demand', 'demand admission by default')
  t.equal(EDGE_SPEC.options.diskEviction!.default, 'demand')
  t.equal(EDGE_SPEC.options.diskAdmission!.default, 'demand')
  t.ok(demandFor(defaults) instanceof DemandModel, 'on by default')
  const own = admissionFor(defaults, demandFor(defaults)) as DemandAdmission
  t.ok(own instanceof DemandAdmission && own.decides && own.inner === undefined, 'the model decides')
  const lru = edgeConfig({ ...base, diskEviction: 'lru', diskAdmission: 'all' })
  t.equal(demandFor(lru), undefined, 'off with --disk-eviction lru --disk-admission all')
  t.equal(admissionFor(lru), undefined, 'and every miss goes to disk')
  t.ok(demandFor(edgeConfig({ ...base, diskEviction: 'demand' })) instanceof DemandModel)
  t.equal(demandFor(edgeConfig({ ...base, diskEviction: 'demand' }))!.halfLifeMs, 86_400_000, 'a day')
  t.equal(new DemandModel({ clock: new ManualClock() }).halfLifeMs, 86_400_000, 'a day, built alone')
  t.equal(demandFor(edgeConfig({ ...base, diskEviction: 'demand', diskSize: 0 })), undefined, 'no disk tier')
  const cfg = edgeConfig({ ...base, diskAdmission: 'demand', diskDemandHalfLife: 600_000 })
  const model = demandFor(cfg)!
  t.equal(model.halfLifeMs, 600_000)
  const adm = admissionFor(cfg, model) as DemandAdmission
  t.ok(adm instanceof DemandAdmission && adm.decides, 'the model decides')
  t.equal(admissionFor(cfg), undefined, 'without the model, no admission of its own')
  t.same(EDGE_SPEC.options.diskEviction!.choices, ['lru', 'demand'], 'the flag takes lru or demand')
  t.ok(EDGE_SPEC.options.diskAdmission!.choices!.includes('demand'))
})

t.test('counts stay finite over hundreds of half-lives (rescaled) and keep their ratios', async (t) => {
  const clock = new ManualClock()
  const m = new DemandModel({ clock, halfLifeMs: 1000 })
  for (let i = 0; i < 300; i++) {
    clock.advance(1000)
    m.record(seg('a', '720p', 1))
    m.record(seg('a', '720p', 1))
    m.record(seg('b', '720p', 1))
  }
  t.ok(m.weight(m.now()) < 2 ** 256, 'the weight was brought back down')
  const a = m.rate(m.keyOf(seg('a', '720p', 1))!)
  const b = m.rate(m.keyOf(seg('b', '720p', 1))!)
  t.ok(Number.isFinite(a) && a > 0)
  t.equal(Math.round((a / b) * 1e9) / 1e9, 2, 'twice the starts, twice the rate')
})

t.test("a stream's share is its version's share of the title times R", async (t) => {
  const clock = new ManualClock()
  const h = 3_600_000
  const m = new DemandModel({ clock, halfLifeMs: h, minAgeMs: 1000 * h })
  const at = (v: string, n: number) => `/vod/film/${v}/720p/seg-${String(n).padStart(5, '0')}.m4s`
  // A re-ingest: ten sessions on v1, then, ten half-lives later, ten on v2.
  for (let s = 0; s < 10; s++) play(m, clock, (n) => at('v1', n), 3)
  clock.advance(10 * h)
  for (let s = 0; s < 10; s++) play(m, clock, (n) => at('v2', n), 3)
  clock.advance(60_000) // no live playhead
  const old = m.rate(m.keyOf(at('v1', 2))!)
  const live = m.rate(m.keyOf(at('v2', 2))!)
  t.ok(old < live / 500, `the old version's segments fall out of demand: ${old} against ${live}`)
})

t.test('a title on a ladder no other title has is not rated as a small share of theirs', async (t) => {
  const clock = new ManualClock()
  const h = 3_600_000
  const m = new DemandModel({ clock, halfLifeMs: h, minAgeMs: 1000 * h })
  // Twenty titles start on 240p and climb to 720p; one is on 2160p alone; five sessions each.
  for (let title = 0; title < 20; title++)
    for (let s = 0; s < 5; s++) play(m, clock, (n) => seg(`t${title}`, n <= 2 ? '240p' : '720p', n), 4)
  for (let s = 0; s < 5; s++) play(m, clock, (n) => seg('uhd', '2160p', n), 4)
  clock.advance(60_000)
  const common = m.rate(m.keyOf(seg('t0', '240p', 1))!)
  const rare = m.rate(m.keyOf(seg('uhd', '2160p', 1))!)
  t.ok(Math.abs(rare / common - 1) < 0.05, `as many starts, the same rate: ${rare} against ${common}`)
})

t.test('rates stay numbers after a thousand half-lives without a request', async (t) => {
  const clock = new ManualClock()
  const m = new DemandModel({ clock, halfLifeMs: 1000 })
  play(m, clock, (n) => seg('film', '720p', n), 8)
  clock.advance(2_000_000) // 2,000 half-lives: the weight would overflow
  const r = m.rate(m.keyOf(seg('film', '720p', 2))!)
  t.ok(Number.isFinite(r) && r >= 0, `a finite rate: ${r}`)
})

t.test('a title dropped past the bound takes its streams with it', async (t) => {
  const m = new DemandModel({ clock: new ManualClock(), maxTitles: 2 })
  const a = m.keyOf(seg('a', '720p', 1))!.stream
  m.keyOf(seg('b', '720p', 1))
  m.keyOf(seg('c', '720p', 1))
  t.equal(m.titleCount, 2)
  t.ok(a.dropped, "the first title's stream is dropped")
  t.not(m.keyOf(seg('a', '720p', 2))!.stream, a, 'a later request places it anew')
})

t.test("a title's streams and versions stay bounded whatever paths clients ask for", async (t) => {
  const m = new DemandModel({ clock: new ManualClock(), maxTitles: 2 })
  // Eight streams a title at most (16 here): a thousand made-up versions of one title.
  for (let v = 0; v < 1000; v++) m.keyOf(`/vod/film/v${v}/720p/seg-00001.m4s`)
  t.equal(m.streamCount, 16)
  const title = m.keyOf('/vod/film/v999/720p/seg-00001.m4s')!.stream.title
  t.equal(title.streams.length, 16, 'the title keeps only its live streams')
  t.equal(title.versions.size, 16, 'and their versions')
})
