/**
 * Starting the real demo (`node dist/src/cli/main.js demo`, what `npm start` runs) for end-to-end
 * tests. The spawned nodes run the compiled code, so these tests need `npm run build` first.
 *
 * Transcoding the sample titles costs a couple of CPU-minutes on a 2-core machine, so the
 * origin's published titles are kept under .cache/e2e/ (gitignored), keyed by the sample list,
 * and copied into each test's fresh data dir. The first run on a machine fills the cache
 * (under a lock, so parallel test files do the work once).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
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
const samplesArg = topology.samples.map((s) => `${s.title}:${s.seconds}`).join(',')
const cacheDir = join(
  root,
  '.cache',
  'e2e',
  `origin-titles-${createHash('sha256').update(samplesArg).digest('hex').slice(0, 12)}`,
)

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(false))
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => res(true)))
  })
}

/** A base port where every node of the default topology finds its shifted port free. */
export async function freeBasePort(): Promise<number> {
  const offsets = [topology.origin.port, topology.steering.port, ...topology.edges.map((e) => e.port)].map(
    (p) => p - topology.basePort,
  )
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 400) * 50
    const all = await Promise.all(offsets.map((o) => portFree(base + o)))
    if (all.every(Boolean)) return base
  }
  throw new Error('no free port range for the demo')
}

/** A fresh temp data dir; the origin's store already holds the sample titles when cached. */
export function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdn-demo-e2e-'))
  if (existsSync(join(cacheDir, 'titles')))
    cpSync(join(cacheDir, 'titles'), join(dir, 'nodes', topology.origin.id ?? 'origin', 'store', 'titles'), {
      recursive: true,
    })
  return dir
}

/** After a demo in `dataDir` got its titles: keep them for later runs (first writer wins). */
export function rememberTitles(dataDir: string): void {
  if (existsSync(cacheDir)) return
  const from = join(dataDir, 'nodes', topology.origin.id ?? 'origin', 'store', 'titles')
  if (!existsSync(from)) return
  const tmp = `${cacheDir}.tmp-${process.pid}`
  mkdirSync(tmp, { recursive: true })
  cpSync(from, join(tmp, 'titles'), { recursive: true })
  try {
    renameSync(tmp, cacheDir)
  } catch {
    rmSync(tmp, { recursive: true, force: true })
  }
}

const LOCK = `${cacheDir}.lock`

/**
 * Serialises the first, expensive run: whoever holds the lock transcodes; the others wait for
 * the cache (bounded: a lock older than 15 minutes is taken as abandoned).
 */
export async function withFirstRunLock<T>(fn: () => Promise<T>): Promise<T> {
  if (existsSync(cacheDir)) return fn()
  mkdirSync(dirname(LOCK), { recursive: true })
  for (let i = 0; i < 900; i++) {
    try {
      mkdirSync(LOCK)
      try {
        return await fn()
      } finally {
        rmSync(LOCK, { recursive: true, force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      if (existsSync(cacheDir)) return fn()
      if (Date.now() - statSync(LOCK).mtimeMs > 15 * 60_000) rmSync(LOCK, { recursive: true, force: true })
      await sleep(1000)
    }
  }
  throw new Error('timed out waiting for another test to transcode the samples')
}

export interface RunningDemo {
  readonly proc: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly player: string
  readonly fleet: string
  readonly metrics: string[]
  readonly steering: string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs `node dist/src/cli/main.js demo` (what `npm start` runs) and waits for its ready block. */
export async function startDemo(
  dataDir: string,
  basePort: number,
  timeoutMs = 420_000,
): Promise<RunningDemo> {
  const proc = spawn(
    process.execPath,
    [cli, 'demo', '--data-dir', dataDir, '--base-port', String(basePort)],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
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
  const deadline = Date.now() + timeoutMs
  while (!/^\s*Stop\s/m.test(out)) {
    if (gone) throw new Error(`demo exited before it was ready:\n${err}`)
    if (Date.now() > deadline) {
      proc.kill('SIGINT')
      throw new Error(`demo not ready within ${timeoutMs / 1000}s:\n${err}`)
    }
    await sleep(200)
  }
  const url = (label: string) => new RegExp(`^\\s*${label}\\s+(http\\S+)`, 'm').exec(out)?.[1] ?? ''
  const metrics = [...out.matchAll(/(http:\/\/\S+\/metrics)/g)].map((m) => m[1]!)
  const player = url('Player')
  return {
    proc,
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

/** Stops a demo with SIGINT (Ctrl-C) and resolves with how it exited. */
export async function stopDemo(demo: RunningDemo) {
  if (demo.proc.exitCode === null && demo.proc.signalCode === null) demo.proc.kill('SIGINT')
  return demo.exited
}
