/**
 * Steering benchmark: `npm run bench:steering` (after `npm run build`).
 *
 * 1. In process: the cost of one decision (zone lookup + select) with 100,000 zone prefixes,
 *    for fleets of 10, 1,000 and 10,000 edges: decisions/s on one core and per-decision p50/p99.
 * 2. Over HTTP: `cdn steering` as its own process with 1,000 edges (all healthy: their
 *    /status is answered by a small server here) and 100,000 prefixes, loaded by autocannon
 *    over loopback on GET /steer with a random title and a random client address per request.
 * Writes bench/results/steering.{json,md}. `--quick` shortens every phase.
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseZones } from '../../steering/geo.js'
import { parseAddress } from '../../steering/ip.js'
import { DEFAULT_SELECT_OPTIONS, prepareFleet, select } from '../../steering/select.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { percentile } from '../lib/stats.js'
import { edgeInputs, fleetDoc, prng, zonesDoc } from './fixture.js'

const quick = process.argv.includes('--quick')
const PREFIXES = 100_000
const FLEETS = [10, 1_000, 10_000]
const PHASE_MS = quick ? 500 : 3_000
const MAX_OPS = 2_000_000
const HTTP_SECONDS = quick ? 3 : 10
const HTTP_CONNECTIONS = 32

interface InProcessRow {
  edges: number
  prefixes: number
  decisions: number
  decisionsPerSec: number
  p50Us: number
  p99Us: number
  lookupNs: number
}

function inProcess(zones: ReturnType<typeof parseZones>, samples: string[]): InProcessRow[] {
  const addrs = samples.map((s) => parseAddress(s)!)
  const rnd = prng(7)
  // Half the clients fall outside every block (default location), as real traffic would.
  for (let i = 0; i < addrs.length / 2; i++)
    addrs[i] = parseAddress(`${1 + Math.floor(rnd() * 200)}.${i & 255}.1.1`)!
  const fallback = { lat: 0, lon: 0 }

  // Lookup alone, in a tight loop (after a warm-up that also builds the range index).
  for (let i = 0; i < 100_000; i++) zones.table.lookup(addrs[i % addrs.length]!)
  let found = 0
  const n = 1_000_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) if (zones.table.lookup(addrs[i % addrs.length]!)) found++
  const lookupNs = ((performance.now() - t0) * 1e6) / n
  console.log(`lookup: ${fmt(lookupNs)} ns each over ${PREFIXES} prefixes (${found} hits of ${n})`)

  const rows: InProcessRow[] = []
  for (const size of FLEETS) {
    const edges = prepareFleet(edgeInputs(size))
    const lat: number[] = []
    const decide = (i: number) => {
      const loc = zones.table.lookup(addrs[i % addrs.length]!) ?? fallback
      return select(loc, edges, `title-${i % 5000}`, DEFAULT_SELECT_OPTIONS)
    }
    for (let i = 0; i < 2000; i++) decide(i) // warm up the JIT
    const start = performance.now()
    let i = 0
    while (i < MAX_OPS && performance.now() - start < PHASE_MS) {
      const a = performance.now()
      decide(i++)
      lat.push(performance.now() - a)
    }
    const elapsed = performance.now() - start
    const row: InProcessRow = {
      edges: size,
      prefixes: PREFIXES,
      decisions: i,
      decisionsPerSec: (i / elapsed) * 1000,
      p50Us: percentile(lat, 50) * 1000,
      p99Us: percentile(lat, 99) * 1000,
      lookupNs,
    }
    console.log(
      `${size} edges: ${fmt(row.decisionsPerSec)} decisions/s, p50 ${fmt(row.p50Us)} µs, p99 ${fmt(row.p99Us)} µs`,
    )
    rows.push(row)
  }
  return rows
}

interface HttpRow {
  edges: number
  prefixes: number
  connections: number
  durationS: number
  requests: number
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
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

async function overHttp(zones: ReturnType<typeof zonesDoc>): Promise<HttpRow> {
  const root = repoRoot(import.meta.url)
  const dir = join(tmpdir(), `cdn-bench-steering-${process.pid}`)
  const { mkdirSync, rmSync } = await import('node:fs')
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
  writeFileSync(fleetPath, JSON.stringify(fleetDoc(1000, edgesUrl)))
  writeFileSync(zonesPath, JSON.stringify(zones.doc))
  const port = await freePort()
  const child = await startProcess({
    name: 'steering',
    cmd: process.execPath,
    args: [
      join(root, 'dist/src/cli/main.js'),
      'steering',
      ...['--port', String(port), '--fleet', fleetPath, '--zones', zonesPath],
      ...['--trusted-proxy', '127.0.0.1/32', '--check-interval', '5s', '--log-level', 'warn'],
    ],
    readyUrl: `http://127.0.0.1:${port}/healthz`,
    readyTimeoutMs: 30_000,
  })
  try {
    const rnd = prng(11)
    const samples = zones.samples
    const r = await new Promise<AutocannonResult>((resolve, reject) =>
      autocannon(
        {
          url: `http://127.0.0.1:${port}`,
          connections: HTTP_CONNECTIONS,
          duration: HTTP_SECONDS,
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
    return {
      edges: 1000,
      prefixes: PREFIXES,
      connections: HTTP_CONNECTIONS,
      durationS: r.duration,
      requests: r.requests.total,
      requestsPerSec: r.requests.average,
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      non2xx: r.non2xx,
      errors: r.errors + r.timeouts,
    }
  } finally {
    await child.stop(5000)
    edgesServer.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')
  const zones = zonesDoc(PREFIXES)
  const t0 = performance.now()
  const parsed = parseZones(zones.doc)
  const loadMs = performance.now() - t0
  console.log(`zones: ${parsed.table.size} prefixes validated and indexed in ${fmt(loadMs)} ms`)
  const rows = inProcess(parsed, zones.samples)
  const http = await overHttp(zones)
  console.log(
    `HTTP /steer, 1000 edges: ${fmt(http.requestsPerSec)} req/s, p50 ${http.p50Ms} ms, p99 ${http.p99Ms} ms, non-2xx ${http.non2xx}`,
  )
  const root = repoRoot(import.meta.url)
  const md = [
    '# Steering benchmark',
    '',
    `Run: \`npm run build && npm run bench:steering\`${quick ? ' (--quick)' : ''}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load average at start ${load}.`,
    `Zones: ${PREFIXES.toLocaleString('en-US')} prefixes (90% IPv4 /12–/28, 10% IPv6 /32–/64), loaded and validated in ${fmt(loadMs)} ms; one lookup ${fmt(rows[0]!.lookupNs)} ns.`,
    '',
    '## One decision in process (zone lookup + select), one core',
    '',
    markdownTable(rows, [
      { header: 'edges', cell: (r) => r.edges.toLocaleString('en-US'), right: true },
      { header: 'decisions/s', cell: (r) => fmt(r.decisionsPerSec), right: true },
      { header: 'p50 µs', cell: (r) => fmt(r.p50Us), right: true },
      { header: 'p99 µs', cell: (r) => fmt(r.p99Us), right: true },
      { header: 'samples', cell: (r) => r.decisions.toLocaleString('en-US'), right: true },
    ]),
    '',
    `## HTTP GET /steer over loopback (autocannon, ${HTTP_CONNECTIONS} connections, ${http.durationS} s)`,
    '',
    markdownTable(
      [http],
      [
        { header: 'edges', cell: (r) => r.edges.toLocaleString('en-US'), right: true },
        { header: 'prefixes', cell: (r) => r.prefixes.toLocaleString('en-US'), right: true },
        { header: 'req/s', cell: (r) => fmt(r.requestsPerSec), right: true },
        { header: 'p50 ms', cell: (r) => fmt(r.p50Ms), right: true },
        { header: 'p99 ms', cell: (r) => fmt(r.p99Ms), right: true },
        { header: 'non-2xx', cell: (r) => String(r.non2xx), right: true },
        { header: 'errors', cell: (r) => String(r.errors), right: true },
      ],
    ),
    '',
    'Client and server share the machine (2 cores), so the HTTP figure is a floor.',
  ].join('\n')
  writeResults(
    join(root, 'bench/results/steering.json'),
    join(root, 'bench/results/steering.md'),
    {
      date: new Date().toISOString(),
      node: process.version,
      quick,
      zonesLoadMs: loadMs,
      inProcess: rows,
      http,
    },
    md,
  )
  console.log(`\n${md}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
