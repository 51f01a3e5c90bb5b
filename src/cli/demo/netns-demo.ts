/**
 * `cdn demo --netns`: the topology on one machine with real distance between its sites. Builds
 * the lab (netns.ts) from the plan (netns-plan.ts), starts every node in its namespace, waits for the origin's sample titles,
 * measures the round trips players in each site see to every edge, and prints what it built.
 * The namespace drills (test/netns/) start the same lab through `startNetnsLab`.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseZones } from '../../../steering/geo.js'
import { parseFleet } from '../../../steering/registry.js'
import { titlesIn } from './catalogue.js'
import { NetnsLab } from './netns.js'
import { buildNetnsPlan, type NetnsOptions } from './netns-plan.js'
import { localPaths } from './plan.js'
import type { Topology } from './topology.js'

export interface StartNetnsOptions {
  readonly topo: Topology
  readonly dataDir: string
  /** dist/src/cli of the built package (the nodes, relay and gateways run compiled code). */
  readonly cliDir: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly graceMs: number
  readonly startTimeoutMs: number
  readonly signal: AbortSignal
  readonly note: (line: string) => void
  readonly prefix?: string
  readonly plan?: Omit<NetnsOptions, 'prefix' | 'paths'>
}

/** A fresh namespace prefix: `cdn` and six hex digits. */
export function netnsPrefix(): string {
  return `cdn${randomBytes(3).toString('hex')}`
}

/**
 * Builds the lab and starts every node; resolves once the origin lists every sample title. On
 * failure the lab is torn down before the error is thrown.
 */
