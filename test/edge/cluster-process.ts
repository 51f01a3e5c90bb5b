/**
 * A clustered edge for tests: the built CLI (`cdn edge --workers N`, run `npm run build` first)
 * on 127.0.0.1 port 0, its processes found through /proc, ended on teardown (workers included,
 * even stopped ones), and one request per connection (the primary deals connections to its
 * workers round-robin, so consecutive ones land on each in turn).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { Client, type Dispatcher } from 'undici'
import { cli } from '../helpers/repo.js'

export interface Res {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export interface Cluster {
  proc: ChildProcess
  pid: number
  url: string
  /** The CLI's "listening on" line. */
  line: string
  stderr: () => string
  /** What the nodes logged (pino, stdout). */
  log: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Content (GET /vod/...) requests that got an answer, for /metrics. */
  content: number
}

/** Pids whose parent is `ppid` and that are not zombies, from /proc/PID/stat. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const st = procStat(Number(name))
    if (st && st.ppid === ppid && st.state !== 'Z') out.push(Number(name))
  }
  return out.sort((a, b) => a - b)
}

export function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state: rest[0]!, ppid: Number(rest[1]) }
  } catch {
    return undefined
  }
}

export const alive = (pid: number) => {
  const st = procStat(pid)
  return st !== undefined && st.state !== 'Z'
}

export const sockets = (pid: number) =>
  readdirSync(tmpdir())
    .filter((f) => f.startsWith(`cdn-edge-${pid}-`) && f.endsWith('.sock'))
    .map((f) => join(tmpdir(), f))

interface RequestOptions {
  method?: Dispatcher.HttpMethod
  headers?: Record<string, string>
  body?: string
}

/** One request on `client`, closed after it: its status, headers and whole body. */
async function requestOn(client: Client, path: string, opts: RequestOptions): Promise<Res> {
  try {
    const r = await client.request({
      path,
      method: opts.method ?? 'GET',
      headers: opts.headers,
      body: opts.body,
    })
    const body = Buffer.from(await r.body.arrayBuffer())
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) headers[k] = String(v)
    return { status: r.statusCode, headers, body }
  } finally {
    await client.close()
  }
}

/** One request on its own connection. */
export function once(base: string, path: string, opts: RequestOptions = {}): Promise<Res> {
  return requestOn(new Client(base, { pipelining: 1 }), path, opts)
}

export async function get(c: Cluster, path: string): Promise<Res> {
  const r = await once(c.url, path)
  c.content++
  return r
}

export interface Tier {
  bytes: number
  capacityBytes: number
  objects: number
}

export async function status(c: Cluster): Promise<{ workers?: number; tiers: { memory: Tier; disk: Tier } }> {
  const r = await once(c.url, '/status')
  if (r.status !== 200) throw new Error(`/status ${r.status}: ${r.body.toString()}`)
  return JSON.parse(r.body.toString()) as { workers?: number; tiers: { memory: Tier; disk: Tier } }
}

const CONN_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])
export const connError = (err: unknown) => CONN_ERRORS.has((err as { code?: string }).code ?? '')

export async function startCluster(
  t: Test,
  upstream: string,
  extra: string[],
  opts: { workers?: number; env?: Record<string, string> } = {},
): Promise<Cluster> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'cdn-cluster-'))
  const workers = String(opts.workers ?? 2)
  const args = ['edge', '--workers', workers, '--port', '0', '--host', '127.0.0.1', '--upstream', upstream]
  args.push('--cache-dir', cacheDir, '--disk-size', '256MB', '--log-level', 'warn', ...extra)
  const proc = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  })
  let log = ''
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (d: string) => (log += d))
  let err = ''
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (d: string) => (err += d))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.once('exit', (code, signal) => res({ code, signal })),
  )
  const pid = proc.pid!
  // If this process ends without its teardowns, the primary (and with it its workers) goes too.
  const orphan = () => proc.kill('SIGKILL')
  process.once('exit', orphan)
  t.teardown(async () => {
    process.off('exit', orphan)
    const kids = childrenOf(pid)
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exit
    }
    // Workers leave when their primary's IPC channel closes; any still here are ours to end.
    for (const w of kids) if (alive(w)) killQuietly(w)
    for (const s of sockets(pid)) rmSync(s, { force: true })
    rmSync(cacheDir, { recursive: true, force: true, maxRetries: 3 })
  })
  const line = await new Promise<string>((res, rej) => {
    const check = () => {
      const m = /^cdn edge .*listening on .*$/m.exec(err)
      if (m) res(m[0])
    }
    proc.stderr!.on('data', check)
    void exit.then(({ code, signal }) =>
      rej(new Error(`cdn edge exited (${code ?? signal}) before listening:\n${err}`)),
    )
  })
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1]
  if (!url) throw new Error(`no URL in ${line}`)
  return { proc, pid, url, line, stderr: () => err, log: () => log, exit, content: 0 }
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * GET `path` from the primary itself, over its private socket: what /metrics or /status says
 * without a worker counting the request (a scrape through the public port is a client request).
 */
export async function fromPrimary(c: Cluster, path: string, fields?: Record<string, string>): Promise<Res> {
  const [socketPath] = sockets(c.pid)
  if (socketPath === undefined) throw new Error(`no socket of the primary ${c.pid}`)
  return requestOn(new Client('http://localhost', { socketPath }), path, { headers: fields })
}

/** A Prometheus text exposition as `name{label="v",...}` (labels sorted) → value. */
export function exposition(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort()
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]))
  }
  return out
}
