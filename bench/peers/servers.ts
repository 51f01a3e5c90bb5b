/**
 * The processes of the peer benchmark, each on its own loopback port so /proc can tell their CPU
 * time apart: the counting upstream (in front of our origin), nginx, our edge(s), the baselines.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { type Child, freePort, startProcess } from '../lib/proc.js'
import { fetchTrusting } from '../lib/tls-fetch.js'
import { startNginx } from './nginx.js'
import { NODE_FLAGS } from '../../src/cli/node-flags.js'

export interface Server {
  readonly name: string
  readonly child: Child
  readonly base: string
  /** For an HTTPS server: a fetch that trusts its certificate's CA. */
  readonly fetch?: typeof fetch
}

/** An HTTPS listener's certificate, its key and the CA (PEM files). */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
  readonly ca: string
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
  tls?: TlsFiles,
): Promise<Server> {
  const port = await freePort()
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  const get = tls ? fetchTrusting(readFileSync(tls.ca, 'utf8')) : undefined
  const child = await startProcess({
    name,
    cmd: layout.node,
    args: [...nodeFlags, join(layout.root, script), ...args(port)],
    cwd: layout.root,
    env: layout.env,
    readyUrl: `${base}${readyPath}`,
    ...(get ? { readyFetch: get } : {}),
    readyTimeoutMs: 30_000,
  })
  return { name, child, base, ...(get ? { fetch: get } : {}) }
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
  /** More `cdn edge` arguments (e.g. --disk-sendfile-max-chunk 2MB). */
  readonly extraArgs?: readonly string[]
  /** Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate: `--tls-cert`, `--tls-key`. */
  readonly tls?: TlsFiles
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
      ...(o.tls ? ['--tls-cert', o.tls.cert, '--tls-key', o.tls.key] : []),
      ...(o.extraArgs ?? []),
    ],
    '/healthz',
    [...NODE_FLAGS, ...(o.nodeFlags ?? [])],
    o.tls,
  )
}

export async function startNginxServer(
  workers: number,
  bin: string,
  template: string,
  upstream: Server,
  staticRoot: string,
  tls?: TlsFiles,
): Promise<{ nginx: Server; nginxStatic: Server; nginxTls: Server | undefined }> {
  const port = await freePort()
  const staticPort = await freePort()
  const tlsPort = tls ? await freePort() : 0
  const child = await startNginx({
    bin,
    template,
    port,
    upstreamPort: Number(new URL(upstream.base).port),
    workers,
    staticPort,
    staticRoot,
    ...(tls ? { tls: { port: tlsPort, cert: tls.cert, key: tls.key } } : {}),
  })
  const nginxTls: Server | undefined = tls
    ? {
        name: 'nginx-tls',
        child,
        base: `https://127.0.0.1:${tlsPort}`,
        fetch: fetchTrusting(readFileSync(tls.ca, 'utf8')),
      }
    : undefined
  return {
    nginx: { name: 'nginx', child, base: `http://127.0.0.1:${port}` },
    nginxStatic: { name: 'nginx-static', child, base: `http://127.0.0.1:${staticPort}` },
    nginxTls,
  }
}
