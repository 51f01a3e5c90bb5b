/**
 * `cdn demo`: a whole CDN on one machine from a topology file (what `npm start` runs).
 * Validates the topology, writes steering's fleet and zones files into the data dir, starts
 * every node as a child process, waits until each is healthy and the origin holds its sample
 * titles, prefills the most popular one on one site, prints where to look, and stops every
 * node on Ctrl-C / SIGTERM. All state lives in the data dir, so a second start reuses it.
 *
 * By default every node serves HTTPS with HTTP/2 (a local CA and certificate made on first run
 * in DATA/tls, demo/demo-tls.ts) on its port + 363 and plain HTTP on its own port; `--tls false`
 * runs it all over plain HTTP, for a browser that cannot be told to trust the CA.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CommandSpec } from '../config/options.js'
import { parseCommand } from '../config/options.js'
import { CdnError, isCdnError } from '../errors.js'
import { parseZones } from '../../steering/geo.js'
import { parseFleet } from '../../steering/registry.js'
import type { CliCommand, CliIo } from './command.js'
import { startPrefill, titlesIn } from './demo/catalogue.js'
import { writeCompose } from './demo/compose.js'
import { demoTlsFiles, ensureDemoTls } from './demo/demo-tls.js'
import { writeKubernetes } from './demo/kubernetes.js'
import { netnsUnavailable } from './demo/netns.js'
import { netnsPrefix, runNetnsDemo } from './demo/netns-demo.js'
import { buildPlan, type DemoPlan, localPaths } from './demo/plan.js'
import { readyBlock, shownPath } from './demo/ready.js'
import { packageRoot } from './package-root.js'
import { assertPortsFree } from './demo/ports.js'
import { Supervisor } from './demo/supervisor.js'
import { loadTopology, type Topology } from './demo/topology.js'

const here = dirname(fileURLToPath(import.meta.url))
const DEFAULT_TOPOLOGY = 'deploy/topology.json'

export const spec: CommandSpec = {
  name: 'cdn demo',
  summary:
    'Start a whole CDN on this machine from a topology file: an origin with sample titles, edges in\n' +
    'several sites behind a tier-2 parent, and steering with the player page and fleet dashboard.\n' +
    'Ctrl-C stops every node. State (store, caches, logs) lives in the data dir and is reused.',
  usage: 'cdn demo [--topology FILE] [--data-dir DIR] [--base-port N] [--host ADDR] [--tls false]',
  envPrefix: 'CDN_DEMO',
  options: {
    topology: {
      type: 'string',
      arg: 'FILE',
      default: DEFAULT_TOPOLOGY,
      env: 'CDN_DEMO_TOPOLOGY',
      help: 'topology file (format: docs/demo.md)',
    },
    dataDir: {
      type: 'string',
      arg: 'DIR',
      default: './data',
      env: 'CDN_DEMO_DATA_DIR',
      help: 'where stores, caches, generated config and logs live',
    },
    basePort: {
      type: 'int',
      arg: 'PORT',
      min: 1,
      max: 65000,
      env: 'CDN_DEMO_BASE_PORT',
      help: "move every node's port so the topology's basePort becomes this one",
    },
    host: {
      type: 'string',
      arg: 'ADDR',
      env: 'CDN_DEMO_HOST',
      help: "address every node listens on (default: the topology's)",
    },
    startTimeout: {
      type: 'duration',
      default: 600_000,
      min: 1000,
      help: 'how long to wait for the nodes and the sample titles (first run transcodes them)',
    },
    stopGrace: {
      type: 'duration',
      default: 5000,
      min: 0,
      help: 'time each node gets after SIGTERM before SIGKILL',
    },
    tls: {
      type: 'boolean',
      default: true,
      env: 'CDN_DEMO_TLS',
      help: 'HTTPS with HTTP/2 on each port + 363 beside plain HTTP (a local CA in DATA/tls); false: plain HTTP only',
    },
    check: { type: 'boolean', default: false, help: 'validate the topology, print the plan and exit' },
    netns: {
      type: 'boolean',
      default: false,
      help: 'run each node in its own network namespace, with delay between sites from their distance and tbf on edge uplinks (Linux, root; plain HTTP; docs/demo.md)',
    },
    emitCompose: {
      type: 'string',
      arg: 'DIR',
      help: 'write DIR/compose.yaml and DIR/deploy/compose/{fleet,zones}.json for the topology and exit',
    },
    emitKubernetes: {
      type: 'string',
      arg: 'DIR',
      help: 'write the kustomize base and overlays under DIR/deploy/kubernetes/ for the topology and exit',
    },
  },
}

interface DemoConfig {
  topology: string
  dataDir: string
  basePort?: number
  host?: string
  startTimeout: number
  stopGrace: number
  tls: boolean
  check: boolean
  netns: boolean
  emitCompose?: string
  emitKubernetes?: string
}

function resolveTopology(path: string): string {
  if (existsSync(path) || path !== DEFAULT_TOPOLOGY) return resolve(path)
  // Run from elsewhere (npx, a container): fall back to the packaged default.
  return join(packageRoot(here), DEFAULT_TOPOLOGY)
}

/** Steering's own validators check what we derived, so a bad topology fails here, not in a child. */
function writeSteeringConfig(plan: DemoPlan, dir: string): void {
  parseFleet(plan.fleet, 'derived fleet')
  parseZones(plan.zones, 'derived zones')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'fleet.json'), `${JSON.stringify(plan.fleet, null, 2)}\n`)
  writeFileSync(join(dir, 'zones.json'), `${JSON.stringify(plan.zones, null, 2)}\n`)
}

