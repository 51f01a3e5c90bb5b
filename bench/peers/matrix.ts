/**
 * The measured part of the peer benchmark: which object, which generator, how many connections,
 * against which servers, and the check that every measured request was a cache hit (the
 * upstream's request count must not move during a run).
 */
import { waitForQuiet } from '../lib/cpu.js'
import type { Generator } from '../lib/load.js'
import { measure, type Sample, type Summary, summarise } from '../lib/measure.js'
import { ratio } from '../lib/report.js'
import { interleave } from '../lib/rounds.js'
import type { BenchObject, Content } from './content.js'
import type { Server } from './servers.js'

/** `tls`: the memory tier over HTTPS/1.1 and HTTP/2 (our edge with --tls-cert, nginx's ssl server). */
export type Tier = 'memory' | 'disk' | 'tls'
/** How the TLS rows' requests travel; `handshake`: HTTPS/1.1, a new connection for every request. */
export type Protocol = 'h1' | 'https1' | 'h2' | 'handshake'
export type ObjectId = 'playlist' | 'seg1m' | 'seg4m'
export type Role = 'ours' | 'nginx' | 'baseline'

export interface Variant {
  readonly role: Role
  readonly server: Server
}

export interface Cell {
  readonly tier: Tier
  readonly object: ObjectId
  readonly generator: Generator
  readonly connections: number
  readonly withBaseline: boolean
  readonly protocol: Protocol
  /** Offered requests per second (h2load over HTTP/1.1); absent: as fast as the server answers. */
  readonly rate?: number
}

export interface Row {
  readonly tier: Tier
  readonly object: ObjectId
  readonly objectBytes: number
  readonly path: string
  readonly generator: Generator
  readonly connections: number
  readonly protocol: Protocol
  /** The cell's fixed offered rate, req/s (absent: closed loop, as fast as answered). */
  readonly rate?: number
  readonly role: Role
  readonly server: string
  readonly summary: Summary
  /** rps and MB/s of this row over nginx's in the same cell; CPU per request likewise. */
  readonly vsNginx: {
    readonly rps: number
    readonly mbps: number
    readonly cpuUsPerReq: number
    readonly transferCpuUsPerReq: number
  }
  /** Requests that reached the upstream while this row was measured (0 = all hits). */
  readonly upstreamFetches: number
  readonly samples: readonly Sample[]
}

export interface MatrixOptions {
  readonly rounds: number
  readonly durationS: number
  readonly connections: readonly number[]
  /** Also measure the playlist with wrk, the generator the first nginx reference figures were taken with. */
  readonly playlistWithWrk: boolean
  readonly threads: number
  /** Longest wait for a quiet machine before each run (0: do not wait). */
  readonly quietWaitMs: number
  /** Which objects to measure. */
  readonly objects: readonly ObjectId[]
  /** Retakes of a run during which other processes took more than NOISY_SHARE of the CPUs. */
  readonly noisyRetries: number
  /**
   * An unmeasured run per server before each cell, in seconds (0: none): the edge's hit path
   * is compiled by V8 under load, and a worker process warmed by a few requests is not.
   */
  readonly warmupS: number
  /** Concurrent new-connection loops of the handshake row. */
  readonly handshakeConnections: number
  /**
   * Also measure the segments at this fixed offered rate (req/s, at the highest connection
   * count): every server then moves the same bytes per second, so CPU per request compares
   * like with like. Closed-loop rows compare servers at different throughputs, and on loopback
   * the kernel charges a transfer's network work to whichever side is running, which shifts
   * with throughput (docs/bench.md, "At a fixed rate").
   */
  readonly rate?: number
}

/** Share of the CPUs other processes may take during a run before it is retaken. */
export const NOISY_SHARE = 0.2

export function cellsFor(tier: Tier, o: MatrixOptions): Cell[] {
  if (tier === 'tls') return tlsCells(o)
  const top = Math.max(...o.connections)
  const cells: Cell[] = []
  const protocol = 'h1'
  for (const connections of o.connections) {
    const withBaseline = connections === top
    cells.push({ tier, object: 'playlist', generator: 'autocannon', connections, withBaseline, protocol })
    if (o.playlistWithWrk && connections === top)
      cells.push({ tier, object: 'playlist', generator: 'wrk', connections, withBaseline, protocol })
    cells.push({ tier, object: 'seg1m', generator: 'wrk', connections, withBaseline, protocol })
    cells.push({ tier, object: 'seg4m', generator: 'wrk', connections, withBaseline, protocol })
  }
  if (o.rate)
    for (const object of ['seg1m', 'seg4m'] as const)
      cells.push({
        tier,
        object,
        generator: 'h2load',
        connections: top,
        withBaseline: true,
        protocol,
        rate: o.rate,
      })
  return cells.filter((c) => o.objects.includes(c.object))
}

