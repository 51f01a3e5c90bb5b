/** bench:prefill's markdown: the fill throughput and the players' A/B (ab.ts), and its --modes. */
import { fmt, markdownTable } from '../lib/report.js'
import { median } from '../lib/stats.js'
import { type Mode, MODES, type ModeSummary } from './ab.js'

/** `none,capped` → the modes, `none` first (the baseline every ratio divides by). */
export function parseModes(s: string): Mode[] {
  const wanted = s.split(',').map((m) => m.trim())
  for (const m of wanted)
    if (!(MODES as readonly string[]).includes(m))
      throw new Error(`--modes: unknown mode ${m} (${MODES.join(', ')})`)
  return MODES.filter((m) => m === 'none' || wanted.includes(m))
}

interface FillCpu {
  readonly medianMBps: number
  /** The edge's CPU per MB filled, ms (median over rounds): all threads, main thread. */
  readonly cpuMsPerMB: number
  readonly mainCpuMsPerMB: number
}

interface FillFigures {
  readonly uncapped: FillCpu
  readonly capped: FillCpu & { readonly capMBps: number }
}

export function fillTable(fill: FillFigures, rounds: number): string {
  if (rounds === 0) return '## Fill throughput\n\nNot measured in this run (`--rounds 0`).'
  const rows = [
    { what: 'uncapped', ...fill.uncapped, cap: undefined as number | undefined },
    { what: `capped at ${fmt(fill.capped.capMBps)} MB/s`, ...fill.capped, cap: fill.capped.capMBps },
  ]
  return [
    `## Fill throughput (median of ${rounds} round(s))`,
    '',
    markdownTable(rows, [
      { header: 'prefill', cell: (r) => r.what },
      { header: 'MB/s (wall time, planning included)', cell: (r) => fmt(r.medianMBps), right: true },
      { header: 'share of the cap', cell: (r) => (r.cap ? fmt(r.medianMBps / r.cap) : ''), right: true },
      {
        header: 'edge CPU ms per MB filled (main thread)',
        cell: (r) => `${fmt(r.cpuMsPerMB)} (${fmt(r.mainCpuMsPerMB)})`,
        right: true,
      },
    ]),
    '',
    "Edge CPU: the edge process's CPU time over the whole job (planning included: a HEAD per segment), every thread and in brackets the main thread (the event loop), over the MB fetched; no players run meanwhile.",
  ].join('\n')
}

const range = (xs: readonly number[], scale = 1) =>
  xs.length ? `${fmt(Math.min(...xs) * scale)}-${fmt(Math.max(...xs) * scale)}` : ''

export function playersTable(
  summary: readonly ModeSummary[],
  o: { players: number; intervalMs: number; durationS: number; rounds: number; capMBps: number },
): string {
  const name = (m: Mode) =>
    m === 'none'
      ? 'no prefill'
      : m === 'capped'
        ? `prefill capped at ${fmt(o.capMBps)} MB/s`
        : 'uncapped prefills, looping'
  const ratios = (r: ModeSummary) =>
    r.mode === 'none'
      ? ''
      : `${fmt(Math.min(...r.ratioPerRound))} / ${fmt(median(r.ratioPerRound))} / ${fmt(Math.max(...r.ratioPerRound))}`
  return [
    `## Players' hit path (${o.players} players, one 720p segment every ${o.intervalMs} ms each, ${o.durationS} s per run, ${o.rounds} interleaved rounds)`,
    '',
    markdownTable(summary, [
      { header: 'while', cell: (r) => name(r.mode) },
      { header: 'p50 ms', cell: (r) => fmt(r.p50Ms), right: true },
      { header: 'p99 ms (all rounds)', cell: (r) => fmt(r.p99PooledMs), right: true },
      { header: 'p99 / no prefill', cell: (r) => fmt(r.ratioPooled), right: true },
      {
        header: "rounds' p99 min / median / max ms",
        cell: (r) => `${fmt(r.p99MinMs)} / ${fmt(r.p99MedianMs)} / ${fmt(r.p99MaxMs)}`,
        right: true,
      },
      { header: 'per-round ratio min / median / max', cell: ratios, right: true },
      {
        header: 'edge loop delay p99 / max ms',
        cell: (r) => `${fmt(r.edgeLagP99Ms)} / ${fmt(r.edgeLagMaxMs)}`,
        right: true,
      },
      {
        header: 'edge CPU s per run (main thread)',
        cell: (r) => `${fmt(r.edgeCpuS)} (${fmt(r.edgeMainCpuS)})`,
        right: true,
      },
      {
        header: 'fill CPU ms per MB filled (main thread)',
        cell: (r) => (r.mode === 'none' ? '' : `${fmt(r.fillCpuMsPerMB)} (${fmt(r.fillMainCpuMsPerMB)})`),
        right: true,
      },
      { header: 'MB filled', cell: (r) => (r.mode === 'none' ? '' : fmt(r.filledBytes / 1e6)), right: true },
      { header: 'busy before (%)', cell: (r) => range(r.busyBefore, 100), right: true },
      { header: 'load avg', cell: (r) => range(r.loadavg1), right: true },
      { header: 'requests', cell: (r) => String(r.requests), right: true },
      { header: 'errors', cell: (r) => String(r.errors), right: true },
      { header: 'hits', cell: (r) => fmt(r.hitShare), right: true },
    ]),
    '',
    "p99 (all rounds): over every request of the mode's rounds; p99 / no prefill: that over the same without a prefill. Per-round ratio: each round's p99 over the same round's without (the modes interleave, order rotated). Edge loop delay: the edge process's event-loop delay over the run (median over rounds of its p99; the max). Edge CPU: the edge process's CPU seconds over a run (median over rounds; in brackets its main thread, the event loop, without libuv's pool threads); fill CPU per MB: the mode's CPU over its rounds less the same rounds' without a fill, over the MB the fill fetched. Busy before: the share of both cores busy over 500 ms just before each run (work other than the benchmark's); load avg: the 1-minute figure after each run.",
  ].join('\n')
}