export async function startNetnsLab(opts: StartNetnsOptions): Promise<NetnsLab> {
  const prefix = opts.prefix ?? netnsPrefix()
  const paths = localPaths(opts.dataDir)
  const t0 = performance.now()
  const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`
  const plan = buildNetnsPlan(opts.topo, { ...opts.plan, prefix, paths })
  const demo = plan.demo
  parseFleet(demo.fleet, 'derived fleet')
  parseZones(demo.zones, 'derived zones')
  for (const n of demo.nodes) mkdirSync(paths.nodeDir(n.id), { recursive: true })
  mkdirSync(join(paths.nodeDir(demo.origin.id), 'ingest'), { recursive: true })
  mkdirSync(paths.configDir, { recursive: true })
  writeFileSync(join(paths.configDir, 'fleet.json'), `${JSON.stringify(demo.fleet, null, 2)}\n`)
  writeFileSync(join(paths.configDir, 'zones.json'), `${JSON.stringify(demo.zones, null, 2)}\n`)
  const logDir = join(opts.dataDir, 'logs')
  mkdirSync(logDir, { recursive: true })

  const lab = new NetnsLab({
    plan,
    dir: join(opts.dataDir, `netns-${prefix}`),
    relayPath: join(opts.cliDir, 'demo/delay-relay.js'),
    gatewayPath: join(opts.cliDir, 'demo/netns-gateway.js'),
    cliPath: join(opts.cliDir, 'main.js'),
    watchPath: join(opts.cliDir, 'demo/parent-watch.js'),
    logDir,
    env: opts.env,
    graceMs: opts.graceMs,
  })
  try {
    await lab.create()
    await lab.startHelpers()
    opts.note(
      `${plan.nodes.length + plan.sites.length + 1} namespaces up in ${since()}; starting ${plan.nodes.length} nodes`,
    )
    const sup = lab.supervisor
    // Every node at once (none needs another to start: edges find their upstreams on the first
    // miss, steering polls the edges), which halves the start on a two-core machine.
    for (const node of demo.nodes) sup.start(node)
    await Promise.all(
      demo.nodes.map((node) =>
        sup.waitFor(node, `${node.httpUrl}/healthz`, {
          timeoutMs: 60_000,
          signal: opts.signal,
          what: 'GET /healthz',
        }),
      ),
    )
    const want = demo.sampleTitles
    opts.note(
      `every node answers (${since()}); waiting for the sample titles ${want.join(', ')} on the origin`,
    )
    await sup.waitFor(demo.origin, `${demo.origin.httpUrl}/titles`, {
      timeoutMs: opts.startTimeoutMs,
      signal: opts.signal,
      what: `sample titles ${want.join(', ')} in GET /titles`,
      accept: (body) => want.every((t) => titlesIn(body).includes(t)),
    })
    opts.note(`ready in ${since()}`)
    return lab
  } catch (err) {
    await lab.destroy()
    throw err
  }
}

export interface RoundTrip {
  readonly from: string
  readonly to: string
  /** The smallest of the samples, in ms. */
  readonly minMs: number
  readonly medianMs: number
}

/**
 * Round trips of `GET /healthz` on a kept-alive connection from each site's client namespace
 * to every tier-1 edge (`samples` each, one after another).
 */
export async function measureRoundTrips(lab: NetnsLab, samples = 5): Promise<RoundTrip[]> {
  const out: RoundTrip[] = []
  const edges = lab.plan.demo.nodes.filter((n) => n.role === 'edge' && n.tier === 1)
  for (const site of lab.plan.sites)
    for (const edge of edges) {
      const times: number[] = []
      for (let i = 0; i < samples + 1; i++) {
        const t0 = performance.now()
        const res = await lab.fetchFrom(site.id, `${edge.httpUrl}/healthz`)
        await res.arrayBuffer()
        // The first opens the connection; the rest are round trips on it.
        if (i > 0) times.push(performance.now() - t0)
      }
      times.sort((a, b) => a - b)
      out.push({
        from: site.id,
        to: edge.id,
        minMs: round(times[0]!),
        medianMs: round(times[Math.floor(times.length / 2)]!),
      })
    }
  return out
}

const round = (ms: number) => Math.round(ms * 10) / 10

/** What was built: namespaces, addresses, link delays and caps, measured round trips. */
export function describeNetns(lab: NetnsLab, trips: readonly RoundTrip[]): string {
  const { plan } = lab
  const lines = [`Namespaces (prefix ${plan.prefix}; hub ${plan.hub} with bridge br0, relay in the hub):`]
  for (const n of plan.nodes) {
    const cap = n.uplinkBytesPerSec
      ? `  uplink tbf ${Math.round((n.uplinkBytesPerSec * 8) / 1e6)} Mbit/s`
      : ''
    lines.push(
      `  ${n.role.padEnd(8)} ${n.id.padEnd(12)} ${n.ns.padEnd(22)} ${n.address.padEnd(12)} at ${n.site.padEnd(10)} reached at ${n.plan.httpUrl}${cap}`,
    )
  }
  for (const s of plan.sites)
    lines.push(
      `  client   ${s.id.padEnd(12)} ${s.clientNs.padEnd(22)} ${s.clientAddress.padEnd(12)} gateway ${lab.gatewaySocket(s.id)}`,
    )
  lines.push('', 'One-way delay between sites (ms, from great-circle distance; plus up to 1 ms jitter):')
  for (const a of plan.sites)
    lines.push(
      `  ${a.id.padEnd(10)} ${plan.sites.map((b) => `${b.id} ${plan.delayMs[`${a.id}|${b.id}`]}`).join(', ')}`,
    )
  lines.push('', 'Measured round trips, player in each site to each edge (GET /healthz, min / median ms):')
  for (const t of trips) lines.push(`  ${t.from.padEnd(10)} -> ${t.to.padEnd(10)} ${t.minMs} / ${t.medianMs}`)
  const site = plan.sites[0]!
  const title = plan.demo.sampleTitles[0]
  lines.push(
    '',
    `Ask steering from ${site.id}: curl --unix-socket ${lab.gatewaySocket(site.id)} '${plan.demo.steering.httpUrl}/steer?title=${title}'`,
    `Tear down a run that died: scripts/netns.sh cleanup ${plan.prefix}`,
  )
  return `${lines.join('\n')}\n`
}

/** Runs the demo in netns mode until `stop` resolves. */
export async function runNetnsDemo(
  opts: StartNetnsOptions & { readonly stop: Promise<unknown>; readonly out: NodeJS.WritableStream },
): Promise<number> {
  const lab = await startNetnsLab(opts)
  try {
    opts.out.write(describeNetns(lab, await measureRoundTrips(lab)))
    opts.out.write('\nOpen CDN is running in network namespaces. Stop: Ctrl-C\n')
    await opts.stop
  } finally {
    opts.note('stopping every node and deleting the namespaces...')
    await lab.destroy()
  }
  return 0
}
