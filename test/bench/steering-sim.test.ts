/**
 * The steering simulation (bench/steering-sim) at a tiny size: 20 edges, 1,000 clients, two
 * hours, driven through the real steering modules. Checks what could go wrong in steering or
 * in the simulation: every session gets an edge when capacity allows, titles keep to one
 * edge per site, overload moves new clients away, a failure moves only the failed edges'
 * choices, and the same seeds give the same figures.
 */
import t from 'tap'
import { lineChartSvg, niceMax } from '../../bench/lib/chart.js'
import { DAY } from '../../bench/steering-sim/params.js'
import { chart, markdown, summarise } from '../../bench/steering-sim/report.js'
import { type SimParams, simulate } from '../../bench/steering-sim/sim.js'
import { apportion, buildWorld } from '../../bench/steering-sim/world.js'

const TINY: SimParams = {
  ...DAY,
  world: { ...DAY.world, sites: 5, edges: 20, clients: 1_000 },
  workload: { ...DAY.workload, titles: 200, hours: 2, warmupHours: 1, sessionsPerClient: 4 },
  failures: { seed: 3, randomEdges: 0, downMedianMin: 30, siteOutage: null },
}

const withFailures = (p: SimParams, randomEdges: number, site: boolean): SimParams => ({
  ...p,
  failures: { ...p.failures, randomEdges, siteOutage: site ? { atHour: 1, minutes: 20 } : null },
})

t.test('the world: sites, edges and clients as asked, capacity for the peak', async (t) => {
  const w = buildWorld({ ...TINY.world, peakSessionsPerClient: 0.1 })
  t.equal(w.sites.length, 5)
  t.equal(w.edges.length, 20)
  t.equal(w.clientZone.length, 1_000)
  t.ok(
    w.sites.every((s) => s.edges.length >= 2),
    'at least two edges per site',
  )
  t.equal(new Set(w.edges.map((e) => e.id)).size, 20, 'edge ids unique')
  t.ok(
    w.zones.every((z) => z.nearestSite >= 0 && z.nearestKm < 2_000),
    'every zone near a site',
  )
  t.same(apportion(10, [1, 1, 2], 1), [3, 3, 4])
  t.throws(() => apportion(2, [1, 1, 1], 1))
})

t.test('no failures: every session served at once, one edge per title per site', async (t) => {
  const r = simulate({
    ...TINY,
    world: { ...TINY.world, targetPeakLoad: 0.15 },
    steering: { ...TINY.steering, boundedLoadFloor: 0.9 },
  })
  t.equal(r.unserved, 0)
  t.equal(r.waits.count, 0, 'nobody waited for an edge')
  const starts = r.hours.reduce((a, h) => a + h.starts, 0)
  t.ok(starts > 100, `sessions started (${starts})`)
  t.ok(r.hours.every((h) => h.failovers === 0 && h.maxLoad <= 1 && h.overCapacityShare === 0))
  // Below the bounded-load floor nothing spills: each title's sessions of a site on one edge.
  t.ok(r.hours.every((h) => h.maxLoad < 0.9))
  t.ok(
    r.hours.every((h) => h.edgesPerTitleSite === 1),
    `titles keep to one edge per site (${r.hours.map((h) => h.edgesPerTitleSite).join(', ')})`,
  )
  t.ok(
    r.hours.every((h) => h.beyondBand === 0),
    'nobody sent beyond the band',
  )
})

t.test('overload: the load signal takes busy edges out and sends new clients further', async (t) => {
  const r = simulate({ ...TINY, world: { ...TINY.world, targetPeakLoad: 3 } })
  const events = r.hours.reduce((a, h) => a + h.overloadEvents, 0)
  t.ok(events > 0, `edges went over --load-high (${events})`)
  t.ok(
    r.hours.some((h) => h.beyondBand > 0),
    'starts sent beyond the band while the near edges were overloaded',
  )
  t.equal(r.unserved, 0, 'still every session served: the fleet as a whole has room')
})

t.test('failures: only the failed edges move, steering takes them out, everyone served', async (t) => {
  const r = simulate(withFailures(TINY, 3, true))
  t.equal(r.failures.length, 4)
  for (const f of r.failures) {
    t.not(f.detectedAfterSec, null, `${f.site}: taken out`)
    t.ok(
      f.detectedAfterSec! <= TINY.steering.failAfter * TINY.checkIntervalSec,
      `${f.site}: within failAfter rounds`,
    )
    t.equal(f.movedOthers, 0, `${f.site}: no choice moved but the failed edges' own`)
  }
  const site = r.failures.find((f) => f.kind === 'site')!
  t.ok(site.sessionsMoved > 0 && site.sameSite === 0, 'a site outage moves its sessions to other sites')
  t.ok(
    r.failures.some((f) => f.probedOnFailed > 0),
    'the probes saw choices on failed edges',
  )
  t.equal(r.unserved, 0, 'every session served in the end')
  t.ok(
    r.waits.maxSec <= (TINY.steering.failAfter + 1) * TINY.checkIntervalSec,
    'waits end once steering knows',
  )
})

t.test('checking only the edges whose answer can change gives the figures of checking all', async (t) => {
  const p = withFailures({ ...TINY, world: { ...TINY.world, targetPeakLoad: 2 } }, 3, true)
  const some = simulate(p)
  const all = simulate(p, { everyEdge: true })
  t.ok(
    some.hours.some((h) => h.overloadEvents > 0),
    'edges went in and out of overload (hysteresis)',
  )
  t.ok(some.failures.length === 4 && some.waits.count > 0, 'failures taken out; players waited')
  t.same({ ...some, setupMs: 0, runMs: 0 }, { ...all, setupMs: 0, runMs: 0 })
})

t.test('same seeds, same figures; the report and chart', async (t) => {
  const p = withFailures(TINY, 2, false)
  const a = simulate(p)
  const b = simulate(p)
  t.same({ ...a, setupMs: 0, runMs: 0 }, { ...b, setupMs: 0, runMs: 0 })
  const s = summarise(a)
  t.equal(s.edgeFailures, 2)
  const md = markdown(a, 'npm run bench:steering-sim', true)
  t.match(md, /## Per hour \(UTC\)/)
  t.match(md, /\| 1 \| /, 'a row per hour')
  const svg = chart(a)
  t.match(svg, /^<svg /)
  t.match(svg, /site max\/mean/)
  t.equal(niceMax(0.7), 1)
  t.equal(niceMax(3.2), 5)
  t.equal(niceMax(0), 1)
  t.match(
    lineChartSvg({
      title: 'a < b',
      xLabel: 'x',
      xMin: 0,
      xMax: 1,
      xTicks: [0, 1],
      panels: [{ yLabel: 'y', series: [{ name: 's', colour: '#000', points: [[0, Number.NaN]] }] }],
    }),
    /a &lt; b/,
  )
})
