/**
 * The players' A/B of bench:prefill: paced players on a warm title, without a prefill and while
 * a prefill runs, in interleaved rounds (the order rotated every round, so drift in the
 * machine's load spreads over every mode). Each run records what the machine was doing: the
 * busy share of all cores just before it starts (other work; the benchmark's own processes are
 * idle then), the 1-minute load average, and the edge's own event-loop delay over the run
 * (prom-client's histogram on /metrics, reset by every scrape). The figures: each mode's p99
 * over every request of every round (pooled), the median of the rounds' p99s, and each round's
 * p99 over the same round's p99 without a prefill.
 */
import { loadavg } from 'node:os'
import { request } from 'undici'
import { waitForQuiet } from '../lib/cpu.js'
import { median, percentile } from '../lib/stats.js'
import { type PlayersOptions, type PlayersResult, runPlayers } from './players.js'

export const MODES = ['none', 'capped', 'uncapped'] as const
export type Mode = (typeof MODES)[number]

export interface AbRun extends Omit<PlayersResult, 'latencies'> {
  readonly round: number
  readonly mode: Mode
  /** Busy share of all cores over 500 ms just before the run (the benchmark idle). */
  readonly busyBefore: number
  readonly loadavg1: number
  /** The edge's event-loop delay over the run (ms): p99 and max; NaN when not exported. */
  readonly edgeLagP99Ms: number
  readonly edgeLagMaxMs: number
  /** CPU seconds the edge process used over the run: all its threads, and its main thread alone. */
  readonly edgeCpuS: number
  readonly edgeMainCpuS: number
  /** Bytes the prefill fetched during the run (0 without one). */
  readonly filledBytes: number
}

/** CPU seconds used so far by the edge: the process (every thread) and its main thread. */
export interface EdgeCpu {
  readonly process: number
  readonly main: number
}

export interface AbDeps {
  readonly edge: string
  readonly players: PlayersOptions
  /** Starts a capped prefill; resolves to a function that cancels it and says the bytes it fetched. */
  readonly startCapped: () => Promise<() => Promise<number>>
  /** Starts uncapped prefills looping; resolves to a function that stops them (bytes fetched). */
  readonly startUncapped: () => Promise<() => Promise<number>>
  /** The edge's CPU so far (NaN where /proc is missing). */
  readonly edgeCpu: () => EdgeCpu
  /** Drops what the prefill filled, so the next fill starts cold. */
  readonly purge: () => Promise<void>
  readonly quietMaxWaitMs: number
  readonly log: (line: string) => void
}

