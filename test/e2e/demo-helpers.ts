/**
 * Starting the real demo (`node dist/src/cli/main.js demo`, what `npm start` runs) for end-to-end
 * tests. The spawned nodes run the compiled code, so these tests need `npm run build` first.
 *
 * Transcoding the sample titles costs a couple of CPU-minutes on a 2-core machine, so the
 * titles the demo's origin publishes are made once, by that same origin (the built `cdn origin`
 * with the demo plan's flags), kept under .cache/e2e/ (gitignored) named by the transcoder's
 * code and the sample list (fixtures/cache.ts), and copied into each test's fresh data dir.
 * `npm test` makes them before any test starts (test/helpers/prepare-media.ts), so no test's
 * time goes to transcoding; a test run alone makes them on first use, once across processes.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { rename } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, fetch as undiciFetch } from 'undici'
import { cacheName, once } from '../../fixtures/cache.js'
import { buildPlan, localPaths, TLS_PORT_OFFSET } from '../../src/cli/demo/plan.js'
import { loadTopology } from '../../src/cli/demo/topology.js'
import { until } from '../helpers/wait.js'
import { root } from '../helpers/repo.js'

export { root }
export const cli = join(root, 'dist/src/cli/main.js')
export const topologyFile = join(root, 'deploy/topology.json')

interface TopologyDoc {
  basePort: number
  samples: { title: string; seconds: number; popularity?: number }[]
  origin: { id?: string; port: number }
  steering: { port: number }
  edges: { id: string; port: number; site: string; tier?: number }[]
}

export const topology = JSON.parse(readFileSync(topologyFile, 'utf8')) as TopologyDoc
/** Where the demo's sample titles are kept between runs. */
export const e2eCacheDir = join(root, '.cache', 'e2e')

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(false))
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => res(true)))
  })
}

/** A base port where every node of the default topology finds its shifted ports (plain and HTTPS) free. */
export async function freeBasePort(): Promise<number> {
  const plain = [topology.origin.port, topology.steering.port, ...topology.edges.map((e) => e.port)].map(
    (p) => p - topology.basePort,
  )
  const offsets = [...plain, ...plain.map((o) => o + TLS_PORT_OFFSET)]
  for (let i = 0; i < 50; i++) {
    // Below Linux's ephemeral range (32768+), where port-0 binds and outgoing connections land.
    const base = 20000 + Math.floor(Math.random() * 240) * 50
    const all = await Promise.all(offsets.map((o) => portFree(base + o)))
    if (all.every(Boolean)) return base
  }
  throw new Error('no free port range for the demo')
}

/**
 * The directory holding the demo's published sample titles (`titles/`), made once: the built
 * origin runs with the demo plan's own flags in a temp data dir until GET /titles lists every
 * sample, then stops, and its titles are moved into the cache.
 */
export async function demoTitles(): Promise<string> {
  const target = join(
    e2eCacheDir,
    cacheName('demo', topology.samples, ['src/cli/demo/plan.ts', 'origin/config.ts', 'origin/main.ts']),
  )
  return once(
    target,
    (dir) => existsSync(join(dir, 'titles')),
    async () => {
      // The base port is free when chosen but another process may take it before the origin
      // binds (a busy machine running several suites): an origin that exits early is retried
      // on a new port, a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          await publishDemoTitles(target)
          return
        } catch (err) {
          if (!(err instanceof OriginExited) || attempt >= 4) throw err
        }
      }
    },
  )
}

class OriginExited extends Error {}

