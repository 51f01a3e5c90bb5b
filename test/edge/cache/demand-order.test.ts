/**
 * Eviction and admission by expected demand (edge/cache/demand-order.ts) in the disk index:
 * the least demanded record goes first, a victim shown to an admission is the one evicted,
 * protected records stay out of the draw, and the admission weighs candidate against victim.
 */
import t from 'tap'
import { TinyLfuAdmission } from '../../../edge/cache/admission.js'
import { DemandModel } from '../../../edge/cache/demand.js'
import { DemandAdmission, DemandOrder, SAMPLES } from '../../../edge/cache/demand-order.js'
import { DiskIndex, DiskRecord } from '../../../edge/cache/disk-index.js'
import { ManualClock } from '../../../src/clock.js'
import { meta } from './store-contract.js'
import { play, seg } from './demand-paths.js'

const OPTS = { heuristicMaxMs: 86_400_000 }

function rec(key: string, size = 10): DiskRecord {
  const id = { dev: 0, ino: 0, size, mtimeMs: 0 }
  return new DiskRecord({ key, file: key, size, id, protected: false }, meta(key), OPTS)
}

/** A model where `hit` has four sessions and `flop` one, their playheads stopped a minute ago. */
function model(): { m: DemandModel; clock: ManualClock } {
  const clock = new ManualClock()
  const m = new DemandModel({ clock })
  // Positions 2-3: 3 of 5 sessions; 4-7: 2 of 5.
  for (let s = 0; s < 4; s++) play(m, clock, (n) => seg('hit', '720p', n), s < 2 ? 8 : s === 2 ? 3 : 1)
  play(m, clock, (n) => seg('flop', '720p', n), 1)
  clock.advance(60_000)
  return { m, clock }
}

t.test('the disk index evicts the least demanded record', async (t) => {
  const { m, clock } = model()
  const evicted: string[] = []
  const index = DiskIndex.forTier({ maxBytes: 40, protectedShare: 0.5, demand: m }, (r) =>
    evicted.push(r.key),
  )
  t.ok(index.order instanceof DemandOrder)
  for (const key of [
    seg('hit', '720p', 1),
    seg('flop', '720p', 1),
    seg('hit', '720p', 6),
    seg('hit', '720p', 2),
  ])
    index.add(rec(key))
  t.equal(index.order!.size, 4)
  index.add(rec(seg('hit', '720p', 3)))
  t.same(evicted, [seg('flop', '720p', 1)], 'the title with one session')
  index.add(rec(seg('hit', '720p', 4)))
  t.same(evicted[1], seg('hit', '720p', 6), 'then the late segment of the popular one')
  t.equal(index.bytes, 40)
  t.equal(index.order!.size, 4)
  // Equal demand: the record idle longest goes first.
  const twins = DiskIndex.forTier({ maxBytes: 20, protectedShare: 0, demand: m }, (r) => evicted.push(r.key))
  const a = rec('/static/a.js')
  const b = rec('/static/b.js')
  twins.add(a)
  twins.add(b)
  clock.advance(1000)
  twins.touch(a)
  twins.add(rec('/static/c.js'))
  t.equal(evicted.at(-1), '/static/b.js', 'outside /vod/: by recency')
})

t.test('a rate that is not a number still yields a victim: the tier stays within its size', async (t) => {
  // A half-life of NaN (a config built in code once let one through) makes every rate NaN.
  const clock = new ManualClock()
  const m = new DemandModel({ clock, halfLifeMs: Number.NaN })
  play(m, clock, (n) => seg('film', '720p', n), 8)
  t.ok(Number.isNaN(m.rate(m.keyOf(seg('film', '720p', 2))!)), 'the rates are NaN')
  const evicted: string[] = []
  const index = DiskIndex.forTier({ maxBytes: 30, protectedShare: 0, demand: m }, (r) => evicted.push(r.key))
  for (let n = 1; n <= 8; n++) index.add(rec(seg('film', '720p', n)))
  t.equal(evicted.length, 5, 'five evicted to hold eight records of 10 bytes in 30')
  t.equal(index.bytes, 30)
  // Admission weighs NaN as eviction does: no rate, not a refusal of everything.
  const admission = new DemandAdmission(m, undefined, true)
  t.equal(
    admission.admit(seg('film', '720p', 9), () => seg('film', '720p', 1)),
    true,
    'admitted against a victim of no rate',
  )
})

