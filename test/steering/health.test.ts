import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { applyRound, HealthMonitor, type HealthOptions } from '../../steering/health.js'
import { FleetState } from '../../steering/fleet-state.js'
import {
  applyCheck,
  type CheckResult,
  type EdgeHealth,
  type HealthRules,
  initialHealth,
  isUsable,
} from '../../steering/health-state.js'
import { parseFleet } from '../../steering/registry.js'
import { deadUrl, edgeStatus, startContractEdge, startHangingServer } from '../helpers/steering.js'

const RULES = { failAfter: 3, recoverAfter: 2, loadHigh: 0.8, loadLow: 0.6 }
const CAP = 1000
const ok = (egress = 0): CheckResult => ({
  ok: true,
  status: edgeStatus('e', { egressBytesPerSec: egress }),
  latencyMs: 1,
})
const fail: CheckResult = { ok: false, kind: 'timeout', message: 'no answer', latencyMs: 1000 }

/** Feeds results one by one; returns the usable flag after each, and the log of changes. */
function run(results: CheckResult[], start: EdgeHealth = initialHealth('e')) {
  let h = start
  const usable: boolean[] = []
  const changes: string[] = []
  results.forEach((r, i) => {
    const { next, change } = applyCheck(h, r, CAP, RULES, i * 1000)
    h = next
    usable.push(isUsable(h))
    if (change) changes.push(`${change.from}→${change.to}`)
  })
  return { usable, changes, last: h }
}

t.test('reachability hysteresis as a table', async (t) => {
  const cases: { name: string; results: CheckResult[]; usable: boolean[]; changes: string[] }[] = [
    {
      name: 'first good check brings a new edge in',
      results: [ok()],
      usable: [true],
      changes: ['unknown→up'],
    },
    {
      name: 'out only after failAfter consecutive failures',
      results: [ok(), fail, fail, fail],
      usable: [true, true, true, false],
      changes: ['unknown→up', 'up→down'],
    },
    {
      name: 'a success in between resets the count',
      results: [ok(), fail, fail, ok(), fail, fail],
      usable: [true, true, true, true, true, true],
      changes: ['unknown→up'],
    },
    {
      name: 'back only after recoverAfter consecutive successes',
      results: [ok(), fail, fail, fail, ok(), fail, ok(), ok()],
      usable: [true, true, true, false, false, false, false, true],
      changes: ['unknown→up', 'up→down', 'down→up'],
    },
    {
      name: 'never reachable: unknown, then down',
      results: [fail, fail, fail],
      usable: [false, false, false],
      changes: ['unknown→down'],
    },
  ]
  for (const c of cases) {
    const r = run(c.results)
    t.same(r.usable, c.usable, `${c.name}: usable`)
    t.same(r.changes, c.changes, `${c.name}: changes`)
  }
})

t.test('load hysteresis: out above loadHigh, back below loadLow, no flapping between', async (t) => {
  const loads = [500, 850, 790, 700, 610, 590, 790, 810]
  const r = run(loads.map((l) => ok(l)))
  t.same(r.usable, [true, false, false, false, false, true, true, false])
  t.same(r.changes, ['unknown→up', 'up→overloaded', 'overloaded→up', 'up→overloaded'])
  t.match(r.last.why, /overloaded: load 0.81 above 0.8 \(back below 0.6\)/)
  t.equal(r.last.load, 0.81)
})

t.test('queueing delay: the median of the last 3 round trips above the floor, with hysteresis', async (t) => {
  const at = (latencyMs: number): CheckResult => ({ ...ok(100), latencyMs })
  const rules: HealthRules = { ...RULES, queueDelayHigh: 100 }
  const feed = (latencies: number[], r: HealthRules = rules) => {
    let h = initialHealth('e')
    const usable: boolean[] = []
    const changes: string[] = []
    latencies.forEach((ms, i) => {
      const { next, change } = applyCheck(h, at(ms), CAP, r, i * 1000)
      h = next
      usable.push(isUsable(h))
      if (change) changes.push(`${change.from}→${change.to}`)
    })
    return { usable, changes, last: h }
  }
  // Floor 20; one slow answer (500) among quick ones is not a queue; two of three are. Out at
  // 280 ms of queue, still out at 70 (above half of 100) after one quick answer, back at 40.
  const r = feed([20, 25, 500, 22, 24, 300, 320, 310, 90, 60, 80, 60, 40])
  t.same(r.usable, [true, true, true, true, true, true, false, false, false, false, false, true, true])
  t.same(r.changes, ['unknown→up', 'up→overloaded', 'overloaded→up'])
  t.equal(r.last.floorLatencyMs, 20)
  t.same(r.last.recentLatencyMs, [80, 60, 40])
  t.equal(r.last.queueDelayMs, 40)
  const out = feed([20, 300, 320, 310])
  t.match(
    out.last.why,
    /overloaded: \/status waits 290 ms in its uplink's queue \(round trip 310 ms, floor 20 ms\), above 100 ms/,
  )
  t.equal(out.last.overloaded, true)
  t.equal(out.last.loadOver, false)
  t.equal(feed([20, 300, 320, 310], RULES).last.overloaded, false, 'off without queueDelayHigh')
  t.equal(feed([20, 300]).last.queueDelayMs, null, 'no reading before 3 checks')
})

