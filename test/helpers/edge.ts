/**
 * Starts a real edge on 127.0.0.1 port 0 in front of `upstream`, with its cache in a
 * fresh temp dir unless given, closed on teardown. Used by edge, prefill, steering and demo tests.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import type { EdgeApp } from '../../edge/app-contract.js'
import { type EdgeConfig } from '../../edge/config/spec.js'
import { edgeConfig } from '../../edge/config/validate.js'
import { startEdge as start } from '../../edge/main.js'
import type { Clock } from '../../src/clock.js'
import { until } from './wait.js'

export interface EdgeTestOptions extends Partial<Omit<EdgeConfig, 'upstream'>> {
  upstream: string | string[]
  clock?: Clock
}

export interface TestEdge {
  url: string
  /** With httpPort: the plain-HTTP listener beside the HTTPS one. */
  httpUrl?: string
  app: EdgeApp
  cacheDir: string
}

export async function startEdge(t: Test, opts: EdgeTestOptions): Promise<TestEdge> {
  const { upstream, clock, ...over } = opts
  // A cache dir we make is removed only after the app has closed (a background write may
  // still be landing in it until then).
  const ownDir = over.cacheDir === undefined
  const cacheDir = over.cacheDir ?? mkdtempSync(join(tmpdir(), 'cdn-edge-'))
  const config = edgeConfig({
    memorySize: 64e6,
    diskSize: 256e6,
    logLevel: 'silent',
    ...over,
    cacheDir,
    port: 0,
    host: '127.0.0.1',
    upstream: Array.isArray(upstream) ? upstream : [upstream],
  })
  const { app, url, httpUrl } = await start(config, { ...(clock ? { clock } : {}), logger: false })
  t.teardown(async () => {
    await app.close()
    if (ownDir) rmSync(cacheDir, { recursive: true, force: true, maxRetries: 3 })
  })
  return { url, app, cacheDir, ...(httpUrl ? { httpUrl } : {}) }
}

/**
 * Resolves once every upstream fetch the edge has running has committed to its tiers (disk
 * included) or failed: the single-flight counts no fetch running.
 */
export function settled(edge: TestEdge): Promise<void> {
  return until(() => edge.app.edge.flights.size === 0)
}

/** A fresh temp dir removed on teardown (tap's fixture plugin is off in this repo). */
export function tempDir(t: Test, prefix = 'cdn-edge-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface LoggedEdge {
  url: string
  app: EdgeApp
  /** Log records written so far (pino JSON lines, parsed). */
  logs: Record<string, unknown>[]
}

/** A real edge whose log records (pino, level info) the test reads as they are written. */
export async function loggedEdge(
  t: Test,
  over: Partial<EdgeConfig> & { upstream: string[] },
  clock?: Clock,
): Promise<LoggedEdge> {
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const config = edgeConfig({
    memorySize: 16e6,
    diskSize: 64e6,
    cacheDir: tempDir(t),
    port: 0,
    host: '127.0.0.1',
    ...over,
  })
  const { app, url } = await start(config, { logger: { level: 'info', stream }, ...(clock ? { clock } : {}) })
  t.teardown(() => app.close())
  return { url, app, logs }
}