t.test('the victim an admission is shown is the record evicted', async (t) => {
  const { m } = model()
  const evicted: string[] = []
  const index = DiskIndex.forTier({ maxBytes: 10 * 200, protectedShare: 0, demand: m }, (r) =>
    evicted.push(r.key),
  )
  for (let n = 1; n <= 200; n++) index.add(rec(seg(n % 2 ? 'hit' : 'flop', '720p', n)))
  const shown = index.victim(10)!.key
  index.add(rec(seg('hit', '720p', 999)))
  t.same(evicted, [shown])
  t.equal(index.victim(0), undefined, 'room without evicting: no victim')
  // A draw of SAMPLES among 200: below the median demand (all but certain, and seeded).
  const now = m.now()
  const rates = index
    .records()
    .map((r) => index.order!.rate(r, now))
    .sort((x, y) => x - y)
  const v = index.victim(10)!
  t.ok(index.order!.rate(v, now) <= rates[100]!, 'a low-demand victim')
  t.ok(SAMPLES < 200)
})

t.test('protected records are never drawn; released ones are', async (t) => {
  const { m } = model()
  const index = DiskIndex.forTier({ maxBytes: 100, protectedShare: 0.5, demand: m }, () => undefined)
  index.add(rec(seg('flop', '720p', 1)))
  index.add(rec(seg('hit', '720p', 1)))
  t.ok(index.protect(seg('flop', '720p', 1), 'flop', 0))
  t.equal(index.order!.size, 1)
  t.equal(index.victim(100)!.key, seg('hit', '720p', 1), 'the protected one is not a victim')
  index.unprotectTitle('flop')
  t.equal(index.order!.size, 2)
  t.equal(index.victim(100)!.key, seg('flop', '720p', 1))
  index.remove(seg('flop', '720p', 1))
  t.equal(index.order!.size, 1)
})

t.test('admission by expected demand', async (t) => {
  const { m } = model()
  const adm = new DemandAdmission(m, undefined, true)
  t.ok(
    adm.admit(seg('flop', '720p', 1), () => undefined),
    'room: admitted',
  )
  t.ok(
    adm.admit(seg('hit', '720p', 1), () => seg('flop', '720p', 1)),
    'more wanted than the victim',
  )
  t.notOk(
    adm.admit(seg('flop', '720p', 1), () => seg('hit', '720p', 1)),
    'less wanted than the victim',
  )
  t.ok(
    adm.admit('/static/x.js', () => seg('hit', '720p', 1)),
    'a key the model cannot place: admitted',
  )
  t.same([adm.admitted, adm.refused], [3, 1])
  const before = m.recorded
  adm.record(seg('flop', '720p', 2))
  t.equal(m.recorded, before + 1, 'every request reaches the model')

  // With another admission deciding, the model only learns.
  const tiny = new TinyLfuAdmission(100)
  const both = new DemandAdmission(m, tiny, false)
  both.record('/vod/x/v1/720p/seg-00001.m4s')
  t.equal(tiny.frequency('/vod/x/v1/720p/seg-00001.m4s'), 1, 'counted by TinyLFU too')
  t.equal(m.recorded, before + 2)
  t.notOk(
    both.admit('/a', () => '/vod/x/v1/720p/seg-00001.m4s'),
    "TinyLFU's answer",
  )
  t.ok(
    new DemandAdmission(m, undefined, false).admit('/a', () => '/b'),
    'nobody decides: admitted',
  )
})
