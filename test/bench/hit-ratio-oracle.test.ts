/**
 * `edge(demand-oracle)` (bench/hit-ratio/oracle-demand.ts): the demand model told the
 * generator's true rates. Its rates must be the generator's: the Zipf share of the day's ranking,
 * the diurnal curve, the share of sessions that reach a segment, nothing past a title's end.
 */
import t from 'tap'
import { SMALL_WORKLOAD } from './small-workload.js'
import { FILE_INDEX } from '../../bench/hit-ratio/catalogue.js'
import { dayPopularity, generateTrace } from '../../bench/hit-ratio/generate.js'
import { OracleDemand } from '../../bench/hit-ratio/oracle-demand.js'
import { ReplayClock } from '../../bench/hit-ratio/replay.js'
import { DAY_MS } from '../../bench/hit-ratio/trace.js'

const HOUR = 3_600_000
const g = generateTrace(SMALL_WORKLOAD)
const cat = g.catalogue
const p = SMALL_WORKLOAD
const clock = new ReplayClock()
const oracle = new OracleDemand(clock, cat, p, g.sessionsPerDay, g.trace.startMs)
/** The segment at index `seg` (file seg + 2) of rung `rung`. */
const segment = (title: (typeof cat.titles)[number], rung: number, seg: number) => {
  const k = oracle.keyOf(cat.filePath(title, rung, seg + 2))
  if (!k) throw new Error('not a media path')
  return k
}

t.test("a title's rate is its Zipf share of the day's sessions", async (t) => {
  clock.at = g.trace.startMs + DAY_MS + 3 * HOUR
  const { titles } = dayPopularity(cat, p, 1)
  const [first, second] = [titles[0]!, titles[1]!]
  const a = oracle.rate(segment(first, 2, 0))
  const b = oracle.rate(segment(second, 2, 0))
  t.ok(a > 0, 'a rate')
  t.ok(Math.abs(a / b - 2 ** p.alpha) < 1e-9, `ranks 1 and 2: ${a / b} = 2^alpha`)
  const playlist = oracle.keyOf(cat.filePath(first, 2, FILE_INDEX))!
  t.equal(playlist.pos, 0, "a rendition's playlist sits at position 0")
  t.ok(oracle.rate(playlist) > 0, 'and is asked for by every session that plays the rung')
})

t.test('the diurnal curve: more at the peak hour than half a day away', async (t) => {
  const title = dayPopularity(cat, p, 1).titles[0]!
  const dayStart = g.trace.startMs + DAY_MS
  const peak = (p.peakHour - p.dayStartHour + 24) % 24
  clock.at = dayStart + peak * HOUR
  const atPeak = oracle.rate(segment(title, 2, 0))
  clock.at = dayStart + ((peak + 12) % 24) * HOUR
  const atTrough = oracle.rate(segment(title, 2, 0))
  t.ok(
    Math.abs(atPeak / atTrough - (1 + p.diurnalAmplitude) / (1 - p.diurnalAmplitude)) < 1e-9,
    `peak ÷ trough ${atPeak / atTrough}`,
  )
})

t.test('later segments are reached by fewer sessions, none past the end', async (t) => {
  clock.at = g.trace.startMs + DAY_MS + HOUR
  const title = dayPopularity(cat, p, 1).titles[0]!
  t.equal(oracle.reach(title, 0), 1, 'every session plays the first segment')
  let last = 1
  for (let seg = 1; seg < title.segments; seg += 7) {
    const r = oracle.reach(title, seg)
    t.ok(r <= last, `reach(${seg}) ${r} <= ${last}`)
    last = r
  }
  t.ok(last > 0 && last < 0.5, 'most sessions stop before the end')
  t.equal(oracle.reach(title, title.segments), 0, 'nothing past the last segment')
  t.equal(oracle.rate(segment(title, 2, title.segments)), 0, 'no rate past the end (no playhead either)')
  t.equal(oracle.keyOf('/not/a/title'), undefined, 'a path outside /vod/ has no key')
})
