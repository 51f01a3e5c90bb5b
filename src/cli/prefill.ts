/**
 * `cdn prefill`: fill edges with titles ahead of demand, and follow the job.
 *
 *   cdn prefill --edge URL --token T TITLE...            fill these titles, in this rank order
 *   cdn prefill --edge URL --token T --popularity FILE   a ranked list ({"popularity": [...]},
 *                                                        e.g. saved from GET /admin/popularity)
 *   cdn prefill --all-edges STEERING_URL --token T ...   every edge steering knows
 *   cdn prefill --edge URL --token T --cancel JOB        cancel a job
 *
 * Talks to edges over HTTP only. A progress bar on a terminal, plain lines otherwise. Exits
 * non-zero when a job fails or a title fails; ^C stops following (the job goes on).
 */
import { readFile } from 'node:fs/promises'
import { type CommandSpec, parseCommand } from '../config/options.js'
import { formatBytes } from '../config/units.js'
import { CdnError } from '../errors.js'
import type { CliCommand, CliIo } from './command.js'
import { CA_OPTIONS, CliHttp, steeringEdges } from './http-client.js'
import { createProgress } from './progress.js'

export interface PrefillCliOptions {
  edge: string | undefined
  allEdges: string | undefined
  token: string
  ca: string[]
  popularity: string | undefined
  renditions: string[]
  maxHeight: number | undefined
  maxBytesPerSecond: number | undefined
  trickleRate: number | undefined
  concurrency: number | undefined
  window: string | undefined
  dryRun: boolean
  detach: boolean
  cancel: string | undefined
  pollInterval: number
  timeout: number
}

export const PREFILL_SPEC: CommandSpec = {
  name: 'cdn prefill',
  summary: 'Fill edges with titles (or a ranked popularity list) ahead of demand, and follow the job.',
  usage:
    'cdn prefill (--edge URL | --all-edges STEERING_URL) --token TOKEN [--ca FILE] (TITLE... | --popularity FILE) [options]',
  positionals: 'TITLE...',
  envPrefix: 'CDN_PREFILL',
  options: {
    edge: { type: 'url', env: 'CDN_PREFILL_EDGE', help: 'the edge to fill' },
    allEdges: {
      type: 'url',
      arg: 'STEERING_URL',
      help: 'fill every edge steering lists (its GET /edges) instead of one',
    },
    token: {
      type: 'string',
      required: true,
      env: 'CDN_ADMIN_TOKEN',
      arg: 'TOKEN',
      help: "the edges' admin bearer token",
    },
    ...CA_OPTIONS,
    popularity: {
      type: 'string',
      arg: 'FILE',
      help: 'JSON ranked list: {"popularity":[{"title":"a","weight":0.3},...]} or the bare array',
    },
    renditions: { type: 'list', default: [], arg: 'NAME', help: 'only these renditions, e.g. 720p,480p' },
    maxHeight: { type: 'int', min: 1, arg: 'PIXELS', help: 'only renditions up to this height, e.g. 720' },
    maxBytesPerSecond: { type: 'size', min: 1, arg: 'RATE', help: 'byte-rate cap per edge, e.g. 50MB' },
    trickleRate: {
      type: 'size',
      arg: 'RATE',
      help: "rate outside the window (default: the edge's --prefill-trickle-rate)",
    },
    concurrency: { type: 'int', min: 1, max: 64, help: 'objects fetched at once per edge' },
    window: {
      type: 'string',
      arg: 'HH:MM-HH:MM',
      help: "fill window in the edge's local time, e.g. 02:00-06:00",
    },
    dryRun: { type: 'boolean', default: false, help: 'print the plan (sizes, fit, time) without fetching' },
    detach: { type: 'boolean', default: false, help: 'print the job id and return without following' },
    cancel: { type: 'string', arg: 'JOB', help: 'cancel this job instead of starting one' },
    pollInterval: { type: 'duration', default: 1000, min: 100, help: 'how often to poll a followed job' },
    timeout: { type: 'duration', default: 30_000, min: 100, help: 'timeout of each HTTP request' },
  },
}

