/**
 * The namespace lab for tests (src/cli/demo/netns.ts): started from the demo's topology with
 * the cached sample titles (no transcoding), always torn down (tap teardown, and a process exit
 * hook running scripts/netns.sh for a test process that dies first), plus a player: a bounded
 * loop that asks steering from a site's client namespace, reads the playlists and fetches
 * segments in order, failing over to steering's next answer when an edge stops answering.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as pause } from 'node:timers/promises'
import type { Test } from 'tap'
import { netnsUnavailable, type NetnsLab } from '../../src/cli/demo/netns.js'
import { netnsPrefix, startNetnsLab } from '../../src/cli/demo/netns-demo.js'
import { loadTopology } from '../../src/cli/demo/topology.js'
import { demoTitles, root, topologyFile } from '../e2e/demo-helpers.js'
import { metricSum } from './wait.js'

/** Why the drills cannot run here (not root, no `ip netns`, no build), or null. */
export async function labUnavailable(): Promise<string | null> {
  const why = await netnsUnavailable()
  if (why) return why
  if (!existsSync(join(root, 'dist/src/cli/demo/delay-relay.js'))) return 'run `npm run build` first'
  return null
}

export async function startLab(t: Test): Promise<NetnsLab> {
  const t0 = performance.now()
  const dataDir = mkdtempSync(join(tmpdir(), 'cdn-netns-'))
  const prefix = netnsPrefix()
  const cleanup = () => {
    try {
      execFileSync('bash', [join(root, 'scripts/netns.sh'), 'cleanup', prefix], { stdio: 'inherit' })
    } catch (err) {
      process.stderr.write(`netns cleanup of ${prefix} failed: ${(err as Error).message}\n`)
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
  // Whatever happens to this process, its namespaces go (teardown below when it ends normally):
  // on exit, and on the signals a runner's timeout sends (then the signal is raised again).
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'] as const
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup()
    for (const s of signals) process.removeListener(s, onSignal)
    process.kill(process.pid, sig)
  }
  process.once('exit', cleanup)
  for (const s of signals) process.once(s, onSignal)
  t.teardown(() => {
    process.removeListener('exit', cleanup)
    for (const s of signals) process.removeListener(s, onSignal)
  })
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  cpSync(join(await demoTitles(), 'titles'), join(dataDir, 'nodes', 'origin', 'store', 'titles'), {
    recursive: true,
  })
  t.comment(`sample titles copied (${Math.round(performance.now() - t0)} ms)`)
  const abort = new AbortController()
  const lab = await startNetnsLab({
    topo: loadTopology(topologyFile),
    dataDir,
    cliDir: join(root, 'dist/src/cli'),
    env: { ...process.env, CDN_LOG_LEVEL: 'warn' },
    graceMs: 2000,
    startTimeoutMs: 120_000,
    signal: abort.signal,
    note: (line) => t.comment(line),
    prefix,
  })
  t.teardown(() => lab.destroy())
  return lab
}

export interface SteerEdge {
  id: string
  url: string
  site: string
}

/** Steering's ranked answer for `title`, asked from a site's client namespace. */
export async function steer(lab: NetnsLab, site: string, title: string): Promise<SteerEdge[]> {
  const url = `${lab.plan.demo.steering.httpUrl}/steer?title=${title}`
  let res: Response
  try {
    res = await lab.fetchFrom(site, url)
  } catch {
    // A connection of the site's gateway reset while a drill rewires the network (seen once in
    // CI, right after a site's link was cut): asked again once, as a player would.
    res = await lab.fetchFrom(site, url)
  }
  if (!res.ok) return []
  return ((await res.json()) as { edges: SteerEdge[] }).edges
}

interface SteeringEdgeView {
  id: string
  inRotation: boolean
  why: string | null
  queueDelayMs: number | null
  state: string
}

/** Steering's view of one edge (GET /edges). */
export async function steeringEdge(lab: NetnsLab, id: string): Promise<SteeringEdgeView> {
  const site = lab.plan.nodes.find((n) => n.role === 'steering')!.site
  const res = await lab.fetchFrom(site, `${lab.plan.demo.steering.httpUrl}/edges`)
  const body = (await res.json()) as { edges: SteeringEdgeView[] }
  return body.edges.find((e) => e.id === id)!
}

/** One metric of a node, read from a site's client namespace. */
export async function nodeMetric(
  lab: NetnsLab,
  node: string,
  name: string,
  labels?: Record<string, string>,
): Promise<number> {
  const n = lab.plan.nodes.find((x) => x.id === node)!
  const res = await lab.fetchFrom(n.site, `${n.plan.httpUrl}/metrics`)
  return metricSum(await res.text(), name, labels)
}

const uris = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

export interface Played {
  readonly edge: string
  readonly index: number
  readonly bytes: number
}

/**
 * A player in `site`: asks steering, then fetches segment after segment (wrapping around at the
 * end) from the first edge; a failed or stalled request (the player's timeout, 8 s by default) asks
 * steering again and goes on with the same segment from its first answer that is not the edge
 * that failed. Every segment is fetched; none is skipped. Bounded by `max` requests.
 */
export class Player {
  readonly played: Played[] = []
  readonly failures: { edge: string; index: number; why: string }[] = []
  private stopped = false
  readonly done: Promise<void>

  constructor(
    private readonly lab: NetnsLab,
    private readonly site: string,
    private readonly title: string,
    /** A real player's timeout for one request (hls.js waits longer; these segments are small). */
    private readonly timeoutMs = 8000,
    max = 2000,
  ) {
    this.done = this.run(max)
  }

  stop(): Promise<void> {
    this.stopped = true
    return this.done
  }

  /** Segments played from edges matching `which`, from position `from` of `played` on. */
  count(which: (edge: string) => boolean, from = 0): number {
    return this.played.slice(from).filter((p) => which(p.edge)).length
  }

  private async get(url: string): Promise<Response> {
    const res = await this.lab.fetchFrom(this.site, url, { signal: AbortSignal.timeout(this.timeoutMs) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    return res
  }

  /** The media playlist's segment URLs on `edge`, through its master's first variant. */
  private async segments(edge: SteerEdge): Promise<string[]> {
    const master = await (await this.get(edge.url)).text()
    const mediaUrl = new URL(uris(master)[0]!, edge.url).href
    const media = await (await this.get(mediaUrl)).text()
    return uris(media).map((u) => new URL(u, mediaUrl).href)
  }

  private async run(max: number): Promise<void> {
    let edges = await steer(this.lab, this.site, this.title)
    let edge = edges[0]
    let list: string[] | null = null
    let index = 0
    for (let n = 0; n < max && !this.stopped; n++) {
      try {
        if (!edge) throw new Error('steering named no edge')
        list ??= await this.segments(edge)
        const body = await (await this.get(list[index % list.length]!)).arrayBuffer()
        this.played.push({ edge: edge.id, index, bytes: body.byteLength })
        index++
      } catch (err) {
        const failed = edge?.id ?? ''
        this.failures.push({ edge: failed, index, why: (err as Error).message })
        // A player backs off before it asks again (not a test's wait: the loop's own pace).
        await pause(250)
        edges = await steer(this.lab, this.site, this.title).catch(() => [])
        edge = edges.find((e) => e.id !== failed) ?? edges[0]
        list = null
      }
    }
  }
}
