/**
 * Debian's wrk, driven as a child process. A small Lua `done` hook prints the exact totals and
 * latency percentiles as one JSON line, so nothing depends on wrk's rounded human output.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { finishResult, type LoadOptions, type LoadResult } from './load.js'
import { runCommand } from './proc.js'

const MARK = 'WRK_JSON '

// summary.duration and latency are in microseconds.
const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${MARK}{"requests":%d,"bytes":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

let hookPath: string | undefined
function hook(): string {
  if (!hookPath) {
    hookPath = join(mkdtempSync(join(tmpdir(), 'wrk-hook-')), 'done.lua')
    writeFileSync(hookPath, DONE_HOOK)
  }
  return hookPath
}

export interface WrkJson {
  requests: number
  bytes: number
  durationUs: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
  p50Us: number
  p99Us: number
  maxUs: number
}

export function parseWrkOutput(stdout: string): WrkJson {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK))
  if (!line) throw new Error(`wrk printed no summary:\n${stdout.slice(-2000)}`)
  return JSON.parse(line.slice(MARK.length)) as WrkJson
}

export async function runWrk(opts: LoadOptions): Promise<LoadResult> {
  const threads = Math.min(opts.threads ?? 2, opts.connections)
  const args = [
    `-t${threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    hook(),
    opts.url,
  ]
  const out = await runCommand('wrk', args, (opts.durationS + 30) * 1000)
  if (out.code !== 0) throw new Error(`wrk exited with ${out.code}: ${out.stderr || out.stdout}`)
  const j = parseWrkOutput(out.stdout)
  return finishResult({
    generator: 'wrk',
    url: opts.url,
    connections: opts.connections,
    durationS: j.durationUs / 1e6,
    requests: j.requests,
    bytes: j.bytes,
    p50Ms: j.p50Us / 1000,
    p99Ms: j.p99Us / 1000,
    // wrk's "status" error counts responses >= 400.
    errors: j.connect + j.read + j.write + j.timeout,
    non2xx: j.status,
    errorKinds: { connect: j.connect, read: j.read, write: j.write, timeout: j.timeout },
  })
}