interface JobView {
  id: string
  state: string
  reason?: string
  objects: { done: number; total: number }
  bytes: { done: number; total: number; fetched: number }
  rateBytesPerSec: number
  etaSec?: number
  titles: Array<{ title: string; state: string; reason?: string; bytesTotal: number; objectsTotal: number }>
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled'])

async function requestBody(
  o: PrefillCliOptions,
  titles: readonly string[],
): Promise<Record<string, unknown>> {
  if (!!o.popularity === titles.length > 0)
    throw new CdnError('CDN_ERR_CONFIG', 'give TITLE... or --popularity FILE (one of them)')
  const body: Record<string, unknown> = {}
  if (o.popularity) {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(o.popularity, 'utf8'))
    } catch (err) {
      throw new CdnError('CDN_ERR_CONFIG', `--popularity ${o.popularity}: ${(err as Error).message}`)
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { popularity?: unknown })?.popularity
    if (!Array.isArray(list))
      throw new CdnError(
        'CDN_ERR_CONFIG',
        `--popularity ${o.popularity}: expected {"popularity": [...]} or an array`,
      )
    body.popularity = list.map((e: { title?: unknown; weight?: unknown }) => ({
      title: e?.title,
      weight: e?.weight,
    }))
  } else body.titles = titles
  if (o.renditions.length || o.maxHeight)
    body.renditions = {
      ...(o.maxHeight ? { maxHeight: o.maxHeight } : {}),
      ...(o.renditions.length ? { names: o.renditions } : {}),
    }
  if (o.maxBytesPerSecond) body.maxBytesPerSecond = o.maxBytesPerSecond
  if (o.trickleRate !== undefined) body.trickleBytesPerSecond = o.trickleRate
  if (o.concurrency) body.concurrency = o.concurrency
  if (o.window) body.window = o.window
  if (o.dryRun) body.dryRun = true
  return body
}

/** The edge given, or every edge steering lists. */
async function edgesOf(o: PrefillCliOptions, http: CliHttp): Promise<string[]> {
  return o.edge ? [o.edge] : steeringEdges(http, o.allEdges!)
}

function printPlan(io: CliIo, edge: string, plan: Record<string, unknown>): void {
  const p = plan as {
    titles: Array<{
      title: string
      decision: string
      bytesTotal: number
      bytesToFetch: number
      reason?: string
    }>
    bytesTotal: number
    bytesToFetch: number
    protectedShare: { capacityBytes: number; usedBytesAfter: number }
    unprotect: Array<{ title: string }>
    timing: { seconds?: number; window?: { spec: string; fits: boolean; lengthSec: number } }
  }
  const w = io.stdout
  w.write(`${edge}: plan (dry run)\n`)
  for (const t of p.titles)
    w.write(
      `  ${t.title.padEnd(24)} ${t.decision.padEnd(9)} ${formatBytes(t.bytesTotal).padStart(10)} total ${formatBytes(t.bytesToFetch).padStart(10)} to fetch${t.reason ? `  ${t.reason}` : ''}\n`,
    )
  w.write(
    `  total ${formatBytes(p.bytesTotal)}, ${formatBytes(p.bytesToFetch)} to fetch; protected share ${formatBytes(p.protectedShare.usedBytesAfter)} of ${formatBytes(p.protectedShare.capacityBytes)} after\n`,
  )
  if (p.unprotect.length)
    w.write(`  releases earlier titles: ${p.unprotect.map((u) => u.title).join(', ')}\n`)
  if (p.timing.seconds !== undefined)
    w.write(
      `  ${p.timing.seconds} s at the rate cap${p.timing.window ? `; window ${p.timing.window.spec} (${p.timing.window.lengthSec} s): ${p.timing.window.fits ? 'fits' : 'does NOT fit'}` : ''}\n`,
    )
}

function detail(views: JobView[]): string {
  const done = views.reduce((s, v) => s + v.objects.done, 0)
  const total = views.reduce((s, v) => s + v.objects.total, 0)
  const rate = views.reduce((s, v) => s + v.rateBytesPerSec, 0)
  const eta = Math.max(0, ...views.map((v) => v.etaSec ?? 0))
  const states = [...new Set(views.map((v) => v.state))].join(',')
  return `${done}/${total} objects ${formatBytes(rate)}/s${eta ? ` ETA ${eta}s` : ''} ${states}`
}

