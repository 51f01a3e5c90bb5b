/**
 * autocannon, run in this process (it is the design's generator for small objects). It tops out
 * near 50 MB/s on large bodies on a 2-core machine, so large objects go through wrk instead.
 */
import { createRequire } from 'node:module'
import { finishResult, type LoadOptions, type LoadResult } from './load.js'

interface AutocannonResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  latency: { p50: number; p99: number }
  requests: { total: number }
  throughput: { total: number }
}

type Autocannon = (
  opts: Record<string, unknown>,
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown

// autocannon ships no types; this is the slice of its API the benchmarks use.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

export async function runAutocannon(opts: LoadOptions): Promise<LoadResult> {
  const r = await new Promise<AutocannonResult>((resolve, reject) => {
    autocannon(
      { url: opts.url, connections: opts.connections, duration: opts.durationS, pipelining: 1, timeout: 5 },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
  })
  return finishResult({
    generator: 'autocannon',
    url: opts.url,
    connections: opts.connections,
    durationS: r.duration,
    requests: r.requests.total,
    bytes: r.throughput.total,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  })
}
