/**
 * nghttp2's h2load (Debian's nghttp2-client), driven as a child process for HTTP/2 load: one
 * stream at a time per connection (`-m 1`, so its concurrency is the connection count, as with
 * wrk), and a per-request log file from which the exact percentiles
 * are taken (h2load itself prints only min, max, mean and deviation). What h2load says it
 * negotiated (TLS version, cipher, key exchange, ALPN) is kept with the result.
 *
 * Runs are counted, not timed: h2load 1.52's timed mode (`-D`) hangs now and then at its end
 * with many connections to node's HTTP/2 server (its clients send GOAWAY and wait). The count
 * is the last rate seen for the same URL times the duration asked for (the first run of a URL,
 * the benchmark's unmeasured warm-up, makes 20 requests per connection).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { finishResult, type LoadOptions, type LoadResult, type Negotiated } from './load.js'
import { runCommand } from './proc.js'
import { percentile } from './stats.js'

export interface H2loadSummary {
  durationS: number
  requests: number
  succeeded: number
  failed: number
  errored: number
  timeout: number
  status2xx: number
  /** 3xx, 4xx and 5xx answers. */
  statusOther: number
  bytes: number
  negotiated: Negotiated
}

const num = (s: string | undefined) => Number((s ?? 'NaN').replace(/,/g, ''))

/** Reads h2load's closing summary; throws when it has none (h2load failed to run). */
export function parseH2loadOutput(stdout: string): H2loadSummary {
  const finished = /finished in ([\d.]+)(ms|s),/.exec(stdout)
  const req =
    /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      stdout,
    )
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout)
  const traffic = /traffic: \S+ \((\d+)\) total/.exec(stdout)
  if (!finished || !req || !status || !traffic)
    throw new Error(`h2load printed no summary:\n${stdout.slice(-2000)}`)
  const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(stdout)?.[1]?.trim() ?? ''
  return {
    durationS: num(finished[1]) / (finished[2] === 'ms' ? 1000 : 1),
    requests: num(req[1]),
    succeeded: num(req[2]),
    failed: num(req[3]),
    errored: num(req[4]),
    timeout: num(req[5]),
    status2xx: num(status[1]),
    statusOther: num(status[2]) + num(status[3]) + num(status[4]),
    bytes: num(traffic[1]),
    negotiated: {
      protocol: field('TLS Protocol'),
      cipher: field('Cipher'),
      keyExchange: field('Server Temp Key'),
      alpn: field('Application protocol'),
    },
  }
}

/** Latency percentiles (ms) from h2load's --log-file: start µs, status, duration µs per line. */
export function logPercentiles(log: string): { p50Ms: number; p99Ms: number } {
  const us: number[] = []
  for (const line of log.split('\n')) {
    const f = line.split('\t')
    if (f.length >= 3) us.push(Number(f[2]))
  }
  return { p50Ms: percentile(us, 50) / 1000, p99Ms: percentile(us, 99) / 1000 }
}

/** Requests per second last measured per URL: what sizes the next run's count. */
const lastRate = new Map<string, number>()

/** How many requests a run of `opts` makes. */
export function requestCount(opts: LoadOptions, rate: number | undefined): number {
  const floor = opts.connections * 5
  if (rate === undefined || !Number.isFinite(rate)) return opts.connections * 20
  return Math.max(floor, Math.round(rate * opts.durationS))
}

export async function runH2load(opts: LoadOptions): Promise<LoadResult> {
  const threads = Math.min(opts.threads ?? 2, opts.connections)
  const count = opts.rate
    ? Math.round(opts.rate * opts.durationS)
    : requestCount(opts, lastRate.get(opts.url))
  const dir = mkdtempSync(join(tmpdir(), 'h2load-'))
  const logFile = join(dir, 'requests.tsv')
  try {
    const args = [
      `-c${opts.connections}`,
      `-t${threads}`,
      '-m1',
      `-n${count}`,
      // A connection silent this long is given up (counted as failed) rather than hanging the run.
      '-N5',
      `--log-file=${logFile}`,
      // At a fixed rate the run is HTTP/1.1 (the rows it sits beside), each connection sending
      // its share of the rate.
      ...(opts.rate ? ['--h1', `--rps=${opts.rate / opts.connections}`] : []),
      opts.url,
    ]
    const out = await runCommand('h2load', args, (opts.durationS * 4 + 30) * 1000)
    if (out.code !== 0) throw new Error(`h2load exited with ${out.code}: ${out.stderr || out.stdout}`)
    const s = parseH2loadOutput(out.stdout)
    const { p50Ms, p99Ms } = logPercentiles(readFileSync(logFile, 'utf8'))
    if (!opts.rate && s.durationS > 0 && s.succeeded > 0) lastRate.set(opts.url, s.succeeded / s.durationS)
    return finishResult({
      generator: 'h2load',
      url: opts.url,
      connections: opts.connections,
      durationS: s.durationS,
      requests: s.succeeded,
      bytes: s.bytes,
      p50Ms,
      p99Ms,
      errors: s.failed + s.errored + s.timeout,
      non2xx: s.statusOther,
      errorKinds: { failed: s.failed, errored: s.errored, timeout: s.timeout },
      negotiated: s.negotiated,
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