t.test(
  'an edge at its connection cap (503 CDN_ERR_OVERLOADED): reachable, out until /status answers',
  async (t) => {
    const full: CheckResult = { ok: false, kind: 'full', message: '/status answered 503', latencyMs: 1 }
    const cases: { name: string; results: CheckResult[]; usable: boolean[]; changes: string[] }[] = [
      {
        name: 'up, then full: overloaded, never down',
        results: [ok(), full, full, full, ok()],
        usable: [true, false, false, false, true],
        changes: ['unknown→up', 'up→overloaded', 'overloaded→up'],
      },
      {
        name: 'full at its first check: up and overloaded',
        results: [full, ok()],
        usable: [false, true],
        changes: ['unknown→overloaded', 'overloaded→up'],
      },
      {
        name: 'a failure after full does not bring it back',
        results: [ok(), full, fail, ok()],
        usable: [true, false, false, true],
        changes: ['unknown→up', 'up→overloaded', 'overloaded→up'],
      },
      {
        name: 'down, then full: back as reachable after recoverAfter answers, still out',
        results: [fail, fail, fail, full, full, ok()],
        usable: [false, false, false, false, false, true],
        changes: ['unknown→down', 'down→overloaded', 'overloaded→up'],
      },
    ]
    for (const c of cases) {
      const r = run(c.results)
      t.same(r.usable, c.usable, `${c.name}: usable`)
      t.same(r.changes, c.changes, `${c.name}: changes`)
    }
    t.match(run([ok(), full]).last.why, /^overloaded: at its connection cap/)

    // The whole fleet filling at once is not steering's network trouble: no fail-static.
    const state = new FleetState()
    state.setAll(
      fleet([
        { id: 'a', url: 'http://127.0.0.1:1' },
        { id: 'b', url: 'http://127.0.0.1:2' },
      ]).edges,
    )
    applyRound(state, state.list(), [ok(), ok()], 0, RULES, quiet)
    for (let i = 1; i <= 3; i++) applyRound(state, state.list(), [full, full], i * 1000, RULES, quiet)
    t.equal(state.fields.failStatic, false, 'no fail-static')
    t.equal(state.liveUsableCount, 0)
    t.same(
      state.health().map((h) => [h.state, h.overloaded]),
      [
        ['up', true],
        ['up', true],
      ],
    )
  },
)

t.test('why an edge is out, and the last status kept', async (t) => {
  const r = run([ok(100), fail, fail, fail])
  t.match(r.last.why, /^timeout: no answer \(3 consecutive failures; back after 2 good checks, 0 so far\)/)
  t.equal(r.last.status?.egressBytesPerSec, 100, 'last good status kept for the dashboard')
  t.equal(r.last.lastOkAt, 0)
  t.equal(r.last.lastCheckAt, 3000)
})

function options(over: Partial<HealthOptions> = {}): HealthOptions {
  return {
    intervalMs: 3_600_000,
    // Far above any answer of a live server on a busy machine: a check fails only where the
    // test makes it fail (the hanging server sets its own short timeout).
    timeoutMs: 30_000,
    failAfter: 2,
    recoverAfter: 2,
    loadHigh: 0.8,
    loadLow: 0.6,
    concurrency: 8,
    maxStatusBytes: 1 << 20,
    ...over,
  }
}

const quiet = { info: () => undefined, warn: () => undefined }

function fleet(edges: { id: string; url: string }[]) {
  return parseFleet({
    edges: edges.map((e) => ({ ...e, site: 's', lat: 0, lon: 0, capacityBytesPerSec: 1000 })),
  })
}