/** Runs the demo's origin once in a temp data dir and moves its published titles to `target`. */
async function publishDemoTitles(target: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdn-demo-titles-'))
  try {
    const plan = buildPlan(loadTopology(topologyFile), {
      paths: localPaths(dataDir),
      basePort: await freeBasePort(),
    })
    const originDir = localPaths(dataDir).nodeDir(plan.origin.id)
    mkdirSync(join(originDir, 'ingest'), { recursive: true })
    const proc = spawn(process.execPath, [cli, 'origin', ...plan.origin.args, '--log-level', 'warn'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
    let gone = false
    void exited.then(() => (gone = true))
    try {
      const want = topology.samples.map((x) => x.title)
      await until(async () => {
        if (gone) throw new OriginExited('the origin exited before it had the sample titles')
        const r = await fetch(`${plan.origin.url}/titles`).catch(() => undefined)
        if (!r?.ok) return false
        const ids = ((await r.json()) as { titles: { id: string }[] }).titles.map((x) => x.id)
        return want.every((w) => ids.includes(w))
      }, 500)
    } finally {
      proc.kill('SIGTERM')
      await exited
    }
    const tmp = `${target}.tmp-${process.pid}`
    mkdirSync(tmp, { recursive: true })
    await rename(join(originDir, 'store', 'titles'), join(tmp, 'titles'))
    await rename(tmp, target)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** A fresh temp data dir (startDemo puts the sample titles in its origin's store). */
export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'cdn-demo-e2e-'))
}

/** Copies the sample titles into the origin's store of `dataDir` unless it holds titles already. */
async function withSampleTitles(dataDir: string): Promise<void> {
  const store = join(dataDir, 'nodes', topology.origin.id ?? 'origin', 'store', 'titles')
  if (existsSync(store)) return
  cpSync(join(await demoTitles(), 'titles'), store, { recursive: true })
}

export interface RunningDemo {
  readonly proc: ChildProcess
  /** The base port the demo's nodes are shifted to (their plain-HTTP ports). */
  readonly base: number
  /** The demo's CA (DATA/tls/ca.pem) and the printed path of it. */
  readonly caCert: string
  /** fetch (undici's) trusting the demo's CA, HTTP/2 allowed: for the https URLs. */
  readonly fetch: typeof undiciFetch
  readonly stdout: () => string
  readonly stderr: () => string
  readonly player: string
  readonly fleet: string
  readonly metrics: string[]
  readonly steering: string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Runs `npm start -- --data-dir DIR --base-port N` (or, without `npm`, the demo command itself)
 * in its own process group, as a terminal would, and waits for its ready block. A data dir
 * without titles gets the sample titles first (made once: see demoTitles). Without a base port
 * it takes a free range, and another when something took one of its ports meanwhile (other
 * work on the machine binds ports too).
 */
export async function startDemo(
  dataDir: string,
  basePort?: number,
  opts: { npm?: boolean } = {},
): Promise<RunningDemo> {
  await withSampleTitles(dataDir)
  if (basePort !== undefined) return startOn(dataDir, basePort, opts)
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(dataDir, await freeBasePort(), opts)
    } catch (err) {
      if (attempt === 10 || !/is already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startOn(dataDir: string, basePort: number, opts: { npm?: boolean }): Promise<RunningDemo> {
  const demoArgs = ['--data-dir', dataDir, '--base-port', String(basePort)]
  const [cmd, args] = opts.npm
    ? ['npm', ['start', '--silent', '--', ...demoArgs]]
    : [process.execPath, [cli, 'demo', ...demoArgs]]
  const proc = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (b: Buffer) => {
    out += b
  })
  proc.stderr!.on('data', (b: Buffer) => {
    err += b
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.once('exit', (code, signal) => res({ code, signal })),
  )
  let gone = false
  void exited.then(() => {
    gone = true
  })
  // The ready block ends with the line saying how to stop.
  await until(() => {
    if (gone) throw new Error(`demo exited before it was ready:\n${err}`)
    return /^\s*Stop\s/m.test(out)
  }, 100)
  const url = (label: string) => new RegExp(`^\\s*${label}\\s+(http\\S+)`, 'm').exec(out)?.[1] ?? ''
  const metrics = [...out.matchAll(/(https?:\/\/\S+\/metrics)/g)].map((m) => m[1]!)
  const player = url('Player')
  const caCert = join(dataDir, 'tls', 'ca.pem')
  const agent = existsSync(caCert)
    ? new Agent({ allowH2: true, connect: { ca: readFileSync(caCert, 'utf8') } })
    : new Agent()
  void exited.then(() => agent.close())
  return {
    proc,
    base: basePort,
    caCert,
    fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
    stdout: () => out,
    stderr: () => err,
    player,
    fleet: url('Fleet'),
    metrics,
    steering: new URL(player).origin,
    exited,
  }
}

/** Direct children of a process, from /proc (Linux). */
export function childrenOf(pid: number): { pid: number; args: string[] }[] {
  const out: { pid: number; args: string[] }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== pid) continue
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean)
      out.push({ pid: Number(name), args })
    } catch {
      // The process ended while we looked.
    }
  }
  return out
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Stops a demo as Ctrl-C in its terminal does: SIGINT to its whole process group (npm, the
 * demo and, unless they left it, its nodes). Resolves with how the started process exited.
 */
export async function stopDemo(demo: RunningDemo) {
  if (demo.proc.exitCode === null && demo.proc.signalCode === null) {
    try {
      process.kill(-demo.proc.pid!, 'SIGINT')
    } catch {
      // The group is gone already.
    }
  }
  return demo.exited
}
