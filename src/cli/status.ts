/**
 * `cdn status`: the fleet as steering sees it, for operators without a browser. One table of
 * the tier-1 edges (state, load, hit ratio, egress, titles held, when each last answered) and
 * one of the delivery tree above them (parents, origin), from steering's GET /edges. A node
 * that stopped answering keeps its last figures in steering's view: they are printed marked
 * stale, with their age, never as if live. `--json` prints the document as steering sent it.
 */
import type { CommandSpec } from '../config/options.js'
import { parseCommand } from '../config/options.js'
import { formatBytes } from '../config/units.js'
import { CdnError } from '../errors.js'
import type { CliCommand } from './command.js'
import { CA_OPTIONS, CliHttp } from './http-client.js'

const SPEC: CommandSpec = {
  name: 'cdn status',
  summary:
    'Show the fleet as steering sees it: edges, state, load, hit ratio, titles held; parents and origin.',
  usage: 'cdn status [--steering URL] [--ca FILE] [--json]',
  envPrefix: 'CDN_STATUS',
  options: {
    steering: {
      type: 'url',
      default: 'http://127.0.0.1:8080',
      env: 'CDN_STATUS_STEERING',
      envAliases: ['CDN_STEERING_URL'],
      arg: 'URL',
      help: "steering's base URL (the demo's by default)",
    },
    json: { type: 'boolean', default: false, help: "print steering's /edges document as JSON" },
    timeout: { type: 'duration', default: 5000, min: 100, help: 'how long to wait for steering' },
    ...CA_OPTIONS,
  },
}

interface NodeStatus {
  hitRatio?: number
  egressBytesPerSec?: number
  bytesServed?: number
  titles?: string[]
  titlesComplete?: string[]
  titleCount?: number
}

interface Node {
  id: string
  site?: string | null
  state: string
  why?: string | null
  lastOk: string | null
  status: NodeStatus | null
}

export interface FleetDoc {
  failStatic: boolean
  inRotation: number
  checkIntervalMs: number
  edges: (Node & { load: number; inRotation: boolean; overloaded: boolean })[]
  upstreams?: (Node & { role: string; serves: string[]; upstream: string | null })[]
}

/** Titles held, complete ones marked `*`, cut to a readable width. */
function titlesOf(s: NodeStatus | null, width = 36): string {
  const complete = new Set(s?.titlesComplete ?? [])
  const list = (s?.titles ?? []).map((t) => (complete.has(t) ? `${t}*` : t))
  if (!list.length) return s?.titleCount ? `${s.titleCount}` : '-'
  let out = ''
  for (const [i, t] of list.entries()) {
    const next = out ? `${out}, ${t}` : t
    const rest = list.length - i - 1
    if (next.length > width && out) return `${out} (+${list.length - i})`
    out = next
    if (rest === 0) return out
  }
  return out
}

function age(iso: string | null, now: number): string {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${Math.round(x * 100)}%`)

/** Figures of a node that is down, or silent for three rounds, are its last known ones. */
function stale(n: Node, intervalMs: number, now: number): boolean {
  if (n.state === 'down') return true
  return n.state !== 'unknown' && (!n.lastOk || now - Date.parse(n.lastOk) > 3 * intervalMs)
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** The two tables and a summary line, as printed. */
export function formatStatus(doc: FleetDoc, steering: string, now = Date.now()): string {
  const interval = doc.checkIntervalMs
  const edgeRows = doc.edges.map((e) => {
    const old = stale(e, interval, now)
    const s = e.status
    const state = e.state === 'up' && !e.inRotation ? (e.overloaded ? 'overloaded' : 'out') : e.state
    return [
      e.id,
      e.site ?? '-',
      state,
      `${Math.round(e.load * 100)}%`,
      pct(s?.hitRatio),
      s ? `${formatBytes(Math.round(s.egressBytesPerSec ?? 0))}/s` : '-',
      titlesOf(s),
      `${age(e.lastOk, now)}${old && s ? ' (stale figures)' : ''}`,
    ]
  })
  const out = [
    `steering ${steering}: ${doc.inRotation} of ${doc.edges.length} edges in rotation${doc.failStatic ? ', FAIL-STATIC (decisions use the last known-good view)' : ''}`,
    '',
    table(['EDGE', 'SITE', 'STATE', 'LOAD', 'HIT', 'EGRESS', 'TITLES (* complete)', 'LAST ANSWER'], edgeRows),
  ]
  const ups = doc.upstreams ?? []
  if (ups.length) {
    const rows = ups.map((n) => {
      const s = n.status
      const old = stale(n, interval, now)
      return [
        n.id,
        n.role === 'origin' ? 'origin' : 'parent',
        n.state,
        n.role === 'origin' ? '-' : pct(s?.hitRatio),
        s ? `${formatBytes(Math.round(s.egressBytesPerSec ?? 0))}/s` : '-',
        n.serves.length ? n.serves.join(',') : '-',
        `${age(n.lastOk, now)}${old && s ? ' (stale figures)' : ''}`,
      ]
    })
    out.push('', table(['UPSTREAM', 'ROLE', 'STATE', 'HIT', 'EGRESS', 'SERVES', 'LAST ANSWER'], rows))
  }
  const down = [...doc.edges, ...ups].filter((n) => n.state === 'down')
  for (const n of down) out.push('', `${n.id} is down: ${n.why ?? 'not answering'}`)
  return `${out.join('\n')}\n`
}

export const command: CliCommand = {
  spec: SPEC,
  async run(io) {
    const { config } = parseCommand<{ steering: string; json: boolean; timeout: number; ca: string[] }>(
      SPEC,
      io.argv,
      io.env,
    )
    const http = new CliHttp(config)
    let doc: FleetDoc
    try {
      doc = (await http.call('GET', `${config.steering}/edges`)).json as FleetDoc
    } finally {
      await http.close()
    }
    if (!Array.isArray(doc?.edges))
      throw new CdnError('CDN_ERR_UPSTREAM', `GET ${config.steering}/edges: not a fleet document`)
    io.stdout.write(config.json ? `${JSON.stringify(doc, null, 2)}\n` : formatStatus(doc, config.steering))
    return 0
  },
}
