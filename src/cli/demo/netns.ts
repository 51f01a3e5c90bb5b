/**
 * The network-namespace lab: builds what netns-plan.ts describes on this machine (Linux, as
 * root: `ip netns`, veth pairs, a bridge, tbf), runs the delaying relay in the hub namespace,
 * a gateway in each site's client namespace and every node in its own namespace, and takes it
 * all down again. Drills act on it while it runs: cut a site's link, partition two nodes, slow
 * an edge's uplink. Used by `cdn demo --netns` and by the namespace drills (test/netns/).
 *
 * Teardown kills whatever still runs in our namespaces (`ip netns pids`: only processes we
 * started live there) and deletes them; `scripts/netns.sh cleanup PREFIX` does the same from a
 * shell, for a run that died before it could.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { Agent, fetch as undiciFetch } from 'undici'
import { CdnError } from '../../errors.js'
import type { NetnsPlan } from './netns-plan.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'

const run = promisify(execFile)

/** tbf's queue on an edge uplink: how long a packet may wait before it is dropped (a bloated uplink). */
const TBF_LATENCY = '400ms'

/** Why the lab cannot run here, or null when it can (root, `ip netns`, veth and tbf). */
export async function netnsUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  try {
    await run('ip', ['netns', 'list'])
    await run('tc', ['-V'])
  } catch (err) {
    return `ip netns / tc unavailable: ${(err as Error).message.split('\n')[0]}`
  }
  return null
}

/** Runs `ip -batch -` (in namespace `ns` when given) with one command a line. */
async function ipBatch(ns: string | null, lines: readonly string[]): Promise<void> {
  const args = [...(ns ? ['-n', ns] : []), '-batch', '-']
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ip', args, { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (b: Buffer) => (err += b.toString()))
    p.once('error', reject)
    p.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new CdnError('CDN_ERR_INTERNAL', `ip ${args.join(' ')}: ${err.trim() || `exit ${code}`}`)),
    )
    p.stdin.end(lines.join('\n') + '\n')
  })
}

/** tbf arguments for a rate in bytes per second: a burst of 20 ms (at least 32 KiB). */
function tbfArgs(bytesPerSec: number): string[] {
  const burst = Math.max(32 * 1024, Math.round(bytesPerSec / 50))
  return ['rate', `${Math.round(bytesPerSec * 8)}bit`, 'burst', String(burst), 'latency', TBF_LATENCY]
}

/** A helper process (relay, gateway) started in a namespace; `ready` resolves on its first line. */
interface Helper {
  readonly child: ChildProcess
  readonly lines: AsyncIterator<string>
}

export interface NetnsLabOptions extends Omit<SupervisorOptions, 'fetch' | 'namespace'> {
  readonly plan: NetnsPlan
  /** Where the relay's config and the gateways' sockets go. */
  readonly dir: string
  /** The compiled delay-relay.js and netns-gateway.js. */
  readonly relayPath: string
  readonly gatewayPath: string
}

export class NetnsLab {
  readonly plan: NetnsPlan
  readonly supervisor: Supervisor
  private relay: Helper | undefined
  private relayCommands = 0
  private readonly gateways: Helper[] = []
  private readonly agents = new Map<string, Agent>()
  private created = false

  constructor(private readonly opts: NetnsLabOptions) {
    this.plan = opts.plan
    const steeringSite = opts.plan.nodes.find((n) => n.role === 'steering')!.site
    this.supervisor = new Supervisor({
      ...opts,
      namespace: (id) => opts.plan.nodes.find((n) => n.id === id)?.ns,
      fetch: (url, init) => this.fetchFrom(steeringSite, url, init),
    })
  }

  /** The Unix socket of a site's gateway (see netns-gateway.ts). */
  gatewaySocket(site: string): string {
    return join(this.opts.dir, `${site}.sock`)
  }

  /** fetch from inside a site's client namespace, through its gateway. */
  fetchFrom(
    site: string,
    url: string,
    init: { signal?: AbortSignal; headers?: Record<string, string> } = {},
  ) {
    let agent = this.agents.get(site)
    if (!agent) {
      agent = new Agent({ connect: { socketPath: this.gatewaySocket(site) } })
      this.agents.set(site, agent)
    }
    return undiciFetch(url, { ...init, dispatcher: agent }) as unknown as Promise<Response>
  }

