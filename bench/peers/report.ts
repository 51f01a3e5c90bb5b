/** The peer benchmark's result files: bench/results/peers.json and peers.md. */
import { type Column, fmt, markdownTable } from '../lib/report.js'
import type { Sample } from '../lib/measure.js'
import { max, median } from '../lib/stats.js'
import type { Row } from './matrix.js'
import type { StampedeRow } from './phases.js'
import type { TlsPart } from './tls.js'

export interface PeersDoc {
  readonly benchmark: 'peers'
  readonly startedAt: string
  readonly mode: 'quick' | 'full' | 'custom'
  readonly machine: {
    readonly cpus: number
    readonly cpuModel: string
    readonly node: string
    readonly nginx: string
    readonly loadAverage1m: { readonly start: number; readonly end: number }
  }
  readonly settings: Record<string, unknown>
  readonly content: {
    readonly source: string
    readonly objects: Record<string, unknown>
    readonly notes: readonly string[]
  }
  readonly servers: Record<string, string>
  /** Cache verdict of the last warm-up response, per server and path. */
  readonly warm: Record<string, Record<string, string>>
  readonly rows: readonly Row[]
  readonly stampede: readonly StampedeRow[]
  readonly skipped: readonly string[]
  /** The TLS part (its rows are in `rows`, tier "tls"). */
  readonly tls?: TlsPart
}

const OBJECT_LABEL = { playlist: 'playlist', seg1m: 'segment', seg4m: 'segment' } as const

