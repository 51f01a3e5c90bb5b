/**
 * Child processes for benchmarks: start a server as its own process (so its CPU time can be read
 * from /proc), wait until it answers, and stop it with a bounded grace period. Only the
 * benchmark runners use this; nothing shipped imports bench/.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface StartOptions {
  /** A short name for messages, e.g. "nginx". */
  readonly name: string
  readonly cmd: string
  readonly args: readonly string[]
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Polled with GET until it answers with any status below 500. */
  readonly readyUrl?: string
  /** The fetch readiness is polled with (e.g. one trusting a private CA for an HTTPS server). */
  readonly readyFetch?: typeof fetch
  /** Upper bound on the wait for readiness. */
  readonly readyTimeoutMs?: number
}

export interface Child {
  readonly name: string
  readonly pid: number
  /** The last few KB of stdout+stderr, for error messages. */
  output(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>
  readonly exited: Promise<number | null>
}

const TAIL_BYTES = 8192

export async function startProcess(opts: StartOptions): Promise<Child> {
  const proc: ChildProcess = spawn(opts.cmd, [...opts.args], {
    cwd: opts.cwd,
    env: opts.env as NodeJS.ProcessEnv | undefined,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let tail = ''
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null)
      resolve(exitCode)
    })
    proc.once('error', (err) => {
      tail += `\n${err.message}`
      exitCode = -1
      resolve(-1)
    })
  })
  if (proc.pid === undefined) {
    await exited
    throw new Error(`${opts.name}: could not start ${opts.cmd}: ${tail.trim()}`)
  }
  const child: Child = {
    name: opts.name,
    pid: proc.pid,
    output: () => tail,
    exited,
    async stop(graceMs = 3000) {
      if (exitCode !== undefined) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
  if (opts.readyUrl) {
    try {
      await waitForHttp(
        opts.readyUrl,
        opts.readyTimeoutMs ?? 15_000,
        () => exitCode !== undefined,
        opts.readyFetch,
      )
    } catch (err) {
      await child.stop(500)
      throw new Error(`${opts.name}: ${(err as Error).message}\n--- output ---\n${tail.trim()}`)
    }
  }
  return child
}

/** Polls `url` until it answers below 500, the deadline passes, or `gaveUp()` says stop. */
export async function waitForHttp(
  url: string,
  timeoutMs: number,
  gaveUp: () => boolean = () => false,
  get: typeof fetch = fetch,
) {
  const deadline = performance.now() + timeoutMs
  let last = 'no answer'
  while (performance.now() < deadline) {
    if (gaveUp()) throw new Error(`exited before ${url} answered`)
    try {
      const res = await get(url, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status < 500) return
      last = `status ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`)
}

/** A port that was free a moment ago, for servers (nginx) that need one written in a config. */
export async function freePort(): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const addr = srv.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  srv.close()
  await once(srv, 'close')
  return port
}

/** Runs a command to completion with a time bound; resolves with its exit code and output. */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8')
  })
  proc.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    proc.once('close', (c) => resolve(c))
    proc.once('error', (err) => {
      stderr += err.message
      resolve(-1)
    })
  })
  clearTimeout(timer)
  return { code, stdout, stderr }
}
