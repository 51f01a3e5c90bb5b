/**
 * The processes of the peer benchmark, each on its own loopback port so /proc can tell their CPU
 * time apart: the counting upstream (in front of our origin), nginx, our edge(s), the baselines.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { type Child, freePort, startProcess } from '../lib/proc.js'
import { startNginx } from './nginx.js'

export interface Server {
  readonly name: string
  readonly child: Child
  readonly base: string
}

export interface Layout {
  readonly root: string
  /** node executable and extra flags (e.g. --cpu-prof for a profiled edge). */
  readonly node: string
  readonly env: Readonly<Record<string, string | undefined>>
}

async function nodeServer(
  layout: Layout,
  name: string,
  script: string,
  args: (port: number) => readonly string[],
  readyPath: string,
  nodeFlags: readonly string[] = [],
): Promise<Server> {
  const port = await freePort()
  const child = await startProcess({
    name,
    cmd: layout.node,
    args: [...nodeFlags, join(layout.root, script), ...args(port)],
    cwd: layout.root,
    env: layout.env,
    readyUrl: `http://127.0.0.1:${port}${readyPath}`,
    readyTimeoutMs: 30_000,
  })
  return { name, child, base: `http://127.0.0.1:${port}` }
}

export function startOrigin(layout: Layout, store: string): Promise<Server> {
  return nodeServer(
    layout,
    'origin',
    'dist/src/cli/main.js',
    (port) => ['origin', '--port', String(port), '--store', store, '--log-level', 'warn'],
    '/healthz',
  )
}

export function startUpstream(layout: Layout, extraDir: string, origin: string | undefined): Promise<Server> {
  return nodeServer(
    layout,
    'upstream',
    'dist/bench/peers/upstream-server.js',
    (port) => ['--port', String(port), '--root', extraDir, ...(origin ? ['--origin', origin] : [])],
    '/__bench/stats',
  )
}

export function startBaseline(layout: Layout, mode: 'memory' | 'stream', root: string): Promise<Server> {
  return nodeServer(
    layout,
    mode === 'memory' ? 'node-http-mem' : 'node-http-stream',
    'dist/bench/peers/baseline-server.js',
    (port) => ['--port', String(port), '--root', root, '--mode', mode],
    '/',
  )
}

export interface EdgeOptions {
  readonly name: string
  readonly upstream: string
  readonly cacheDir: string
  readonly memorySize: string
  readonly diskSize: string
  /** `cdn edge --workers` (1: one process). */
  readonly workers?: number
  readonly nodeFlags?: readonly string[]
}

export function startEdge(layout: Layout, o: EdgeOptions): Promise<Server> {
  rmSync(o.cacheDir, { recursive: true, force: true })
  mkdirSync(o.cacheDir, { recursive: true })
  return nodeServer(
    layout,
    o.name,
    'dist/src/cli/main.js',
    (port) => [
      'edge',
      '--port',
      String(port),
      '--upstream',
      o.upstream,
      '--cache-dir',
      o.cacheDir,
      '--memory-size',
      o.memorySize,
      '--disk-size',
      o.diskSize,
      '--log-level',
      'warn',
      // The 4 MB object lives outside /vod/ (no rung of the ladder has a segment that large).
      '--public-path',
      '/bench',
      '--workers',
      String(o.workers ?? 1),
    ],
    '/healthz',
    o.nodeFlags,
  )
}

export async function startNginxServer(
  workers: number,
  bin: string,
  template: string,
  upstream: Server,
  staticRoot: string,
): Promise<{ nginx: Server; nginxStatic: Server }> {
  const port = await freePort()
  const staticPort = await freePort()
  const child = await startNginx({
    bin,
    template,
    port,
    upstreamPort: Number(new URL(upstream.base).port),
    workers,
    staticPort,
    staticRoot,
  })
  return {
    nginx: { name: 'nginx', child, base: `http://127.0.0.1:${port}` },
    nginxStatic: { name: 'nginx-static', child, base: `http://127.0.0.1:${staticPort}` },
  }
}