  /** Namespaces, veths on the hub's bridge, addresses, tbf on edge uplinks. */
  async create(): Promise<void> {
    const { plan } = this
    const spaces = [plan.hub, ...plan.nodes.map((n) => n.ns), ...plan.sites.map((s) => s.clientNs)]
    this.created = true
    await ipBatch(
      null,
      spaces.map((ns) => `netns add ${ns}`),
    )
    const links = [
      ...plan.nodes.map((n) => ({ hub: n.hubLink, ns: n.ns, address: n.address })),
      ...plan.sites.map((s) => ({ hub: s.clientHubLink, ns: s.clientNs, address: s.clientAddress })),
    ]
    await ipBatch(plan.hub, [
      'link set lo up',
      'link add br0 type bridge',
      ...links.flatMap((l) => [
        `link add ${l.hub} type veth peer name eth0 netns ${l.ns}`,
        `link set ${l.hub} master br0`,
        `link set ${l.hub} up`,
      ]),
      'link set br0 up',
      ...plan.sites.map((s) => `addr add ${s.hubAddress}/16 dev br0`),
      ...plan.nodes.map((n) => `addr add ${n.relayAddress}/16 dev br0`),
    ])
    for (const l of links)
      await ipBatch(l.ns, ['link set lo up', 'link set eth0 up', `addr add ${l.address}/16 dev eth0`])
    for (const n of plan.nodes)
      if (n.role === 'edge' && n.uplinkBytesPerSec !== undefined)
        await run('tc', [
          '-n',
          n.ns,
          'qdisc',
          'add',
          'dev',
          'eth0',
          'root',
          'tbf',
          ...tbfArgs(n.uplinkBytesPerSec),
        ])
  }

  private async helper(ns: string, script: string, arg: string): Promise<Helper> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, arg], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    const first = await lines.next()
    if (first.done || first.value !== 'ready')
      throw new CdnError('CDN_ERR_INTERNAL', `netns: ${script} did not start in ${ns}`)
    return { child, lines }
  }

  /** The relay in the hub, a gateway in each client namespace. */
  async startHelpers(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true })
    const config = join(this.opts.dir, 'relay.json')
    writeFileSync(config, `${JSON.stringify(this.plan.relay, null, 2)}\n`)
    this.relay = await this.helper(this.plan.hub, this.opts.relayPath, config)
    for (const s of this.plan.sites)
      this.gateways.push(await this.helper(s.clientNs, this.opts.gatewayPath, this.gatewaySocket(s.id)))
  }

  private node(id: string) {
    const n = this.plan.nodes.find((x) => x.id === id)
    if (!n) throw new CdnError('CDN_ERR_CONFIG', `netns: no node "${id}"`)
    return n
  }

  /** Takes every edge of a site off the network (down: true) or puts it back. */
  async cutSite(site: string, down = true): Promise<void> {
    const edges = this.plan.nodes.filter((n) => n.site === site && n.role === 'edge')
    await ipBatch(
      this.plan.hub,
      edges.map((n) => `link set ${n.hubLink} ${down ? 'down' : 'up'}`),
    )
  }

  /** Connections from node `from` to node `to` are reset and refused (on: true), or allowed again. */
  async partition(from: string, to: string, on = true): Promise<void> {
    const relay = this.relay
    if (!relay) throw new CdnError('CDN_ERR_INTERNAL', 'netns: the relay is not running')
    this.node(to)
    const cmd = { op: on ? 'block' : 'unblock', from: this.node(from).address, to }
    relay.child.stdin!.write(`${JSON.stringify(cmd)}\n`)
    const want = `ok ${++this.relayCommands}`
    for (;;) {
      const line = await relay.lines.next()
      if (line.done) throw new CdnError('CDN_ERR_INTERNAL', 'netns: the relay exited')
      if (line.value === want) return
    }
  }

  /** Sets an edge's uplink cap (tbf) to `bytesPerSec`. */
  async setUplink(edge: string, bytesPerSec: number): Promise<void> {
    const n = this.node(edge)
    await run('tc', ['-n', n.ns, 'qdisc', 'change', 'dev', 'eth0', 'root', 'tbf', ...tbfArgs(bytesPerSec)])
  }

  /** Stops every node and helper, kills whatever is left in our namespaces, deletes them. */
  async destroy(): Promise<void> {
    await this.supervisor.stopAll()
    for (const a of this.agents.values()) await a.close().catch(() => undefined)
    this.agents.clear()
    for (const h of [...this.gateways, ...(this.relay ? [this.relay] : [])]) h.child.stdin?.end()
    if (this.created) await cleanupNamespaces(this.plan.prefix)
    this.created = false
  }
}

/** Kills every process in the namespaces named PREFIX-* and deletes them (the run's own only). */
export async function cleanupNamespaces(prefix: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list'])
  const ours = stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((ns) => ns.startsWith(`${prefix}-`))
  for (const ns of ours) {
    const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }))).stdout
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }
  if (ours.length)
    await ipBatch(
      null,
      ours.map((ns) => `netns del ${ns}`),
    )
}
