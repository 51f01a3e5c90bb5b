/**
 * `npm run bench:peers [-- --quick]`: our edge against nginx's proxy_cache on loopback.
 * Starts the upstream (our origin behind a counting/delaying front), nginx, our edge twice (memory
 * tier and disk tier) and two bare node:http baselines as separate processes; warms every cache;
 * runs the interleaved matrix and the stampede; writes bench/results/peers.{json,md}.
 * See docs/bench.md for how to read the figures.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { readEnv } from '../../src/config/env.js'
import { benchArgs, numberArg, numberListArg } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { runCommand } from '../lib/proc.js'
import { writeResults } from '../lib/report.js'
import { ensureTools } from '../lib/tools.js'
import { cellsFor, type MatrixOptions, type ObjectId, type Row, runCell, type Variant } from './matrix.js'
import { prepareContent } from './origin-content.js'
import { runStampede, type StampedeRow, warm } from './phases.js'
import { type PeersDoc, peersMarkdown } from './report.js'
import { benchCertificates, diffCounts, edgeTlsCounts, probeTls, type TlsPart } from './tls.js'
import {
  type Layout,
  type Server,
  type TlsFiles,
  startBaseline,
  startEdge,
  startNginxServer,
  startOrigin,
  startUpstream,
} from './servers.js'

const log = (line: string) => process.stdout.write(`${line}\n`)

const USAGE = `Usage: npm run bench:peers -- [flags]
  --quick                    1 round of 2 s at 100 connections, no wrk playlist row, 1 stampede round (default: off)
  --rounds N                 rounds of the matrix (default: 3, quick 1)
  --duration S               seconds per run (default: 10, quick 2)
  --connections 10,100       connection counts of the matrix (default: 10,100, quick 100)
  --only memory,disk,stampede,tls
                             the parts to run (default: memory,disk,stampede,tls)
  --out DIR                  where the results go (default: bench/results)
  --synthetic                generated content only, no origin (default: off, a title ingested by our origin)
  --clients N                clients of the stampede (default: 200)
  --delay-ms N               the upstream's delay per response, ms (default: 200)
  --handshake-connections N  new-connection loops of the TLS handshake row (default: 8)
  --disk-edge-memory SIZE    the disk-tier edge's memory tier (default: 1KB)
  --disk-edge-chunks 128KB,2MB
                             one more disk-tier edge per size, --disk-sendfile-max-chunk SIZE, measured
                             beside the default one (default: none)
  --profile-edge DIR         run the edges under --cpu-prof, one dir each (default: off)
  --objects playlist,seg1m,seg4m
                             the objects measured (default: playlist,seg1m,seg4m)
  --nginx-workers N          nginx's worker processes (default: one per core)
  --edge-workers N           our edge's --workers (default: 1, one process)
  --warmup S                 unmeasured run per server before each cell (default: 1)
  --nginx-static             add nginx serving the files without proxy_cache as a baseline (default: off)
  --rate R                   also measure the segments at R req/s offered, h2load over HTTP/1.1: CPU at
                             equal throughput (default: off)
  --noisy-retries N          retake a run when other processes took >20% of the CPUs (default: 1, quick 0)
  --quiet-wait S             longest wait for a quiet machine before each run (default: 5, quick 2)
  -h, --help                 print this and exit`

function options() {
  const values = benchArgs(USAGE, {
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      only: { type: 'string', default: 'memory,disk,stampede,tls' },
      'handshake-connections': { type: 'string' },
      out: { type: 'string' },
      synthetic: { type: 'boolean', default: false },
      clients: { type: 'string', default: '200' },
      'delay-ms': { type: 'string', default: '200' },
      'disk-edge-memory': { type: 'string', default: '1KB' },
      'disk-edge-chunks': { type: 'string' },
      'profile-edge': { type: 'string' },
      'quiet-wait': { type: 'string' },
      objects: { type: 'string', default: 'playlist,seg1m,seg4m' },
      'nginx-workers': { type: 'string' },
      'edge-workers': { type: 'string' },
      warmup: { type: 'string' },
      'noisy-retries': { type: 'string' },
      'nginx-static': { type: 'boolean', default: false },
      rate: { type: 'string' },
    },
  })
  const quick = values.quick
  const count = { integer: true, min: 1 }
  const nginxWorkers = numberArg(
    values['nginx-workers'] || undefined,
    '--nginx-workers',
    availableParallelism(),
    count,
  )
  const matrix: MatrixOptions = {
    rounds: numberArg(values.rounds, '--rounds', quick ? 1 : 3, count),
    durationS: numberArg(values.duration, '--duration', quick ? 2 : 10, { min: 0 }),
    connections: numberListArg(values.connections ?? (quick ? '100' : '10,100'), '--connections', count),
    playlistWithWrk: !quick,
    threads: Math.max(1, Math.min(2, availableParallelism())),
    quietWaitMs: numberArg(values['quiet-wait'], '--quiet-wait', quick ? 2 : 5, { min: 0 }) * 1000,
    objects: values.objects.split(',') as ObjectId[],
    noisyRetries: numberArg(values['noisy-retries'], '--noisy-retries', quick ? 0 : 1, {
      integer: true,
      min: 0,
    }),
    warmupS: numberArg(values.warmup, '--warmup', 1, { min: 0 }),
    handshakeConnections: numberArg(values['handshake-connections'], '--handshake-connections', 8, count),
    ...(values.rate ? { rate: numberArg(values.rate, '--rate', NaN, { min: 0 }) } : {}),
  }
  const custom = values.rounds || values.duration || values.connections
  return {
    mode: (custom ? 'custom' : quick ? 'quick' : 'full') as PeersDoc['mode'],
    matrix,
    only: new Set(values.only.split(',')),
    out: values.out,
    synthetic: values.synthetic,
    clients: numberArg(values.clients, '--clients', 200, count),
    delayMs: numberArg(values['delay-ms'], '--delay-ms', 200, { min: 0 }),
    stampedeRounds: quick ? 1 : 3,
    diskEdgeMemory: values['disk-edge-memory'],
    diskEdgeChunks: values['disk-edge-chunks'] ? values['disk-edge-chunks'].split(',') : [],
    profileEdge: values['profile-edge'],
    nginxStatic: values['nginx-static'],
    nginxWorkers,
    edgeWorkers: numberArg(values['edge-workers'] || undefined, '--edge-workers', 1, count),
  }
}

async function main() {
  const opts = options()
  const loadAtStart = loadavg()[0]!
  const env = readEnv()
  const root = repoRoot(import.meta.url)
  const started: Server[] = []
  const stopAll = () => Promise.all([...started].reverse().map((s) => s.child.stop()))

  const tls = opts.only.has('tls')
  const tools = await ensureTools(
    [
      { bin: 'nginx', apt: 'nginx' },
      { bin: 'wrk', apt: 'wrk' },
      ...(tls || opts.matrix.rate ? [{ bin: 'h2load', apt: 'nghttp2-client' }] : []),
    ],
    env,
    log,
  )
  const nginxVersion = (await runCommand(tools.get('nginx')!, ['-v'], 5000)).stderr.trim()
  if (!existsSync(join(root, 'dist/bench/peers/upstream-server.js')))
    throw new Error('dist/ is missing or stale: run `npm run build` first')

  // Per run: several people may run the benchmark in one tree at once.
  mkdirSync(join(root, '.cache/bench/peers'), { recursive: true })
  const work = mkdtempSync(join(root, '.cache/bench/peers/run-'))
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(
      sig,
      () =>
        void stopAll().then(() => {
          rmSync(work, { recursive: true, force: true })
          process.exit(130)
        }),
    )
  const layout: Layout = { root, node: process.execPath, env }
  const skipped: string[] = []
  try {
    const content = await prepareContent({
      root,
      work,
      layout,
      synthetic: opts.synthetic,
      coldCount: opts.stampedeRounds + 1,
      log,
    })
    let origin: Server | undefined
    if (content.store) {
      origin = await startOrigin(layout, content.store)
      started.push(origin)
    }
    const upstream = await startUpstream(layout, content.extraDir, origin?.base)
    started.push(upstream)
    const tlsFiles = tls ? await benchCertificates(join(work, 'tls')) : undefined
    const { nginx, nginxStatic, nginxTls } = await startNginxServer(
      opts.nginxWorkers,
      tools.get('nginx')!,
      join(root, 'bench/peers/nginx.conf.template'),
      upstream,
      content.allDir,
      tlsFiles,
    )
    started.push(nginx)
    const tryEdge = async (
      name: string,
      memorySize: string,
      nodeFlags: string[] = [],
      tlsOf?: TlsFiles,
      extraArgs: string[] = [],
    ) => {
      try {
        const s = await startEdge(layout, {
          name,
          upstream: upstream.base,
          cacheDir: join(work, name),
          memorySize,
          diskSize: '4GB',
          workers: opts.edgeWorkers,
          nodeFlags,
          extraArgs,
          ...(tlsOf ? { tls: tlsOf } : {}),
        })
        started.push(s)
        return s
      } catch (err) {
        skipped.push(`${name}: could not start our edge (${(err as Error).message.split('\n')[0]})`)
        log(`! ${name} not started: ${(err as Error).message}`)
        return undefined
      }
    }
    const prof = (name: string) =>
      opts.profileEdge ? ['--cpu-prof', '--cpu-prof-dir', join(opts.profileEdge, name)] : []
    const edgeMem =
      opts.only.has('memory') || opts.only.has('stampede')
        ? await tryEdge('edge-mem', '512MB', prof('edge-mem'))
        : undefined
    const edgeDisk = opts.only.has('disk')
      ? await tryEdge('edge-disk', opts.diskEdgeMemory, prof('edge-disk'))
      : undefined
    // The same disk-tier edge with other sizes of send on the loop (docs/bench.md, "Sends on the loop").
    const chunkEdges: Server[] = []
    if (opts.only.has('disk'))
      for (const size of opts.diskEdgeChunks) {
        const name = `edge-disk-chunk-${size}`
        const s = await tryEdge(name, opts.diskEdgeMemory, prof(name), undefined, [
          '--disk-sendfile-max-chunk',
          size,
        ])
        if (s) chunkEdges.push(s)
      }
    const edgeTls = tlsFiles ? await tryEdge('edge-tls', '512MB', prof('edge-tls'), tlsFiles) : undefined
    const nodeMem = await startBaseline(layout, 'memory', content.allDir)
    started.push(nodeMem)
    const nodeStream = await startBaseline(layout, 'stream', content.allDir)
    started.push(nodeStream)

    const measured = [content.playlist, content.seg1m, content.seg4m]
    const warmed: Record<string, Record<string, string>> = {}
    for (const s of [nginx, edgeMem, edgeDisk, ...chunkEdges, nginxTls, edgeTls])
      if (s)
        warmed[s.name] = await warm(s, measured, {
          workers: s === nginx || s === nginxTls ? 1 : opts.edgeWorkers,
        })
    log(`warm: ${JSON.stringify(warmed)}`)

    const rows: Row[] = []
    const tiers = [
      { tier: 'memory' as const, ours: edgeMem, baseline: nodeMem, more: [] as Server[] },
      { tier: 'disk' as const, ours: edgeDisk, baseline: nodeStream, more: chunkEdges },
    ]
    for (const t of tiers) {
      if (!opts.only.has(t.tier)) continue
      const variants: Variant[] = [
        ...(t.ours ? [{ role: 'ours' as const, server: t.ours }] : []),
        { role: 'nginx', server: nginx },
        { role: 'baseline', server: t.baseline },
        ...t.more.map((server) => ({ role: 'baseline' as const, server })),
        ...(opts.nginxStatic ? [{ role: 'baseline' as const, server: nginxStatic }] : []),
      ]
      log(`${t.tier} tier:`)
      for (const cell of cellsFor(t.tier, opts.matrix))
        rows.push(...(await runCell(cell, variants, content, upstream, opts.matrix, log)))
    }

    let tlsPart: TlsPart | undefined
    if (tls && nginxTls) {
      log('tls (HTTPS/1.1, HTTP/2, full handshakes):')
      const variants: Variant[] = [
        ...(edgeTls ? [{ role: 'ours' as const, server: edgeTls }] : []),
        { role: 'nginx', server: nginxTls },
      ]
      const negotiated = await probeTls(variants.map((v) => v.server))
      const before = edgeTls ? await edgeTlsCounts(edgeTls) : undefined
      for (const cell of cellsFor('tls', opts.matrix))
        rows.push(...(await runCell(cell, variants, content, upstream, opts.matrix, log)))
      const after = edgeTls ? await edgeTlsCounts(edgeTls) : undefined
      tlsPart = { negotiated, edgeCounts: before && after ? diffCounts(after, before) : undefined }
    }

    let stampedeRows: StampedeRow[] = []
    if (opts.only.has('stampede')) {
      log(`stampede: ${opts.clients} clients, upstream delay ${opts.delayMs} ms`)
      const targets = [
        ...(edgeMem ? [{ role: 'ours' as const, server: edgeMem }] : []),
        { role: 'nginx' as const, server: nginx },
      ]
      stampedeRows = await runStampede(targets, upstream, content.cold, opts.clients, opts.delayMs, log)
    }

    const doc: PeersDoc = {
      benchmark: 'peers',
      startedAt: new Date().toISOString(),
      mode: opts.mode,
      machine: {
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        nginx: nginxVersion.replace(/^nginx version: /, ''),
        loadAverage1m: { start: loadAtStart, end: loadavg()[0]! },
      },
      settings: {
        ...opts.matrix,
        clients: opts.clients,
        delayMs: opts.delayMs,
        diskEdgeMemory: opts.diskEdgeMemory,
        diskEdgeChunks: opts.diskEdgeChunks,
        edgeWorkers: opts.edgeWorkers,
        nginxWorkers: opts.nginxWorkers,
      },
      content: {
        source: content.source,
        objects: {
          playlist: content.playlist,
          seg1m: content.seg1m,
          seg4m: content.seg4m,
          cold: content.cold,
        },
        notes: content.notes,
      },
      servers: Object.fromEntries(
        [...started, nginxStatic, ...(nginxTls ? [nginxTls] : [])].map((s) => [s.name, s.base]),
      ),
      warm: warmed,
      rows,
      stampede: stampedeRows,
      ...(tlsPart ? { tls: tlsPart } : {}),
      skipped,
    }
    const outDir = opts.out ?? join(root, 'bench/results')
    writeResults(join(outDir, 'peers.json'), join(outDir, 'peers.md'), doc, peersMarkdown(doc))
    log(`wrote ${join(outDir, 'peers.json')} and peers.md`)
  } finally {
    await stopAll()
    rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:peers: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
