/**
 * autocannon, run in this process (it is the design's generator for small objects). It tops out
 * near 50 MB/s on large bodies on a 2-core machine, so large objects go through wrk instead.
 * `requests` makes each connection cycle through a sequence of requests (the boundary bench's mix).
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
) => { stop(): void }

// autocannon ships no types; this is the slice of its API the benchmarks use.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

/** One step of a connection's request cycle: the path is chosen afresh for every request. */
export interface AutocannonStep {
  method: 'GET'
  setupRequest: (req: Record<string, unknown>) => Record<string, unknown>
}

export interface AutocannonOptions extends LoadOptions {
  /** The cycle each connection runs (default: GET `url` again and again). */
  readonly requests?: readonly AutocannonStep[]
  /** Seconds before a request counts as timed out (default 5). */
  readonly timeoutS?: number
  /** Stop after this many requests, or after `durationS`, whichever comes first. */
  readonly maxRequests?: number
}

export async function runAutocannon(opts: AutocannonOptions): Promise<LoadResult> {
  let timer: NodeJS.Timeout | undefined
  const r = await new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: opts.url,
        connections: opts.connections,
        // autocannon's `amount` replaces its duration: the time bound is then a timer here.
        ...(opts.maxRequests ? { amount: opts.maxRequests } : { duration: opts.durationS }),
        pipelining: 1,
        timeout: opts.timeoutS ?? 5,
        ...(opts.requests ? { requests: opts.requests } : {}),
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
    if (opts.maxRequests) timer = setTimeout(() => instance.stop(), opts.durationS * 1000)
  }).finally(() => clearTimeout(timer))
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
    errorKinds: { errors: r.errors, timeouts: r.timeouts },
  })
}
