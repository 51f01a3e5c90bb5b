/**
 * The steering benchmark's HTTP phase: GET /steer against `cdn steering` as its own process.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prng } from '../../fixtures/prng.js'
import { treeCpuSeconds } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, startProcess } from '../lib/proc.js'
import { median } from '../lib/stats.js'
import { fleetDoc, type zonesDoc } from './fixture.js'

export const HTTP_CONNECTIONS = 32

export interface HttpRow {
  edges: number
  prefixes: number
  connections: number
  durationS: number
  rounds: number
  requests: number
  /** Over the rounds: min, median, max. */
  requestsPerSec: { min: number; median: number; max: number }
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
  /** Steering's own CPU (user + system) per answered request, over the rounds. */
  serverCpuUsPerRequest: { min: number; median: number; max: number }
}

interface AutocannonResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  latency: { p50: number; p99: number }
  requests: { total: number; average: number }
}
type Autocannon = (
  opts: Record<string, unknown>,
  cb: (err: Error | null, r: AutocannonResult) => void,
) => unknown
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

/**
 * `cdn steering` as its own process with `edges` edges (their /status answered by a small
 * server here, so every edge is healthy) and the zones given; a warm-up run first (JIT,
 * pools), then `rounds` measured runs of autocannon over loopback on GET /steer with a
 * random title and client address per request. CPU is steering's own, per answered request.
 */
export async function overHttp(
  zones: ReturnType<typeof zonesDoc>,
  edges: number,
  opts: { prefixes: number; seconds: number; warmupSeconds: number; rounds: number },
): Promise<HttpRow> {
  const root = repoRoot(import.meta.url)
  const dir = join(tmpdir(), `cdn-bench-steering-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  // Every edge's /status, answered by one small server (its path names the edge).
  const status = JSON.stringify({
    id: 'bench',
    version: 'bench',
    uptimeSec: 1,
    activeConnections: 0,
    requestsPerSec: 0,
    egressBytesPerSec: 1e8,
    tiers: {
      memory: { bytes: 0, capacityBytes: 1, objects: 0 },
      disk: { bytes: 0, capacityBytes: 1, objects: 0 },
    },
    hitRatio: 0,
    hits: { memory: 0, disk: 0, miss: 0 },
    bytesServed: 0,
    titles: [],
    titlesComplete: [],
  })
  const edgesServer = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(status),
  )
  await new Promise<void>((r) => edgesServer.listen(0, '127.0.0.1', r))
  const edgesUrl = `http://127.0.0.1:${(edgesServer.address() as { port: number }).port}`
  const fleetPath = join(dir, 'fleet.json')
  const zonesPath = join(dir, 'zones.json')
  writeFileSync(fleetPath, JSON.stringify(fleetDoc(edges, edgesUrl)))
  writeFileSync(zonesPath, JSON.stringify(zones.doc))
  const port = await freePort()
  const child = await startProcess({
    name: 'steering',
    cmd: process.execPath,
    args: [
      join(root, 'dist/src/cli/main.js'),
      'steering',
      ...['--port', String(port), '--fleet', fleetPath, '--zones', zonesPath],
      ...['--trusted-proxy', '127.0.0.1/32', '--check-interval', '60s', '--log-level', 'warn'],
    ],
    readyUrl: `http://127.0.0.1:${port}/healthz`,
    readyTimeoutMs: 180_000,
  })
  try {
    const rnd = prng(11)
    const samples = zones.samples
    const run = (seconds: number) =>
      new Promise<AutocannonResult>((resolve, reject) =>
        autocannon(
          {
            url: `http://127.0.0.1:${port}`,
            connections: HTTP_CONNECTIONS,
            duration: seconds,
            requests: [
              {
                setupRequest: (req: Record<string, unknown>) => ({
                  ...req,
                  path: `/steer?title=title-${Math.floor(rnd() * 5000)}`,
                  headers: { 'x-forwarded-for': samples[Math.floor(rnd() * samples.length)]! },
                }),
              },
            ],
          },
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      )
    await run(opts.warmupSeconds)
    const rounds: { r: AutocannonResult; cpuUs: number }[] = []
    for (let i = 0; i < opts.rounds; i++) {
      const cpu0 = treeCpuSeconds(child.pid)
      const r = await run(opts.seconds)
      rounds.push({ r, cpuUs: ((treeCpuSeconds(child.pid) - cpu0) * 1e6) / Math.max(1, r.requests.total) })
    }
    const rates = rounds.map((x) => x.r.requests.average)
    const cpus = rounds.map((x) => x.cpuUs)
    const mid = rounds[rates.indexOf(median(rates))] ?? rounds[0]!
    return {
      edges,
      prefixes: opts.prefixes,
      connections: HTTP_CONNECTIONS,
      durationS: opts.seconds,
      rounds: opts.rounds,
      requests: rounds.reduce((a, x) => a + x.r.requests.total, 0),
      requestsPerSec: { min: Math.min(...rates), median: median(rates), max: Math.max(...rates) },
      serverCpuUsPerRequest: { min: Math.min(...cpus), median: median(cpus), max: Math.max(...cpus) },
      p50Ms: mid.r.latency.p50,
      p99Ms: mid.r.latency.p99,
      non2xx: rounds.reduce((a, x) => a + x.r.non2xx, 0),
      errors: rounds.reduce((a, x) => a + x.r.errors + x.r.timeouts, 0),
    }
  } finally {
    await child.stop(5000)
    edgesServer.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