/**
 * The TLS rows, at the highest connection count: the playlist and the ~1 MB segment over
 * HTTPS/1.1 (wrk, keep-alive) and HTTP/2 (h2load, one stream per connection), then full
 * handshakes (the playlist on a new connection per request, no session offered) with
 * `handshakeConnections` loops. The 4 MB object is left out: the issue asks for playlists and
 * 1 MB segments.
 */
export function tlsCells(o: MatrixOptions): Cell[] {
  const connections = Math.max(...o.connections)
  const base = { tier: 'tls' as const, connections, withBaseline: false }
  const cells: Cell[] = []
  for (const object of ['playlist', 'seg1m'] as const) {
    if (!o.objects.includes(object)) continue
    cells.push({ ...base, object, generator: 'wrk', protocol: 'https1' })
    cells.push({ ...base, object, generator: 'h2load', protocol: 'h2' })
  }
  if (o.objects.includes('playlist'))
    cells.push({
      ...base,
      object: 'playlist',
      generator: 'handshakes',
      protocol: 'handshake',
      connections: o.handshakeConnections,
    })
  return cells
}

export function objectOf(content: Content, id: ObjectId): BenchObject {
  return content[id]
}

async function upstreamCount(upstream: Server): Promise<number> {
  const res = await fetch(`${upstream.base}/__bench/stats`)
  return ((await res.json()) as { requests: number }).requests
}

export async function runCell(
  cell: Cell,
  variants: readonly Variant[],
  content: Content,
  upstream: Server,
  o: MatrixOptions,
  log: (line: string) => void,
): Promise<Row[]> {
  const obj = objectOf(content, cell.object)
  const active = variants.filter((v) => v.role !== 'baseline' || cell.withBaseline)
  const fetches = new Map<string, number>()
  if (o.warmupS > 0)
    for (const v of active)
      await measure(cell.generator, [v.server.child.pid], {
        url: `${v.server.base}${obj.path}`,
        connections: cell.connections,
        durationS: o.warmupS,
        threads: o.threads,
        rate: cell.rate,
      })
  const byName = await interleave(
    active.map((v) => v.server.name),
    o.rounds,
    async (name) => {
      const v = active.find((x) => x.server.name === name)!
      // A run during someone else's burst is retaken (bounded); the quietest attempt is kept.
      let best: Sample | undefined
      for (let attempt = 0; attempt <= o.noisyRetries; attempt++) {
        if (o.quietWaitMs > 0) await waitForQuiet(0.15, o.quietWaitMs)
        const before = await upstreamCount(upstream)
        const s = await measure(cell.generator, [v.server.child.pid], {
          url: `${v.server.base}${obj.path}`,
          connections: cell.connections,
          durationS: o.durationS,
          threads: o.threads,
          rate: cell.rate,
        })
        fetches.set(name, (fetches.get(name) ?? 0) + (await upstreamCount(upstream)) - before)
        log(
          `  ${cell.tier} ${cell.protocol} ${cell.object} ${cell.generator}${cell.rate ? `@${cell.rate}/s` : ''} c=${cell.connections} ${name}: ` +
            `${Math.round(s.rps)} req/s ${s.mbps.toFixed(0)} MB/s p50 ${s.p50Ms.toFixed(2)} ms ` +
            `cpu ${s.cpuUsPerReq.toFixed(1)} us/req other ${Math.round(s.foreignCpuShare * 100)}% ` +
            `load ${s.loadAverage1m.toFixed(1)}` +
            (s.resumed ? ` RESUMED ${s.resumed}` : '') +
            (s.errors || s.non2xx
              ? ` ERRORS ${s.errors}/${s.non2xx} ${JSON.stringify(s.errorKinds ?? {})}`
              : ''),
        )
        if (!best || s.foreignCpuShare < best.foreignCpuShare) best = s
        if (s.foreignCpuShare <= NOISY_SHARE) break
      }
      return best!
    },
  )
  const summaries = new Map([...byName].map(([name, samples]) => [name, summarise(samples)]))
  const nginx = active.find((v) => v.role === 'nginx')
  const ref = nginx ? summaries.get(nginx.server.name) : undefined
  return active.map((v) => {
    const summary = summaries.get(v.server.name)!
    return {
      tier: cell.tier,
      object: cell.object,
      objectBytes: obj.bytes,
      path: obj.path,
      generator: cell.generator,
      connections: cell.connections,
      protocol: cell.protocol,
      ...(cell.rate ? { rate: cell.rate } : {}),
      role: v.role,
      server: v.server.name,
      summary,
      vsNginx: {
        rps: ratio(summary.rps, ref?.rps),
        mbps: ratio(summary.mbps, ref?.mbps),
        cpuUsPerReq: ratio(summary.cpuUsPerReq, ref?.cpuUsPerReq),
        transferCpuUsPerReq: ratio(summary.transferCpuUsPerReq, ref?.transferCpuUsPerReq),
      },
      upstreamFetches: fetches.get(v.server.name) ?? 0,
      samples: byName.get(v.server.name)!,
    }
  })
}
