/**
 * The result of a hit-ratio run as JSON, a markdown table and an SVG chart, and the merge of
 * several runs' JSON on the same trace (`run.js --merge a.json,b.json`: runs split by cache
 * size or by policy, e.g. one process per core, or a policy re-run after a change).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { ALL_POLICIES, type SizeResult } from './compare.js'
import { chartSvg } from './svg.js'

export interface CheRow {
  readonly share: number
  readonly simulated: number
  readonly che: number
  readonly simulatedObjects: number
  readonly cheObjects: number
}

export interface RunDoc {
  readonly generatedAt: string
  readonly command: string
  readonly machine: { cpus: number; model: string | undefined; loadavg: number[] }
  readonly workload: { alpha?: number; traceFile?: string }
  readonly trace: {
    requests: number
    objects: number
    days: number
    warmupDays: number
    catalogueBytes: number
    /** Byte hit ratio of an infinite cache over the counted days: only first requests miss. */
    ceiling?: number
  }
  readonly edge: object
  readonly sizes: SizeResult[]
  readonly cheCheck: CheRow[]
  readonly cost: {
    cpuSec: number
    /** Wall-clock seconds of the whole run (generation, replays, Che check). */
    wallSec?: number
    replaySec: number
    replayedRequests: number
    microsecondsPerRequest: number
  }
  /**
   * The runs merged into this one whose rows it shows: their commands, wall-clock and CPU
   * seconds, load average at the end and the rows (`share:policy`) each gave.
   */
  readonly parts?: Part[]
}

export interface Part {
  readonly command: string
  readonly wallSec?: number
  readonly cpuSec: number
  readonly loadavg?: number[]
  readonly rows?: string[]
}

const rowKey = (share: number, policy: string) => `${share}:${policy}`

/**
 * The rows a part gave: recorded, or read off its command's --sizes and --policies (parts
 * merged before rows were recorded); undefined when the command does not say.
 */
function rowsOf(part: Part): string[] | undefined {
  if (part.rows) return part.rows
  const sizes = /--sizes '?([\d.,]+)'?/.exec(part.command)?.[1]
  const policies = /--policies '?([^' ]+)'?/.exec(part.command)?.[1]
  if (!sizes || !policies) return undefined
  return sizes.split(',').flatMap((sz) => policies.split(',').map((n) => rowKey(Number(sz) / 100, n)))
}

/** A run's own part: its command, costs and the rows it gave. */
function ownPart(d: RunDoc): Part {
  return {
    command: d.command,
    wallSec: d.cost.wallSec,
    cpuSec: d.cost.cpuSec,
    loadavg: d.machine.loadavg,
    rows: d.sizes.flatMap((s) => Object.keys(s.results).map((n) => rowKey(s.share, n))),
  }
}

/**
 * Several runs on one trace as one: results per size and policy (a later run's row replaces an
 * earlier one's), costs added up. The parts listed are those whose rows are still shown.
 */
export function mergeDocs(docs: readonly RunDoc[]): RunDoc {
  const first = docs[0]!
  for (const d of docs)
    if (d.trace.requests !== first.trace.requests || d.trace.objects !== first.trace.objects)
      throw new Error(`not the same trace: ${d.command} and ${first.command}`)
  const byShare = new Map<number, SizeResult>()
  const che = new Map<number, CheRow>()
  for (const d of docs) {
    for (const s of d.sizes) {
      const had = byShare.get(s.share)
      byShare.set(s.share, had ? { ...had, results: { ...had.results, ...s.results } } : s)
    }
    for (const c of d.cheCheck) che.set(c.share, c)
  }
  const replaySec = docs.reduce((s, d) => s + d.cost.replaySec, 0)
  const replayedRequests = docs.reduce((s, d) => s + d.cost.replayedRequests, 0)
  const all = docs.flatMap((d) => d.parts ?? [ownPart(d)])
  const owner = new Map<string, number>()
  all.forEach((p, i) => {
    for (const r of rowsOf(p) ?? []) owner.set(r, i)
  })
  const parts = all.filter((p, i) => {
    const rows = rowsOf(p)
    return rows === undefined || rows.some((r) => owner.get(r) === i)
  })
  return {
    ...first,
    generatedAt: new Date().toISOString(),
    sizes: [...byShare.values()].sort((a, b) => a.share - b.share),
    cheCheck: [...che.values()].sort((a, b) => a.share - b.share),
    cost: {
      cpuSec: docs.reduce((s, d) => s + d.cost.cpuSec, 0),
      replaySec,
      replayedRequests,
      microsecondsPerRequest: (replaySec * 1e6) / replayedRequests,
    },
    parts,
  }
}

export function readDoc(file: string): RunDoc {
  return JSON.parse(readFileSync(file, 'utf8')) as RunDoc
}

const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(3))

