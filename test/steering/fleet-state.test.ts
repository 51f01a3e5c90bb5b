import t from 'tap'
import { prng } from '../../fixtures/prng.js'
import { FleetState, type Member } from '../../steering/fleet-state.js'
import { applyRound } from '../../steering/health.js'
import { applyCheck, type CheckResult, isUsable } from '../../steering/health-state.js'
import type { EdgeConfig } from '../../steering/registry.js'
import { DEFAULT_SELECT_OPTIONS, select } from '../../steering/select.js'
import type { EdgeStatus } from '../../src/http/status.js'

const rules = { failAfter: 1, recoverAfter: 1, loadHigh: 0.9, loadLow: 0.7 }
const ok = (egress: number): CheckResult => ({
  ok: true,
  status: { egressBytesPerSec: egress, titlesComplete: [] } as unknown as EdgeStatus,
  latencyMs: 1,
})
const fail: CheckResult = { ok: false, kind: 'refused', message: 'refused', latencyMs: 1 }

function config(rnd: () => number, id: string): EdgeConfig {
  const s = Math.floor(rnd() * 40)
  return {
    id,
    url: `http://${id}`,
    site: `s${s}`,
    lat: ((s * 37) % 160) - 80 + (rnd() < 0.2 ? rnd() : 0),
    lon: ((s * 91) % 340) - 170,
    capacityBytesPerSec: 100,
    weight: rnd() < 0.1 ? 2 : 1,
  }
}

t.test('joins, leaves, changes and health rounds applied one by one decide as a full scan', async (t) => {
  const rnd = prng(99)
  const fleet = new FleetState()
  const places = Array.from({ length: 12 }, () => ({ lat: rnd() * 160 - 80, lon: rnd() * 340 - 170 }))
  let made = 0
  let compared = 0
  /** Usability by id at the last good round, kept here independently of the fleet state. */
  let good = new Map<string, boolean>()
  let failStatic = false
  for (let i = 0; i < 60; i++) fleet.upsert(config(rnd, `e${made++}`))
  for (let step = 0; step < 400; step++) {
    const r = rnd()
    const ids = fleet.configs().map((c) => c.id)
    if (r < 0.2) t.equal(fleet.upsert(config(rnd, `e${made++}`)), 'joined')
    else if (r < 0.35 && ids.length > 2) t.ok(fleet.remove(ids[Math.floor(rnd() * ids.length)]!))
    else if (r < 0.45) {
      const id = ids[Math.floor(rnd() * ids.length)]!
      const moved = { ...config(rnd, id) }
      t.equal(fleet.upsert(moved), 'changed', 'a moved edge changes')
      t.equal(fleet.upsert({ ...moved }), 'same', 'an equal config is no change')
    } else {
      // A health round over the whole fleet or part of it: some answer (some loaded), some fail.
      const part = rnd() < 0.5
      for (const m of fleet.list()) {
        if (part && rnd() < 0.7) continue
        const x = rnd()
        const res = x < 0.25 ? fail : ok(x < 0.35 ? 95 : x * 60)
        fleet.setHealth(m, applyCheck(m.health, res, m.config.capacityBytesPerSec, rules, step).next)
      }
      failStatic = rnd() < 0.1 && fleet.hasGood
      fleet.settle(failStatic, failStatic ? step : null, step, !failStatic)
      if (!failStatic) good = new Map(fleet.health().map((h) => [h.id, isUsable(h)]))
    }
    const edges = fleet.edges()
    const health = fleet.health()
    t.equal(fleet.fields.usableCount, edges.filter((e) => e.usable).length)
    t.equal(fleet.liveUsableCount, health.filter(isUsable).length, 'live count kept as health changes')
    t.equal(
      fleet.allDown,
      health.every((h) => h.state === 'down'),
    )
    // Each slot holds what the last settle decided: live usability, or the known-good one.
    const want = health.map((h) => (failStatic ? (good.get(h.id) ?? false) : isUsable(h)))
    const got = edges.map((e) => e.usable)
    if (JSON.stringify(got) !== JSON.stringify(want))
      t.fail(`step ${step}: published usability`, { got, want })
    for (let q = 0; q < 4; q++) {
      const place = places[Math.floor(rnd() * places.length)]!
      const title = `t${Math.floor(rnd() * 20)}`
      const want = select(place, edges, title, DEFAULT_SELECT_OPTIONS).map((x) => x.edge.id)
      const got = fleet.index
        .select(place, fleet.bySlot, title, DEFAULT_SELECT_OPTIONS, true)
        .map((x) => x.edge.id)
      if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`step ${step}`, { got, want })
      compared++
    }
  }
  t.equal(compared, 1600)
  t.equal(fleet.remove('nobody'), false, 'removing an unknown id changes nothing')
})