function objectLabel(r: Row): string {
  const b = r.objectBytes
  const size = b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} KB`
  return `${size} ${OBJECT_LABEL[r.object]}`
}

const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a')

const columns: Column<Row>[] = [
  { header: 'tier', cell: (r) => r.tier },
  { header: 'object', cell: objectLabel },
  { header: 'gen', cell: (r) => (r.rate ? `${r.generator} at ${r.rate} req/s` : r.generator) },
  { header: 'conns', cell: (r) => String(r.connections), right: true },
  { header: 'server', cell: (r) => r.server },
  { header: 'req/s', cell: (r) => fmt(r.summary.rps), right: true },
  { header: 'MB/s', cell: (r) => fmt(r.summary.mbps), right: true },
  { header: 'p50 ms', cell: (r) => fmt(r.summary.p50Ms), right: true },
  { header: 'p99 ms', cell: (r) => fmt(r.summary.p99Ms), right: true },
  { header: 'CPU µs/req', cell: (r) => fmt(r.summary.cpuUsPerReq), right: true },
  { header: 'req/s ÷ nginx', cell: (r) => (r.role === 'nginx' ? '1' : x(r.vsNginx.rps)), right: true },
  {
    header: 'CPU/req ÷ nginx',
    cell: (r) => (r.role === 'nginx' ? '1' : x(r.vsNginx.cpuUsPerReq)),
    right: true,
  },
  { header: 'CPU µs/req, server + generator', cell: (r) => fmt(r.summary.transferCpuUsPerReq), right: true },
  {
    header: 'server + generator ÷ nginx',
    cell: (r) => (r.role === 'nginx' ? '1' : x(r.vsNginx.transferCpuUsPerReq)),
    right: true,
  },
  {
    header: 'notes',
    cell: (r) =>
      [
        r.upstreamFetches ? `${r.upstreamFetches} upstream fetches during run` : '',
        r.summary.errors || r.summary.non2xx ? `${r.summary.errors} errors, ${r.summary.non2xx} non-2xx` : '',
        r.summary.foreignCpuShareMax > 0.1
          ? `other processes took up to ${Math.round(r.summary.foreignCpuShareMax * 100)}% of the CPUs`
          : '',
      ]
        .filter(Boolean)
        .join('; '),
  },
]

const stampedeColumns: Column<StampedeRow>[] = [
  { header: 'round', cell: (r) => String(r.round + 1), right: true },
  { header: 'server', cell: (r) => r.server },
  { header: 'upstream fetches', cell: (r) => String(r.upstreamFetches), right: true },
  { header: 'ok', cell: (r) => `${r.summary.ok}/${r.summary.clients}`, right: true },
  { header: 'TTFB p50 ms', cell: (r) => fmt(r.summary.ttfbP50Ms), right: true },
  { header: 'TTFB max ms', cell: (r) => fmt(r.summary.ttfbMaxMs), right: true },
  { header: 'first body byte p50 ms', cell: (r) => fmt(r.summary.firstBodyP50Ms), right: true },
  { header: 'done p50 ms', cell: (r) => fmt(r.summary.doneP50Ms), right: true },
  { header: 'done max ms', cell: (r) => fmt(r.summary.doneMaxMs), right: true },
]

const min = (v: readonly number[]) => (v.length ? Math.min(...v) : Number.NaN)

/** min / median / max of `f` over a row's rounds. */
export function spread(values: readonly number[], f: (n: number) => string = fmt): string {
  return `${f(min(values))} / ${f(median(values))} / ${f(max(values))}`
}

/** The TLS rows compare throughput (MB/s) for segments and request rates for the rest. */
const tlsMetric = (r: Row) => (r.object === 'playlist' ? 'rps' : 'mbps') as 'rps' | 'mbps'

/** Ours ÷ nginx round by round (the two ran next to each other in every round). */
export function roundRatios(
  ours: readonly Sample[],
  ref: readonly Sample[],
  f: (s: Sample) => number,
): number[] {
  return ours.flatMap((s, i) => (ref[i] ? [f(s) / f(ref[i])] : []))
}

const PROTOCOL_LABEL = {
  h1: 'HTTP/1.1',
  https1: 'HTTPS/1.1',
  h2: 'HTTP/2',
  handshake: 'full handshake + GET',
} as const

/** One line per TLS row: min / median / max over rounds, and the round-by-round ratios to nginx. */
/** The columns naming a row's cell and server. */
const CELL_COLUMNS: Column<Row>[] = [
  { header: 'object', cell: objectLabel },
  { header: 'gen', cell: (r) => r.generator },
  { header: 'conns', cell: (r) => String(r.connections), right: true },
  { header: 'server', cell: (r) => r.server },
]

/** The machine's 1-minute load average over a row's rounds. */
const LOAD_COLUMN: Column<Row> = {
  header: 'load avg (1 min)',
  cell: (r) =>
    spread(
      r.samples.map((s) => s.loadAverage1m),
      (n) => n.toFixed(1),
    ),
}

/**
 * Each of our rows against the nginx row of its cell, round by round (they ran next to each
 * other in every round): the spread of the ratios, with the machine's load over the rounds.
 */
export function spreadTable(rows: readonly Row[]): string {
  const refOf = (r: Row) =>
    rows.find(
      (n) =>
        n.role === 'nginx' &&
        n.tier === r.tier &&
        n.object === r.object &&
        n.generator === r.generator &&
        n.rate === r.rate &&
        n.connections === r.connections,
    )
  const ours = rows.filter((r) => r.role !== 'nginx' && refOf(r))
  const ratios = (r: Row, f: (s: Sample) => number) => spread(roundRatios(r.samples, refOf(r)!.samples, f), x)
  const cols: Column<Row>[] = [
    { header: 'tier', cell: (r) => r.tier },
    ...CELL_COLUMNS,
    { header: 'req/s ÷ nginx', cell: (r) => ratios(r, (s) => s.rps), right: true },
    { header: 'server CPU/req ÷ nginx', cell: (r) => ratios(r, (s) => s.cpuUsPerReq), right: true },
    {
      header: 'server + generator CPU/req ÷ nginx',
      cell: (r) => ratios(r, (s) => s.transferCpuUsPerReq),
      right: true,
    },
    LOAD_COLUMN,
  ]
  return markdownTable(ours, cols)
}

export function tlsTable(rows: readonly Row[]): string {
  const tls = rows.filter((r) => r.tier === 'tls')
  const refOf = (r: Row) =>
    tls.find(
      (n) =>
        n.role === 'nginx' &&
        n.protocol === r.protocol &&
        n.object === r.object &&
        n.generator === r.generator,
    )
  const x2 = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a')
  const cols: Column<Row>[] = [
    { header: 'protocol', cell: (r) => PROTOCOL_LABEL[r.protocol] },
    ...CELL_COLUMNS,
    { header: 'req/s min / med / max', cell: (r) => spread(r.samples.map((s) => s.rps)), right: true },
    { header: 'MB/s min / med / max', cell: (r) => spread(r.samples.map((s) => s.mbps)), right: true },
    {
      header: 'CPU µs/req min / med / max',
      cell: (r) => spread(r.samples.map((s) => s.cpuUsPerReq)),
      right: true,
    },
    {
      header: 'ours ÷ nginx (req/s or MB/s) min / med / max',
      cell: (r) => {
        const ref = refOf(r)
        if (r.role === 'nginx' || !ref) return ''
        const m = tlsMetric(r)
        return `${m === 'rps' ? 'req/s' : 'MB/s'} ${spread(
          roundRatios(r.samples, ref.samples, (s) => s[m]),
          x2,
        )}`
      },
      right: true,
    },
    {
      header: 'CPU/req ÷ nginx min / med / max',
      cell: (r) => {
        const ref = refOf(r)
        if (r.role === 'nginx' || !ref) return ''
        return spread(
          roundRatios(r.samples, ref.samples, (s) => s.cpuUsPerReq),
          x2,
        )
      },
      right: true,
    },
    LOAD_COLUMN,
    {
      header: 'notes',
      cell: (r) =>
        [
          r.upstreamFetches ? `${r.upstreamFetches} upstream fetches` : '',
          r.summary.errors || r.summary.non2xx
            ? `${r.summary.errors} errors, ${r.summary.non2xx} non-2xx`
            : '',
          r.samples.some((s) => s.resumed) ? 'sessions resumed' : '',
          r.summary.foreignCpuShareMax > 0.1
            ? `other processes took up to ${Math.round(r.summary.foreignCpuShareMax * 100)}% of the CPUs`
            : '',
        ]
          .filter(Boolean)
          .join('; '),
    },
  ]
  return markdownTable(tls, cols)
}

function tlsSection(doc: PeersDoc): string[] {
  if (!doc.tls) return []
  const neg = Object.entries(doc.tls.negotiated)
    .map(
      ([name, n]) =>
        `${name}: ${n.https1.protocol} ${n.https1.cipher} ${n.https1.keyExchange}, ALPN h2 → ${n.h2alpn}`,
    )
    .join('; ')
  const c = doc.tls.edgeCounts
  return [
    '## TLS: HTTPS/1.1 and HTTP/2, our edge (memory tier, `--tls-cert`) against nginx (`ssl http2`, `ssl_session_tickets on`)',
    '',
    'Same certificate (ECDSA P-256, local CA) and the same TLS 1.2 suites and TLS 1.3 defaults on both; ' +
      `negotiated with a node client: ${neg}. HTTPS/1.1 rows: wrk (keep-alive); HTTP/2 rows: h2load, one stream ` +
      'per connection (`-m1`); full handshakes: `bench/lib/handshakes.ts`, each request on a new connection that ' +
      'offers no session (wrk and h2load resume sessions when they reconnect). Every figure is min / median / max ' +
      'over the rounds; the ratios are ours ÷ nginx of the same round (run next to each other). The 1-minute load ' +
      'average is read at the end of each run: on a shared machine, CPU per request is the robust figure.',
    '',
    ...(c
      ? [
          `Our edge's own counters over these rows (warm-ups included): ${c.fullHandshakes} full and ` +
            `${c.resumedHandshakes} resumed handshakes, ${c.https1} HTTPS/1.1 and ${c.h2} HTTP/2 requests.`,
          '',
        ]
      : []),
    tlsTable(doc.rows),
    '',
  ]
}