export function markdown(doc: RunDoc): string {
  const { sizes } = doc
  const policies = ALL_POLICIES.filter((n) => sizes.some((s) => s.results[n]))
  const rows = sizes.flatMap((s) =>
    policies.filter((n) => s.results[n]).map((n) => ({ s, n, r: s.results[n]! })),
  )
  const table = markdownTable(rows, [
    { header: 'disk', cell: (x) => `${Math.round(x.s.share * 100)}%`, right: true },
    { header: 'policy', cell: (x) => x.n },
    { header: 'byte hit', cell: (x) => pct(x.r.byteHitRatio), right: true },
    { header: 'object hit', cell: (x) => pct(x.r.objectHitRatio), right: true },
    { header: 'memory', cell: (x) => pct(x.r.memoryByteHitRatio), right: true },
    { header: 'disk hit', cell: (x) => pct(x.r.diskByteHitRatio), right: true },
    {
      header: '÷ LRU',
      cell: (x) => pct(x.r.byteHitRatio / (x.s.results.lru?.byteHitRatio ?? Number.NaN)),
      right: true,
    },
    {
      header: '÷ Belady',
      cell: (x) => pct(x.r.byteHitRatio / (x.s.results.belady?.byteHitRatio ?? Number.NaN)),
      right: true,
    },
    {
      header: '÷ clairvoyant',
      cell: (x) => pct(x.r.byteHitRatio / (x.s.results.clairvoyant?.byteHitRatio ?? Number.NaN)),
      right: true,
    },
    {
      header: '÷ clairvoyant(demand)',
      cell: (x) => pct(x.r.byteHitRatio / (x.s.results['clairvoyant(demand)']?.byteHitRatio ?? Number.NaN)),
      right: true,
    },
    { header: 'upstream GB', cell: (x) => fmt(x.r.upstream.bytes / 1e9), right: true },
    { header: 'prefill GB', cell: (x) => fmt(x.r.prefill.bytes / 1e9), right: true },
  ])
  const cheTable = markdownTable(doc.cheCheck, [
    { header: 'disk', cell: (c) => `${Math.round(c.share * 100)}%`, right: true },
    { header: 'LRU simulated (byte)', cell: (c) => pct(c.simulated), right: true },
    { header: 'Che (byte)', cell: (c) => pct(c.che), right: true },
    { header: 'LRU simulated (object)', cell: (c) => pct(c.simulatedObjects), right: true },
    { header: 'Che (object)', cell: (c) => pct(c.cheObjects), right: true },
  ])
  const cheTrace = markdownTable(sizes, [
    { header: 'disk', cell: (s) => `${Math.round(s.share * 100)}%`, right: true },
    { header: 'LRU on the trace (byte)', cell: (s) => pct(s.results.lru?.byteHitRatio), right: true },
    { header: 'Che, per-day rates (byte)', cell: (s) => pct(s.che.byteHitRatio), right: true },
  ])
  const tr = doc.trace
  const commands = doc.parts ?? [ownPart(doc)]
  const load = (l: number[] | undefined) =>
    l ? `, load ${l.map((x) => x.toFixed(1)).join(' ')} at the end` : ''
  return [
    '# Cache efficiency: hit ratios against the bounds',
    '',
    `On ${doc.machine.cpus} cores, ${doc.generatedAt.slice(0, 10)}; the runs whose rows are shown:`,
    '',
    ...commands.map(
      (c) =>
        `- \`${c.command}\`: ${c.wallSec === undefined ? '' : `${fmt(c.wallSec)} s wall, `}${fmt(c.cpuSec)} s CPU${load(c.loadavg)}`,
    ),
    '',
    `Trace: ${tr.requests.toLocaleString('en-US')} requests, ${tr.objects.toLocaleString('en-US')} objects, ${tr.days} days (day 0 is warm-up, not counted); catalogue ${fmt(tr.catalogueBytes / 1e9)} GB.` +
      (tr.ceiling === undefined
        ? ''
        : ` An infinite cache would reach a byte hit ratio of ${pct(tr.ceiling)} (only first requests miss).`),
    `Replay cost: ${fmt(doc.cost.microsecondsPerRequest)} µs (wall) per request per policy, nights included (${fmt(doc.cost.replaySec)} s for ${doc.cost.replayedRequests.toLocaleString('en-US')} replayed requests).`,
    '',
    table,
    '',
    '![byte hit ratio by policy and cache size](hit-ratio.svg)',
    '',
    '## LRU against the Che approximation',
    '',
    "Independent requests at each object's rate in the trace (Che's assumption):",
    '',
    cheTable,
    '',
    'On the trace itself (each day with its own rates; churn and sessions break the assumption):',
    '',
    cheTrace,
    '',
  ].join('\n')
}

export function writeRun(outDir: string, doc: RunDoc): void {
  writeResults(join(outDir, 'hit-ratio.json'), join(outDir, 'hit-ratio.md'), doc, markdown(doc))
  writeFileSync(
    join(outDir, 'hit-ratio.svg'),
    chartSvg(
      doc.sizes,
      `Byte hit ratio, ${fmt(doc.trace.requests / 1e6)}M requests, Zipf ${doc.workload.alpha ?? '?'}`,
    ),
  )
}