t.test('fail-static writes the last known-good usability; a new edge is not in it', async (t) => {
  const fleet = new FleetState()
  const rnd = prng(5)
  for (const id of ['a', 'b']) fleet.upsert(config(rnd, id))
  for (const m of fleet.list()) fleet.setHealth(m, applyCheck(m.health, ok(10), 100, rules, 1).next)
  fleet.settle(false, null, 1, true)
  t.equal(fleet.fields.usableCount, 2)
  for (const m of fleet.list()) fleet.setHealth(m, applyCheck(m.health, fail, 100, rules, 2).next)
  fleet.settle(true, 2, 2, false)
  t.equal(fleet.fields.usableCount, 2, 'both stay in rotation from the last good round')
  t.equal(fleet.fields.failStaticSince, 2)
  fleet.upsert(config(rnd, 'c'))
  t.same(
    fleet.edges().map((e) => [e.id, e.usable]),
    [
      ['a', true],
      ['b', true],
      ['c', false],
    ],
  )
  t.same(
    fleet.health().map((h) => h.state),
    ['down', 'down', 'unknown'],
    'live health stays true to the checks',
  )
  fleet.remove('a')
  fleet.settle(false, null, 3, false)
  t.same(
    fleet.edges().map((e) => [e.id, e.usable]),
    [
      ['b', false],
      ['c', false],
    ],
  )
})

t.test('an edge at a new URL starts over unchecked, as a new edge does', async (t) => {
  const fleet = new FleetState()
  const rnd = prng(7)
  const log = { info: () => undefined, warn: () => undefined }
  const round = (result: (m: Member) => CheckResult) => {
    const members = fleet.list()
    applyRound(fleet, members, members.map(result), 1, rules, log)
  }
  const a = config(rnd, 'a')
  fleet.upsert(a)
  fleet.upsert(config(rnd, 'b'))
  round(() => ok(10))
  const usable = () => Object.fromEntries(fleet.edges().map((e) => [e.id, e.usable]))
  t.same(usable(), { a: true, b: true })

  // A round starts (its members taken), the registry moves a to another URL, the round ends:
  // the old URL's answer says nothing of the new one and is dropped.
  const inFlight = fleet.list()
  t.equal(fleet.upsert({ ...a, url: 'http://a-elsewhere' }), 'changed')
  t.same(usable(), { a: false, b: true }, 'out of rotation at once')
  t.match(fleet.healthOf('a'), { state: 'unknown', checks: 0, why: 'not checked yet' })
  applyRound(fleet, inFlight, [ok(10), ok(10)], 2, rules, log)
  t.same(usable(), { a: false, b: true }, 'a check of the old URL does not bring it in')
  t.same(
    fleet.configs().map((c) => c.id),
    ['a', 'b'],
    'keeps its place in the fleet order',
  )
  round(() => ok(10))
  t.same(usable(), { a: true, b: true }, 'in on its first good check at the new URL')
  t.equal(fleet.upsert({ ...a, url: 'http://a-elsewhere', weight: 3 }), 'changed')
  t.same(usable(), { a: true, b: true }, 'another change at the same URL keeps its health')

  // Fail-static hands out the last known-good usability; an edge at a new URL had none.
  round(() => fail)
  t.ok(fleet.fields.failStatic, 'every edge down at once')
  t.same(usable(), { a: true, b: true })
  fleet.upsert({ ...a, url: 'http://a-third-place' })
  t.same(usable(), { a: false, b: true }, "not in rotation from the old URL's known-good usability")
})
