/**
 * Runs the demo's nodes as child processes: `node --import parent-watch.js cli.js ROLE ...`,
 * each in its own process group with its output in a log file. Stops them newest first:
 * SIGTERM to the group, then SIGKILL to the group after a grace period, so nothing a node
 * started (an ffmpeg) outlives it. Owns no policy beyond that: what to start comes from the plan.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { type Clock, systemClock } from '../../clock.js'
import { CdnError } from '../../errors.js'
import { NODE_FLAGS } from '../node-flags.js'
import type { NodePlan } from './plan.js'

export interface SupervisorOptions {
  /** The package's dist/src/cli/main.js. */
  readonly cliPath: string
  /** The compiled parent-watch.js preloaded into every child. */
  readonly watchPath: string
  readonly logDir: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** Time each node gets to stop after SIGTERM before SIGKILL. */
  readonly graceMs: number
  /** Called when a node exits while it was meant to be running. */
  readonly onUnexpectedExit?: (node: NodePlan, code: number | null, signal: string | null) => void
  readonly clock?: Clock
  /** The network namespace a node runs in (the netns mode, netns.ts); the host's when undefined. */
  readonly namespace?: (id: string) => string | undefined
  /** How waitFor reaches a node (the netns mode goes through a namespace's gateway); global fetch by default. */
  readonly fetch?: (url: string, init: { signal: AbortSignal }) => Promise<Response>
}

interface Running {
  readonly node: NodePlan
  readonly child: ChildProcess
  readonly logFile: string
  readonly exited: Promise<void>
  done: boolean
  stopping: boolean
}

export class Supervisor {
  private readonly running: Running[] = []
  constructor(private readonly opts: SupervisorOptions) {}

  logFile(id: string): string {
    return join(this.opts.logDir, `${id}.log`)
  }

  start(node: NodePlan): number {
    const logFile = this.logFile(node.id)
    const fd = openSync(logFile, 'a')
    let child: ChildProcess
    try {
      const argv = [
        process.execPath,
        ...NODE_FLAGS,
        '--import',
        pathToFileURL(this.opts.watchPath).href,
        this.opts.cliPath,
        node.role,
        ...node.args,
      ]
      // `ip netns exec` enters the namespace and execs node in place: same pid, same parent.
      const ns = this.opts.namespace?.(node.id)
      const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv
      child = spawn(cmd!, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...this.opts.env } })
    } finally {
      closeSync(fd)
    }
    const r: Running = { node, child, logFile, done: false, stopping: false, exited: Promise.resolve() }
    ;(r as { exited: Promise<void> }).exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        r.done = true
        if (!r.stopping) this.opts.onUnexpectedExit?.(node, code, signal)
        resolve()
      })
      child.once('error', () => {
        r.done = true
        resolve()
      })
    })
    this.running.push(r)
    if (child.pid === undefined) throw new CdnError('CDN_ERR_INTERNAL', `could not start ${node.id}`)
    return child.pid
  }

  pids(): number[] {
    return this.running.filter((r) => !r.done && r.child.pid).map((r) => r.child.pid!)
  }

  isRunning(id: string): boolean {
    const r = this.running.find((x) => x.node.id === id)
    return !!r && !r.done
  }

  /** Last lines of a node's log, for error messages. */
  logTail(id: string, lines = 8): string {
    try {
      const text = readFileSync(this.logFile(id), 'utf8').trimEnd().split('\n')
      return text.slice(-lines).join('\n')
    } catch {
      return ''
    }
  }

  /**
   * Polls `url` until it answers 2xx (and `accept` agrees), the node exits, the timeout
   * passes or `signal` aborts. Throws CDN_ERR_INTERNAL naming the node and quoting its log.
   */
  async waitFor(
    node: NodePlan,
    url: string,
    opts: { timeoutMs: number; signal: AbortSignal; what: string; accept?: (body: unknown) => boolean },
  ): Promise<unknown> {
    const clock = this.opts.clock ?? systemClock
    const deadline = clock.monotonic() + opts.timeoutMs
    let last = 'no answer yet'
    while (clock.monotonic() < deadline) {
      if (opts.signal.aborted) throw new CdnError('CDN_ERR_CANCELLED', 'stopped while starting')
      if (!this.isRunning(node.id)) throw this.failure(node, `exited before ${opts.what}`)
      try {
        const get = this.opts.fetch ?? fetch
        const res = await get(url, { signal: AbortSignal.any([opts.signal, AbortSignal.timeout(2000)]) })
        const text = await res.text()
        if (res.ok) {
          const body = parseMaybeJson(text)
          if (!opts.accept || opts.accept(body)) return body
          last = 'not ready yet'
        } else last = `HTTP ${res.status}`
      } catch (err) {
        last = (err as Error).message
      }
      await sleep(250, undefined, { signal: opts.signal }).catch(() => undefined)
    }
    throw this.failure(node, `did not become ready (${opts.what}: ${last}) within ${opts.timeoutMs / 1000}s`)
  }

  private failure(node: NodePlan, why: string): CdnError {
    const tail = this.logTail(node.id)
    return new CdnError(
      'CDN_ERR_INTERNAL',
      `${node.role} ${node.id} (port ${node.port}) ${why}; log: ${this.logFile(node.id)}${tail ? `\n    ${tail.split('\n').join('\n    ')}` : ''}`,
    )
  }

  /** Stops every node, the last started first; resolves when all have exited. */
  async stopAll(): Promise<void> {
    for (const r of [...this.running].reverse()) {
      if (r.done) continue
      r.stopping = true
      signalGroup(r.child, 'SIGTERM')
      const killed = sleep(this.opts.graceMs, 'timeout' as const, { ref: false })
      if ((await Promise.race([r.exited.then(() => 'exited' as const), killed])) === 'timeout') {
        signalGroup(r.child, 'SIGKILL')
        await r.exited
      } else signalGroup(r.child, 'SIGKILL', true)
    }
  }
}

/** Signals the child's whole process group (it leads one: spawned detached). */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals, quiet = false): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, sig)
  } catch (err) {
    // ESRCH: the group is already gone, which is what we want.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH' && !quiet) throw err
  }
}

function parseMaybeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}
