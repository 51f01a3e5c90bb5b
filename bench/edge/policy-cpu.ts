/**
 * `node dist/bench/edge/policy-cpu.js` (after `npm run build`): what the disk tier's policy
 * costs the edge per request on small memory hits, in CPU. One edge process per policy (built
 * dist, --log-level silent) in front of an in-process upstream; each is warmed with every object
 * (2 KB segments of 40 titles × 4 renditions × 25 segments, all memory hits afterwards), then
 * autocannon sends a fixed count of requests cycling over them; the edge's CPU time over the
 * count (utime + stime from /proc, bench/lib/cpu.ts) divided by the count is the figure. On a
 * shared machine req/s says little, CPU per request is what to compare. Rounds are interleaved
 * (bench/lib/rounds.ts) and each policy's min-max is printed.
 *
 * Options: --rounds N (3), --requests N (200000), --connections N (50), --policies
 * lru:all,demand:demand (eviction:admission pairs), --main PATH (the cdn command to start,
 * default this tree's dist/src/cli/main.js: another tree's for a before/after).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'
import { benchArgs, numberArg } from '../lib/args.js'
import { runAutocannon } from '../lib/autocannon.js'
import { processCpuSeconds } from '../lib/cpu.js'
import { repoRoot } from '../lib/paths.js'
import { freePort, startProcess } from '../lib/proc.js'
import { interleave } from '../lib/rounds.js'

const USAGE = `Usage: node dist/bench/edge/policy-cpu.js [flags]
  --rounds N          interleaved rounds of every policy (default: 3)
  --requests N        requests per run (default: 200000)
  --connections N     autocannon connections (default: 50)
  --policies lru:all,demand:demand
                      the edges measured, eviction:admission pairs (default: lru:all,demand:demand)
  --main PATH         the cdn command to start, e.g. another tree's for a before/after
                      (default: this tree's dist/src/cli/main.js)
  -h, --help          print this and exit`
const args = benchArgs(USAGE, {
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '200000' },
    connections: { type: 'string', default: '50' },
    policies: { type: 'string', default: 'lru:all,demand:demand' },
    main: { type: 'string' },
  },
})
const log = (s: string) => process.stdout.write(`${s}\n`)
const main = args.main ?? join(repoRoot(import.meta.url), 'dist/src/cli/main.js')
const count = { integer: true, min: 1 }
const requests = numberArg(args.requests, '--requests', 200000, count)
const connections = numberArg(args.connections, '--connections', 50, count)
const roundCount = numberArg(args.rounds, '--rounds', 3, count)

const BODY = Buffer.alloc(2048, 7)
const paths: string[] = []
for (let s = 1; s <= 25; s++)
  for (const r of ['240p', '480p', '720p', '1080p'])
    for (let t = 0; t < 40; t++) paths.push(`/vod/title-${t}/v1/${r}/seg-${String(s).padStart(5, '0')}.m4s`)

const upstream = createServer((_req, res) => {
  res.writeHead(200, {
    'content-length': BODY.length,
    'cache-control': 'public, max-age=31536000, immutable',
    'content-type': 'video/iso.segment',
    etag: '"b"',
  })
  res.end(BODY)
})
upstream.listen(0, '127.0.0.1')
await new Promise((r) => upstream.once('listening', r))
const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`

async function measure(policy: string): Promise<number> {
  const [eviction, admission] = policy.split(':') as [string, string]
  const port = await freePort()
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-policy-cpu-'))
  const edge = await startProcess({
    name: 'edge',
    cmd: process.execPath,
    args: [
      ...NODE_FLAGS,
      main,
      'edge',
      ...['--port', String(port), '--upstream', up, '--cache-dir', cacheDir, '--log-level', 'silent'],
      ...['--disk-eviction', eviction, '--disk-admission', admission],
    ],
    readyUrl: `http://127.0.0.1:${port}/healthz`,
    readyTimeoutMs: 15_000,
  })
  try {
    const url = `http://127.0.0.1:${port}`
    for (let i = 0; i < paths.length; i += 50)
      await Promise.all(paths.slice(i, i + 50).map((p) => fetch(url + p).then((r) => r.arrayBuffer())))
    let next = 0
    const step = {
      method: 'GET' as const,
      setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[next++ % paths.length] }),
    }
    const c0 = processCpuSeconds(edge.pid).process
    const r = await runAutocannon({
      url,
      connections,
      durationS: 120,
      maxRequests: requests,
      requests: [step],
    })
    const cpu = processCpuSeconds(edge.pid).process - c0
    if (r.errors || r.non2xx) throw new Error(`${policy}: ${r.errors} errors, ${r.non2xx} non-2xx`)
    const us = (cpu * 1e6) / r.requests
    log(
      `${policy.padEnd(16)} ${us.toFixed(1)} µs per request (${r.requests} requests, ${cpu.toFixed(2)} s CPU)`,
    )
    return us
  } finally {
    await edge.stop(2000)
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

const rounds = await interleave(args.policies!.split(','), roundCount, measure)
for (const [policy, us] of rounds)
  log(
    `${policy.padEnd(16)} ${Math.min(...us).toFixed(1)}-${Math.max(...us).toFixed(1)} µs per request (${us.length} rounds)`,
  )
upstream.close()