/** The edge's event-loop delay since the last scrape, in ms. */
async function edgeLag(edge: string): Promise<{ p99: number; max: number }> {
  const res = await request(`${edge}/metrics`)
  const text = await res.body.text()
  const value = (name: string) => {
    const m = new RegExp(`^cdn_edge_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)
    return m ? Number(m[1]) * 1000 : Number.NaN
  }
  return { p99: value('p99'), max: value('max') }
}

export async function runAb(
  deps: AbDeps,
  modes: readonly Mode[],
  rounds: number,
): Promise<{ runs: AbRun[]; latencies: Record<Mode, number[]> }> {
  const runs: AbRun[] = []
  const latencies: Record<Mode, number[]> = { none: [], capped: [], uncapped: [] }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(k + r) % modes.length]!
      const busyBefore = await waitForQuiet(0.15, deps.quietMaxWaitMs)
      await edgeLag(deps.edge)
      const cpu0 = deps.edgeCpu()
      const stop =
        mode === 'capped'
          ? await deps.startCapped()
          : mode === 'uncapped'
            ? await deps.startUncapped()
            : undefined
      const res = await runPlayers(deps.players)
      const lag = await edgeLag(deps.edge)
      const cpu1 = deps.edgeCpu()
      const filledBytes = (await stop?.()) ?? 0
      await deps.purge()
      const { latencies: lat, ...rest } = res
      latencies[mode].push(...lat)
      const run: AbRun = {
        ...rest,
        round: r,
        mode,
        busyBefore,
        loadavg1: loadavg()[0]!,
        edgeLagP99Ms: lag.p99,
        edgeLagMaxMs: lag.max,
        edgeCpuS: cpu1.process - cpu0.process,
        edgeMainCpuS: cpu1.main - cpu0.main,
        filledBytes,
      }
      runs.push(run)
      deps.log(
        `round ${r + 1} ${mode}: p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, edge loop p99 ${lag.p99.toFixed(1)} ms, edge CPU ${run.edgeCpuS.toFixed(2)} s (main ${run.edgeMainCpuS.toFixed(2)}), filled ${(filledBytes / 1e6).toFixed(0)} MB, busy before ${(busyBefore * 100).toFixed(0)}%, load ${run.loadavg1.toFixed(2)}`,
      )
    }
  }
  return { runs, latencies }
}

export interface ModeSummary {
  readonly mode: Mode
  readonly rounds: number
  readonly requests: number
  readonly errors: number
  readonly p50Ms: number
  /** Over every request of every round. */
  readonly p99PooledMs: number
  readonly p99MedianMs: number
  readonly p99MinMs: number
  readonly p99MaxMs: number
  /** Pooled p99 over the pooled p99 without a prefill. */
  readonly ratioPooled: number
  /** Each round's p99 over the same round's without (empty for `none`). */
  readonly ratioPerRound: readonly number[]
  readonly busyBefore: readonly number[]
  readonly loadavg1: readonly number[]
  readonly edgeLagP99Ms: number
  readonly edgeLagMaxMs: number
  /** Median over rounds of the edge's CPU seconds per run: all threads, main thread. */
  readonly edgeCpuS: number
  readonly edgeMainCpuS: number
  /** Bytes the prefill fetched, over every round. */
  readonly filledBytes: number
  /**
   * The fill's own CPU per MB filled (ms): the edge's CPU over the mode's rounds less the same
   * rounds' without a fill, over the MB filled (NaN for `none`, or nothing filled). All threads,
   * and the main thread (the event loop players queue behind) alone.
   */
  readonly fillCpuMsPerMB: number
  readonly fillMainCpuMsPerMB: number
  /** Share of answers whose X-Cache says HIT. */
  readonly hitShare: number
}

export function summarize(
  runs: readonly AbRun[],
  latencies: Record<Mode, number[]>,
  modes: readonly Mode[],
): ModeSummary[] {
  const of = (m: Mode) => runs.filter((r) => r.mode === m)
  const baseline = new Map(of('none').map((r) => [r.round, r.p99Ms]))
  const pooledNone = percentile(latencies.none, 99)
  const noneCpu = new Map(of('none').map((r) => [r.round, r]))
  return modes.map((mode) => {
    const rs = of(mode)
    const filled = rs.reduce((s, r) => s + r.filledBytes, 0)
    // Per MB filled: each round's CPU less the same round's without a fill.
    const extra = (cpu: (r: AbRun) => number) => {
      if (mode === 'none' || filled === 0) return Number.NaN
      let s = 0
      for (const r of rs) {
        const base = noneCpu.get(r.round)
        s += base ? cpu(r) - cpu(base) : Number.NaN
      }
      return (s * 1000) / (filled / 1e6)
    }
    const p99s = rs.map((r) => r.p99Ms)
    let hits = 0
    let all = 0
    for (const r of rs)
      for (const [x, n] of Object.entries(r.xcache)) {
        all += n
        if (x.startsWith('HIT')) hits += n
      }
    return {
      mode,
      rounds: rs.length,
      requests: rs.reduce((s, r) => s + r.requests, 0),
      errors: rs.reduce((s, r) => s + r.errors, 0),
      p50Ms: percentile(latencies[mode], 50),
      p99PooledMs: percentile(latencies[mode], 99),
      p99MedianMs: median(p99s),
      p99MinMs: Math.min(...p99s),
      p99MaxMs: Math.max(...p99s),
      ratioPooled: percentile(latencies[mode], 99) / pooledNone,
      ratioPerRound: mode === 'none' ? [] : rs.map((r) => r.p99Ms / (baseline.get(r.round) ?? Number.NaN)),
      busyBefore: rs.map((r) => r.busyBefore),
      loadavg1: rs.map((r) => r.loadavg1),
      edgeLagP99Ms: median(rs.map((r) => r.edgeLagP99Ms)),
      edgeLagMaxMs: Math.max(...rs.map((r) => r.edgeLagMaxMs)),
      edgeCpuS: median(rs.map((r) => r.edgeCpuS)),
      edgeMainCpuS: median(rs.map((r) => r.edgeMainCpuS)),
      filledBytes: filled,
      fillCpuMsPerMB: extra((r) => r.edgeCpuS),
      fillMainCpuMsPerMB: extra((r) => r.edgeMainCpuS),
      hitShare: all ? hits / all : Number.NaN,
    }
  })
}