function describe(plan: DemoPlan): string {
  return plan.nodes
    .map((n) => `  ${n.role.padEnd(8)} ${n.id.padEnd(12)} ${n.url}${n.tier === 2 ? '  (tier-2 parent)' : ''}`)
    .join('\n')
}

async function run(io: CliIo): Promise<number> {
  const { config } = parseCommand<DemoConfig>(spec, io.argv, io.env)
  const topoPath = resolveTopology(config.topology)
  const topo: Topology = loadTopology(topoPath)
  if (config.emitCompose !== undefined) {
    const written = writeCompose(topo, resolve(config.emitCompose))
    io.stdout.write(`wrote ${written.join(', ')}\n`)
    return 0
  }
  if (config.emitKubernetes !== undefined) {
    const written = writeKubernetes(topo, resolve(config.emitKubernetes))
    io.stdout.write(`wrote ${written.join(', ')}\n`)
    return 0
  }
  const dataDir = resolve(config.dataDir)
  if (config.netns) return runNetns(io, config, topo, dataDir)
  const tlsFiles = config.tls ? demoTlsFiles(dataDir) : undefined
  const plan = buildPlan(topo, {
    paths: localPaths(dataDir),
    ...(config.basePort !== undefined ? { basePort: config.basePort } : {}),
    ...(config.host !== undefined ? { host: config.host } : {}),
    ...(tlsFiles ? { tls: { caCert: tlsFiles.caCert, cert: tlsFiles.chain, key: tlsFiles.key } } : {}),
  })
  if (config.check) {
    parseFleet(plan.fleet, 'derived fleet')
    parseZones(plan.zones, 'derived zones')
    io.stdout.write(`${topoPath}: ok\n${describe(plan)}\n`)
    return 0
  }

  await assertPortsFree(plan.nodes, config.host ?? topo.host)
  const tls = tlsFiles
    ? await ensureDemoTls(tlsFiles, new URL(plan.steering.url).hostname.replace(/^\[|\]$/g, ''))
    : undefined
  const logDir = join(dataDir, 'logs')
  for (const n of plan.nodes) mkdirSync(localPaths(dataDir).nodeDir(n.id), { recursive: true })
  mkdirSync(join(localPaths(dataDir).nodeDir(plan.origin.id), 'ingest'), { recursive: true })
  mkdirSync(logDir, { recursive: true })
  writeSteeringConfig(plan, localPaths(dataDir).configDir)

  const shown = shownPath(dataDir, process.cwd())
  const note = (line: string) => io.stderr.write(`cdn demo: ${line}\n`)
  let stopping = false
  const sup = new Supervisor({
    cliPath: join(packageRoot(here), 'dist/src/cli/main.js'),
    watchPath: join(here, 'demo/parent-watch.js'),
    logDir,
    env: io.env,
    graceMs: config.stopGrace,
    onUnexpectedExit: (node, code, signal) => {
      if (!stopping)
        note(
          `${node.role} ${node.id} exited (${signal ?? `code ${code}`}); see ${join(logDir, `${node.id}.log`)}`,
        )
    },
  })
  const abort = new AbortController()
  void io.stopSignal.then(() => abort.abort())

  try {
    note(
      `starting ${plan.nodes.length} nodes from ${relative(process.cwd(), topoPath)} (logs: ${join(shown, 'logs')})`,
    )
    await startAll(plan, sup, config.startTimeout, abort.signal, note)
    await prefill(plan, topo.adminToken, abort.signal, note)
  } catch (err) {
    stopping = true
    await sup.stopAll()
    if (isCdnError(err) && err.code === 'CDN_ERR_CANCELLED') {
      note('stopped')
      return 130
    }
    throw err
  }

  io.stdout.write(
    readyBlock({
      plan,
      dataDir,
      tls: tlsFiles && tls ? { ...tlsFiles, ...tls } : undefined,
      adminToken: topo.adminToken,
      cwd: process.cwd(),
      pid: process.pid,
    }),
  )
  await io.stopSignal
  stopping = true
  note('stopping every node...')
  await sup.stopAll()
  note('stopped')
  return 0
}

