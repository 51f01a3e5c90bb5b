/**
 * The /play reason benchmark (bench/steering/reason.ts) on a small fleet: it measures real
 * decisions with and without the reason, and the reason after a new view, on a fleet where
 * some edges are overloaded.
 */
import t from 'tap'
import { reasonCost, reasonTable } from '../../bench/steering/reason.js'

t.test('reason cost: a row per fleet size, every figure measured', async (t) => {
  const rows = reasonCost([40, 200], 200)
  t.same(
    rows.map((r) => r.edges),
    [40, 200],
  )
  for (const r of rows) {
    t.ok(r.decideUs > 0 && r.decideAndReasonUs > 0 && r.reasonP99Us >= r.decideAndReasonUs)
    t.ok(r.firstAfterViewMs > 0, 'the first reason after a new view was timed')
  }
  t.match(reasonTable(rows), /\| 200 \|/)
})