async function follow(
  io: CliIo,
  o: PrefillCliOptions,
  http: CliHttp,
  jobs: Array<{ edge: string; id: string }>,
): Promise<number> {
  const label = jobs.length === 1 ? `prefill ${jobs[0]!.id}` : `prefill ${jobs.length} edges`
  const bar = createProgress(io.stdout, label)
  let stopped = false
  void io.stopSignal.then(() => {
    stopped = true
  })
  let views: JobView[] = []
  for (;;) {
    views = await Promise.all(
      jobs.map(async (j) => (await http.call('GET', `${j.edge}/admin/prefill/${j.id}`)).json as JobView),
    )
    const total = views.reduce((s, v) => s + v.bytes.total, 0)
    const done = views.reduce((s, v) => s + v.bytes.done, 0)
    bar.update(total ? done / total : 0, detail(views))
    if (views.every((v) => TERMINAL.has(v.state))) break
    if (stopped) {
      bar.done('stopped following; the job goes on (cancel with --cancel JOB)')
      return 130
    }
    await new Promise((r) => setTimeout(r, o.pollInterval))
  }
  let failed = false
  const fetched = views.reduce((s, v) => s + v.bytes.fetched, 0)
  const lines: string[] = []
  views.forEach((v, i) => {
    if (v.state !== 'completed') failed = true
    lines.push(`${jobs[i]!.edge} ${v.id}: ${v.state}${v.reason ? ` (${v.reason})` : ''}`)
    for (const t of v.titles) {
      if (t.state === 'failed') failed = true
      lines.push(
        `  ${t.title.padEnd(24)} ${t.state.padEnd(9)} ${formatBytes(t.bytesTotal)}${t.reason ? `  ${t.reason}` : ''}`,
      )
    }
  })
  if (failed) bar.fail(`finished with failures (${formatBytes(fetched)} fetched)`)
  else bar.done(`done, ${formatBytes(fetched)} fetched`)
  io.stdout.write(`${lines.join('\n')}\n`)
  return failed ? 1 : 0
}

export const command: CliCommand = {
  spec: PREFILL_SPEC,
  async run(io) {
    const { config: o, positionals } = parseCommand<PrefillCliOptions>(PREFILL_SPEC, io.argv, io.env)
    const http = new CliHttp(o)
    try {
      return await prefill(io, o, positionals, http)
    } finally {
      await http.close()
    }
  },
}

async function prefill(
  io: CliIo,
  o: PrefillCliOptions,
  titles: readonly string[],
  http: CliHttp,
): Promise<number> {
  if (o.edge && o.allEdges) throw new CdnError('CDN_ERR_CONFIG', 'give --edge or --all-edges, not both')
  if (!o.edge && !o.allEdges)
    throw new CdnError('CDN_ERR_CONFIG', '--edge URL or --all-edges STEERING_URL is required')
  if (o.cancel) {
    for (const edge of await edgesOf(o, http)) {
      const { json } = await http.call('DELETE', `${edge}/admin/prefill/${encodeURIComponent(o.cancel)}`)
      io.stdout.write(`${edge} ${o.cancel}: ${(json as JobView).state}\n`)
    }
    return 0
  }
  const body = await requestBody(o, titles)
  const jobs: Array<{ edge: string; id: string }> = []
  for (const edge of await edgesOf(o, http)) {
    const { json } = await http.call('POST', `${edge}/admin/prefill`, { body })
    if (o.dryRun) {
      printPlan(io, edge, (json as { plan: Record<string, unknown> }).plan)
      continue
    }
    const r = json as { id: string; existing: boolean }
    io.stdout.write(`${edge}: job ${r.id}${r.existing ? ' (already running: following it)' : ''}\n`)
    jobs.push({ edge, id: r.id })
  }
  if (o.dryRun || o.detach) return 0
  return follow(io, o, http, jobs)
}