/** `cdn demo --netns`: see demo/netns-demo.ts. */
async function runNetns(io: CliIo, config: DemoConfig, topo: Topology, dataDir: string): Promise<number> {
  const why = await netnsUnavailable()
  if (why) throw new CdnError('CDN_ERR_CONFIG', `--netns: ${why}`)
  const note = (line: string) => io.stderr.write(`cdn demo: ${line}\n`)
  const abort = new AbortController()
  void io.stopSignal.then(() => abort.abort())
  const prefix = netnsPrefix()
  // A crash must not leave namespaces behind: the exit hook deletes this run's (and only its).
  const cleanup = () => {
    try {
      execFileSync('bash', [join(packageRoot(here), 'scripts/netns.sh'), 'cleanup', prefix], {
        stdio: 'ignore',
      })
    } catch {
      // Best effort on the way out; `scripts/netns.sh cleanup PREFIX` by hand otherwise.
    }
  }
  process.once('exit', cleanup)
  note(`building network namespaces ${prefix}-* from ${config.topology}`)
  try {
    return await runNetnsDemo({
      topo,
      dataDir,
      cliDir: here,
      env: io.env,
      graceMs: config.stopGrace,
      startTimeoutMs: config.startTimeout,
      signal: abort.signal,
      note,
      prefix,
      stop: io.stopSignal,
      out: io.stdout,
    })
  } catch (err) {
    if (isCdnError(err) && err.code === 'CDN_ERR_CANCELLED') return 130
    throw err
  } finally {
    process.removeListener('exit', cleanup)
  }
}

async function startAll(
  plan: DemoPlan,
  sup: Supervisor,
  timeoutMs: number,
  signal: AbortSignal,
  note: (s: string) => void,
): Promise<void> {
  // The origin first (it starts transcoding the samples in the background), then the edges,
  // parents before children, then steering, which polls the edges it is given.
  for (const node of plan.nodes) {
    sup.start(node)
    await sup.waitFor(node, `${node.httpUrl}/healthz`, { timeoutMs: 30_000, signal, what: 'GET /healthz' })
  }
  const want = plan.sampleTitles
  const ready = (body: unknown) => want.every((t) => titlesIn(body).includes(t))
  const first = await fetch(`${plan.origin.httpUrl}/titles`, { signal })
    .then(async (r) => (r.ok ? ready(await r.json()) : false))
    .catch(() => false)
  if (!first)
    note(`origin is preparing the sample titles ${want.join(', ')} (first run only; a minute or two)`)
  await sup.waitFor(plan.origin, `${plan.origin.httpUrl}/titles`, {
    timeoutMs,
    signal,
    what: `sample titles ${want.join(', ')} in GET /titles`,
    accept: ready,
  })
}

async function prefill(plan: DemoPlan, token: string, signal: AbortSignal, note: (s: string) => void) {
  if (!plan.prefill) return
  const { title, edges } = plan.prefill
  for (const edge of edges) {
    try {
      const out = await startPrefill(edge.httpUrl, token, [title], signal)
      if (out.kind === 'unavailable') {
        note(`prefill is not available on the edges yet (${out.why}); skipped`)
        return
      }
    } catch (err) {
      if (signal.aborted) throw new CdnError('CDN_ERR_CANCELLED', 'stopped while starting')
      note(`prefill of ${title} on ${edge.id} failed: ${(err as Error).message}`)
    }
  }
  note(`prefilling "${title}" on ${edges.map((e) => e.id).join(', ')}`)
}

export const command: CliCommand = { spec, run }
