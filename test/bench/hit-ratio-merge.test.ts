/**
 * Merging hit-ratio runs (bench/hit-ratio/report.ts, `run.js --merge`): a later run's row
 * replaces an earlier one's, and the runs listed are those whose rows are still shown, so each
 * row of a merged table has its command beside it.
 */
import t from 'tap'
import { markdown, mergeDocs, type RunDoc } from '../../bench/hit-ratio/report.js'
import type { SizeResult } from '../../bench/hit-ratio/compare.js'
import type { ReplayResult } from '../../bench/hit-ratio/replay.js'

const TRACE = { requests: 100, objects: 10, days: 2, warmupDays: 1, catalogueBytes: 1e9 }

function run(command: string, rows: Record<number, Record<string, number>>, load = 1): RunDoc {
  const tally = { objects: 1, bytes: 1 }
  const result = (v: number): ReplayResult => ({
    requests: tally,
    memory: tally,
    disk: tally,
    upstream: tally,
    prefill: tally,
    objectHitRatio: v,
    byteHitRatio: v,
    memoryByteHitRatio: 0,
    diskByteHitRatio: v,
    seconds: 1,
  })
  const sizes: SizeResult[] = Object.entries(rows).map(([share, results]) => ({
    share: Number(share),
    diskBytes: 1,
    memoryBytes: 1,
    results: Object.fromEntries(Object.entries(results).map(([n, v]) => [n, result(v)])),
    che: { objectHitRatio: 0, byteHitRatio: 0 },
  }))
  return {
    generatedAt: new Date().toISOString(),
    command,
    machine: { cpus: 2, model: undefined, loadavg: [load, load, load] },
    workload: {},
    trace: TRACE,
    edge: {},
    sizes,
    cheCheck: [],
    cost: { cpuSec: 1, wallSec: 1, replaySec: 1, replayedRequests: 100, microsecondsPerRequest: 1 },
  }
}

t.test('a later run replaces rows; a run whose rows are all replaced is not listed', async (t) => {
  const a = run('bench --sizes 5,10 --policies lru,edge(demand)', {
    0.05: { lru: 0.1, 'edge(demand)': 0.2 },
    0.1: { lru: 0.3, 'edge(demand)': 0.4 },
  })
  const b = run('bench --sizes 5 --policies edge(demand)', { 0.05: { 'edge(demand)': 0.25 } }, 2)
  const ab = mergeDocs([a, b])
  t.equal(ab.sizes[0]!.results['edge(demand)']!.byteHitRatio, 0.25, 'the later run wins')
  t.equal(ab.sizes[1]!.results['edge(demand)']!.byteHitRatio, 0.4, 'rows it did not give stay')
  t.same(
    ab.parts!.map((p) => p.command),
    [a.command, b.command],
    'both runs still give rows',
  )
  // A third run re-measures every row of the first; merged onto the merge, as one does.
  const c = run("bench --sizes 5,10 --policies 'lru,edge(demand)'", {
    0.05: { lru: 0.11, 'edge(demand)': 0.21 },
    0.1: { lru: 0.31, 'edge(demand)': 0.41 },
  })
  const abc = mergeDocs([ab, c])
  t.same(
    abc.parts!.map((p) => p.command),
    [c.command],
    'the runs whose rows were all replaced are left out',
  )
  const md = markdown(abc)
  t.match(md, "`bench --sizes 5,10 --policies 'lru,edge(demand)'`: 1 s wall, 1 s CPU, load 1.0 1.0 1.0")
  t.notMatch(md, '--sizes 5 --policies', 'the replaced command is not shown')
})

t.test('a listed run whose command does not name its rows is kept', async (t) => {
  const old = {
    ...run('bench --quick', { 0.05: { lru: 0.1 } }),
    parts: [{ command: 'bench --quick', cpuSec: 3 }],
  }
  const next = run('bench --sizes 5 --policies lru', { 0.05: { lru: 0.2 } })
  t.same(
    mergeDocs([old, next]).parts!.map((p) => p.command),
    ['bench --quick', next.command],
  )
})