export function peersMarkdown(doc: PeersDoc): string {
  const s = doc.settings
  const plain = doc.rows.filter((r) => r.tier !== 'tls')
  return [
    '# Peer benchmark: our edge against nginx proxy_cache',
    '',
    `Generated by \`npm run bench:peers${doc.mode === 'quick' ? ' -- --quick' : ''}\` at ${doc.startedAt} (${doc.mode} mode) ` +
      `on ${doc.machine.cpus} × ${doc.machine.cpuModel}, Node ${doc.machine.node}, ${doc.machine.nginx}. ` +
      'Every server and the load generator share the same cores on 127.0.0.1. ' +
      `1-minute load average ${doc.machine.loadAverage1m.start.toFixed(1)} at start, ${doc.machine.loadAverage1m.end.toFixed(1)} at the end ` +
      '(rows where other processes took over 10% of the CPUs say so in their notes).',
    '',
    `Each cell ran ${s.rounds} interleaved round(s) of ${s.durationS} s per server (order flipped every round); ` +
      'figures are medians over rounds. Before each run the runner waits (up to ' +
      `${Number(s.quietWaitMs) / 1000} s) for other processes to go under 15% of the CPUs, and retakes a run (up to ${s.noisyRetries} time(s)) ` +
      'when they took more than 20% during it, keeping the quietest attempt. Generators: **autocannon** (in the runner process) for the playlist, ' +
      `**wrk** (${s.threads} threads, Lua done hook for exact percentiles) for segments and the playlist cross-check. ` +
      "MB/s counts bytes received including headers (10^6 bytes). CPU µs/req is the server process tree's " +
      "utime+stime from /proc over the run divided by completed requests (the generator's CPU is not in it); " +
      "server + generator adds the load generator's CPU over the same run.",
    '',
    `Processes: our edge ran with \`--workers ${s.edgeWorkers ?? 1}\` (a primary plus that many worker processes serving clients), ` +
      `nginx with ${s.nginxWorkers ?? '?'} worker process(es). ` +
      'Tiers: `memory` = our edge with a memory tier large enough for every object; `disk` = our edge with a memory ' +
      'tier too small to hold them, so hits come from its disk tier. nginx has no memory tier: both tiers measure the ' +
      'same nginx (disk cache, served from the page cache with sendfile), re-measured interleaved with each edge. ' +
      'Baselines (at the highest connection count only): `node-http-mem` is a bare node:http server holding the bytes ' +
      'in memory; `node-http-stream` is node:http with `fs.createReadStream` per request; `nginx-static` (with ' +
      '`--nginx-static`) is the same nginx serving the files from a `root`, without proxy_cache.',
    '',
    `Content: ${doc.content.source}. ${doc.content.notes.join(' ')}`,
    '',
    ...(plain.length ? [markdownTable(plain, columns), ''] : ['(no cleartext rows in this run)', '']),
    ...(plain.some((r) => r.role !== 'nginx')
      ? [
          '## Ours ÷ nginx, round by round (min / median / max)',
          '',
          "Each round ran our server and nginx next to each other; a ratio is ours ÷ that round's nginx. " +
            "The server + generator column adds the load generator's CPU (wrk or autocannon) to the server's: " +
            'on loopback the kernel charges part of each transfer (delivery into the receiving socket, the ACKs ' +
            "that release more of the sender's queue) to whichever side's process is running, so how a server " +
            'sends moves cost between the two.',
          '',
          spreadTable(plain),
          '',
        ]
      : []),
    ...tlsSection(doc),
    ...(doc.stampede.length
      ? [
          `## Stampede: ${doc.stampede[0]!.summary.clients} clients at once on one cold ~1 MB segment, upstream answering after ${doc.stampede[0]!.upstreamDelayMs} ms`,
          '',
          'TTFB = response head received; each client on its own new connection; upstream fetches counted at the delaying upstream.',
          '',
          markdownTable(doc.stampede, stampedeColumns),
          '',
        ]
      : []),
    ...(doc.skipped.length ? ['## Skipped', '', ...doc.skipped.map((l) => `- ${l}`), ''] : []),
  ].join('\n')
}