t.test('monitor: real status servers, injected clock, state-change log lines', async (t) => {
  const a = await startContractEdge(t, 'a')
  const b = await startContractEdge(t, 'b')
  const clock = new ManualClock()
  const lines: Record<string, unknown>[] = []
  const log = {
    info: (o: Record<string, unknown>) => lines.push(o),
    warn: (o: Record<string, unknown>) => lines.push(o),
  }
  const m = new HealthMonitor(
    fleet([a, b].map((e, i) => ({ id: 'ab'[i]!, url: e.url }))),
    options(),
    clock,
    log,
  )
  t.teardown(() => m.stop())
  await m.checkNow()
  t.equal(m.view.usableCount, 2)
  t.equal(m.edges[0]!.lastCheckAt, clock.now(), 'timestamps come from the injected clock')

  a.mode = 'error'
  clock.advance(1000)
  await m.checkNow()
  t.equal(m.edges[0]!.state, 'up', 'one failure is not enough')
  clock.advance(1000)
  await m.checkNow()
  t.equal(m.edges[0]!.state, 'down')
  t.match(m.edges[0]!.why, /http: \/status answered 500/)
  t.equal(m.edges[0]!.changedAt, clock.now())
  t.equal(m.view.usableCount, 1)

  a.mode = 'ok'
  await m.checkNow()
  t.equal(m.edges[0]!.state, 'down', 'one success is not enough')
  await m.checkNow()
  t.equal(m.edges[0]!.state, 'up')

  b.status = edgeStatus('b', { egressBytesPerSec: 900 })
  await m.checkNow()
  t.equal(m.view.edges[1]!.usable, false, 'overloaded edge out of rotation')
  b.mode = 'bad-json'
  await m.checkNow()
  t.match(m.edges[1]!.lastError, /bad-status/)

  t.match(
    lines.map((l) => `${l.event} ${l.edge} ${l.from}→${l.to}`),
    [
      'edge-state a unknown→up',
      'edge-state b unknown→up',
      'edge-state a up→down',
      'edge-state a down→up',
      'edge-state b up→overloaded',
    ],
  )
})

t.test('an edge that accepts and never answers is marked down by the timeout', async (t) => {
  const hang = await startHangingServer(t)
  const good = await startContractEdge(t, 'good')
  const m = new HealthMonitor(
    fleet([
      { id: 'hang', url: hang.url },
      { id: 'good', url: good.url },
    ]),
    // Long enough for the good edge to answer on a busy machine (it is checked with the same timeout).
    options({ timeoutMs: 2000 }),
    new ManualClock(),
    quiet,
  )
  t.teardown(() => m.stop())
  await m.checkNow()
  await m.checkNow()
  t.equal(m.edges[0]!.state, 'down')
  t.match(m.edges[0]!.lastError, /^timeout: no answer within 2000 ms/)
  t.equal(m.edges[1]!.state, 'up', 'the good edge is unaffected')
  t.ok(hang.sockets >= 1, 'the hanging server did accept')
  // Decisions read the view synchronously while a round is stuck on the hanging edge.
  const round = m.checkNow()
  t.equal(m.view.usableCount, 1, 'view readable during a round')
  await round
})

t.test('fail-static: every edge down at once keeps the last known-good view, flagged', async (t) => {
  const a = await startContractEdge(t, 'a')
  const b = await startContractEdge(t, 'b')
  const m = new HealthMonitor(
    fleet([
      { id: 'a', url: a.url },
      { id: 'b', url: b.url },
    ]),
    options(),
    new ManualClock(),
    quiet,
  )
  t.teardown(() => m.stop())
  await m.checkNow()
  a.mode = 'error'
  b.mode = 'error'
  await m.checkNow()
  await m.checkNow()
  t.ok(
    m.edges.every((h) => h.state === 'down'),
    'live: all down',
  )
  t.equal(m.view.failStatic, true)
  t.equal(m.view.usableCount, 2, 'decisions still see both edges')
  await m.checkNow()
  t.equal(m.view.failStatic, true, 'stays fail-static while everything is down')
  b.mode = 'ok'
  await m.checkNow()
  await m.checkNow()
  t.equal(m.view.failStatic, false, 'over once an edge answers')
  t.same(
    m.view.edges.map((e) => e.usable),
    [false, true],
  )
})

t.test('edges leaving one by one is a real outage, not fail-static', async (t) => {
  const a = await startContractEdge(t, 'a')
  const m = new HealthMonitor(
    fleet([
      { id: 'a', url: a.url },
      { id: 'dead', url: await deadUrl() },
    ]),
    options(),
    new ManualClock(),
    quiet,
  )
  t.teardown(() => m.stop())
  await m.checkNow()
  await m.checkNow()
  t.equal(m.edges[1]!.state, 'down')
  t.match(m.edges[1]!.lastError, /refused/)
  a.mode = 'error'
  await m.checkNow()
  await m.checkNow()
  t.equal(m.view.failStatic, false)
  t.equal(m.view.usableCount, 0)
})
