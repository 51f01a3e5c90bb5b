/**
 * bench:prefill's A/B figures (bench/prefill/ab.ts summarize, tables.ts): pooled and per-round
 * p99 ratios worked by hand on made-up runs, and the --modes parser.
 */
import t from 'tap'
import { type AbRun, type Mode, summarize } from '../../bench/prefill/ab.js'
import { fillTable, parseModes, playersTable } from '../../bench/prefill/tables.js'

function run(round: number, mode: Mode, p99Ms: number, hits = 10): AbRun {
  return {
    round,
    mode,
    requests: 100,
    errors: 0,
    bytes: 1000,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms,
    xcache: { 'HIT-MEM': hits, MISS: 10 - hits },
    busyBefore: 0.1 * (round + 1),
    loadavg1: 1 + round,
    edgeLagP99Ms: mode === 'none' ? 10 : 20,
    edgeLagMaxMs: mode === 'none' ? 15 : 40 + round,
    edgeCpuS: mode === 'none' ? 1 : 2 + round,
    edgeMainCpuS: mode === 'none' ? 0.5 : 1 + round,
    filledBytes: mode === 'none' ? 0 : 100e6,
  }
}

t.test('ratios per round and pooled over every request', async (t) => {
  const runs = [run(0, 'none', 4), run(0, 'capped', 6), run(1, 'capped', 12), run(1, 'none', 8, 5)]
  // 100 latencies per mode: 1..100 ms without, 2..200 ms with a fill; the p99 (nearest rank) is 99 and 198.
  const latencies: Record<Mode, number[]> = {
    none: Array.from({ length: 100 }, (_, i) => i + 1),
    capped: Array.from({ length: 100 }, (_, i) => 2 * (i + 1)),
    uncapped: [],
  }
  const [none, capped] = summarize(runs, latencies, ['none', 'capped'])
  t.equal(none!.mode, 'none')
  t.same(none!.ratioPerRound, [], 'no ratio for the baseline')
  t.equal(none!.p99PooledMs, 99)
  t.equal(capped!.p99PooledMs, 198)
  t.equal(capped!.ratioPooled, 2)
  t.same(capped!.ratioPerRound, [6 / 4, 12 / 8], "each round over the same round's baseline")
  t.equal(capped!.p99MedianMs, 9)
  t.same([capped!.p99MinMs, capped!.p99MaxMs], [6, 12])
  t.equal(none!.hitShare, 15 / 20)
  t.equal(capped!.edgeLagMaxMs, 41)
  t.same(capped!.loadavg1, [1, 2])
  // The fill's CPU: (2 - 1) + (3 - 1) s over 200 MB; main thread (1 - 0.5) + (2 - 0.5) s.
  t.equal(capped!.filledBytes, 200e6)
  t.equal(capped!.fillCpuMsPerMB, 15)
  t.equal(capped!.fillMainCpuMsPerMB, 10)
  t.equal(capped!.edgeCpuS, 2.5)
  t.ok(Number.isNaN(none!.fillCpuMsPerMB), 'no fill, no figure')
  const md = playersTable([none!, capped!], {
    players: 2,
    intervalMs: 500,
    durationS: 1,
    rounds: 2,
    capMBps: 20,
  })
  t.match(md, /\| prefill capped at 20 MB\/s \| 100 \| 198 \| 2 \|/)
  t.match(md, /1\.5 \/ 1\.5 \/ 1\.5/)
  t.match(md, /\| 2\.5 \(1\.5\) \| 15 \(10\) \| 200 \|/)
})

t.test('--modes: known modes, the baseline always first', async (t) => {
  t.same(parseModes('capped'), ['none', 'capped'])
  t.same(parseModes('uncapped,none,capped'), ['none', 'capped', 'uncapped'])
  t.throws(() => parseModes('none,paced'), /unknown mode paced/)
})

t.test("the fill table: throughput, share of the cap, the edge's CPU per MB", async (t) => {
  const fill = {
    uncapped: { medianMBps: 40, cpuMsPerMB: 12, mainCpuMsPerMB: 7 },
    capped: { medianMBps: 15, capMBps: 20, cpuMsPerMB: 14, mainCpuMsPerMB: 8 },
  }
  const md = fillTable(fill, 2)
  t.match(md, /\| uncapped \| 40 \| {2}\| 12 \(7\) \|/)
  t.match(md, /\| capped at 20 MB\/s \| 15 \| 0\.75 \| 14 \(8\) \|/)
  t.match(fillTable(fill, 0), /Not measured/)
})
