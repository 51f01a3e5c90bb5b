/**
 * One measured load run: a generator against a URL while the server's CPU time is read from
 * /proc before and after. CPU per request is server CPU only; the generator's own time is not
 * in it (it shares the cores, which is part of the setup and stated in every report).
 */
import { availableParallelism, loadavg } from 'node:os'
import { runAutocannon } from './autocannon.js'
import { machineBusySeconds, selfAndChildrenCpuSeconds, treeCpuSeconds } from './cpu.js'
import { runH2load } from './h2load.js'
import { runHandshakes } from './handshakes.js'
import type { Generator, LoadOptions, LoadResult } from './load.js'
import { median } from './stats.js'
import { runWrk } from './wrk.js'

export interface Sample extends LoadResult {
  /** Server CPU seconds (process tree) over the run. */
  readonly cpuSeconds: number
  /** Server CPU microseconds per completed request. */
  readonly cpuUsPerReq: number
  /** CPU seconds of the load generator (this process and its reaped children, e.g. wrk). */
  readonly generatorCpuSeconds: number
  /**
   * Server and generator CPU microseconds per completed request: the whole transfer's cost. On
   * loopback the kernel charges part of each transfer's network work (delivery to the receiving
   * socket, the ACKs that release more of the sender's queue) to whichever side's process is
   * running, so how a server sends (chunk sizes, sendfile) moves cost between the two columns.
   */
  readonly transferCpuUsPerReq: number
  /**
   * Share of the machine (all cores over the run) used by processes that are neither the server
   * nor the generator: other work on a shared box. Above ~0.1 the row is noisy.
   */
  readonly foreignCpuShare: number
  /** The machine's 1-minute load average at the end of the run. */
  readonly loadAverage1m: number
}

const GENERATORS: Record<Generator, (o: LoadOptions) => Promise<LoadResult>> = {
  wrk: runWrk,
  autocannon: runAutocannon,
  h2load: runH2load,
  handshakes: runHandshakes,
}

export async function measure(generator: Generator, serverPids: readonly number[], opts: LoadOptions) {
  const cpu = () => serverPids.reduce((acc, p) => acc + treeCpuSeconds(p), 0)
  const before = cpu()
  const genBefore = selfAndChildrenCpuSeconds()
  const busyBefore = machineBusySeconds()
  const t0 = performance.now()
  const r = await GENERATORS[generator](opts)
  const wallS = (performance.now() - t0) / 1000
  const cpuSeconds = cpu() - before
  const generatorCpuSeconds = selfAndChildrenCpuSeconds() - genBefore
  const foreign = machineBusySeconds() - busyBefore - cpuSeconds - generatorCpuSeconds
  const sample: Sample = {
    ...r,
    cpuSeconds,
    cpuUsPerReq: r.requests ? (cpuSeconds * 1e6) / r.requests : Number.NaN,
    generatorCpuSeconds,
    transferCpuUsPerReq: r.requests ? ((cpuSeconds + generatorCpuSeconds) * 1e6) / r.requests : Number.NaN,
    foreignCpuShare: Math.max(0, foreign / (wallS * availableParallelism())),
    loadAverage1m: loadavg()[0]!,
  }
  return sample
}

/** The medians of several samples of one variant: what a table row shows. */
export interface Summary {
  readonly generator: Generator
  readonly rounds: number
  readonly rps: number
  readonly mbps: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuUsPerReq: number
  /** Server + generator CPU per request (Sample.transferCpuUsPerReq). */
  readonly transferCpuUsPerReq: number
  readonly errors: number
  readonly non2xx: number
  /** Worst share of the machine other processes took during any round (see Sample). */
  readonly foreignCpuShareMax: number
}

export function summarise(samples: readonly Sample[]): Summary {
  const m = (f: (s: Sample) => number) => median(samples.map(f))
  return {
    generator: samples[0]?.generator ?? 'wrk',
    rounds: samples.length,
    rps: m((s) => s.rps),
    mbps: m((s) => s.mbps),
    p50Ms: m((s) => s.p50Ms),
    p99Ms: m((s) => s.p99Ms),
    cpuUsPerReq: m((s) => s.cpuUsPerReq),
    transferCpuUsPerReq: m((s) => s.transferCpuUsPerReq),
    errors: samples.reduce((a, s) => a + s.errors, 0),
    non2xx: samples.reduce((a, s) => a + s.non2xx, 0),
    foreignCpuShareMax: Math.max(...samples.map((s) => s.foreignCpuShare)),
  }
}
