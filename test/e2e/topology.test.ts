/**
 * The demo's topology file and what is derived from it: validation that names every problem,
 * the plan (ports, flags, upstream order), steering's fleet/zones files, and the committed
 * compose.yaml staying in step with the default topology. Pure: no process is started.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { composePlan, composeYaml } from '../../src/cli/demo/compose.js'
import { buildPlan, localPaths, TLS_PORT_OFFSET } from '../../src/cli/demo/plan.js'
import { loadTopology, parseTopology } from '../../src/cli/demo/topology.js'
import type { CdnError } from '../../src/errors.js'
import { parseZones } from '../../steering/geo.js'
import { parseFleet } from '../../steering/registry.js'
import { root, topologyFile } from './demo-helpers.js'

const doc = () => JSON.parse(readFileSync(topologyFile, 'utf8')) as Record<string, unknown>

t.test('the default topology is valid and makes the CDN the demo promises', async (t) => {
  const topo = loadTopology(topologyFile)
  t.ok(topo.samples.length >= 2 && topo.samples.length <= 3, 'two or three sample titles')
  t.ok(
    topo.samples.some((s) => s.seconds >= 30),
    'one sample of at least 30 s',
  )
  t.ok(
    topo.edges.some((e) => e.tier === 2),
    'a tier-2 parent edge',
  )
  const sites = new Set(topo.edges.filter((e) => e.tier === 1).map((e) => e.site))
  t.equal(sites.size, 2, 'two sites of tier-1 edges')
  for (const s of sites) t.equal(topo.edges.filter((e) => e.site === s).length, 2, `two edges in ${s}`)
  const plan = buildPlan(topo, { paths: localPaths('/data'), basePort: 9080 })
  t.doesNotThrow(() => parseFleet(plan.fleet), 'steering accepts the derived fleet')
  t.doesNotThrow(() => parseZones(plan.zones), 'steering accepts the derived zones')
  t.equal(plan.steering.port, 9080, '--base-port moves steering to the base')
  t.equal(plan.nodes[0]!.role, 'origin', 'the origin starts first')
  t.equal(plan.nodes.at(-1)!.role, 'steering', 'steering starts last')
  const started = new Set<string>()
  for (const n of plan.nodes) {
    const i = n.args.indexOf('--upstream')
    if (i >= 0) t.ok(started.has(n.args[i + 1]!), `${n.id}: its upstream starts before it`)
    started.add(n.url)
  }
  t.equal(plan.prefill?.title, [...topo.samples].sort((a, b) => b.popularity - a.popularity)[0]!.title)
  t.ok(plan.zones.zones.some((z) => z.cidr === '127.0.0.0/8' && z.region === topo.steering.defaultRegion))
})

t.test('with TLS: HTTPS for browsers on port + offset, plain HTTP beside and between nodes', async (t) => {
  const topo = loadTopology(topologyFile)
  const tls = { caCert: '/data/tls/ca.pem', cert: '/data/tls/demo-chain.pem', key: '/data/tls/demo-key.pem' }
  const plan = buildPlan(topo, { paths: localPaths('/data'), basePort: 9080, tls })
  const flag = (args: readonly string[], name: string) => args[args.indexOf(name) + 1]
  t.equal(plan.steering.url, `https://127.0.0.1:${9080 + TLS_PORT_OFFSET}`, 'steering: https on 9443')
  t.equal(plan.steering.httpUrl, 'http://127.0.0.1:9080', 'and plain HTTP on its own port')
  for (const n of plan.nodes) {
    t.equal(n.tlsPort, n.port + TLS_PORT_OFFSET, `${n.id}: HTTPS on its port + ${TLS_PORT_OFFSET}`)
    t.equal(flag(n.args, '--port'), String(n.tlsPort), `${n.id} listens HTTPS on --port`)
    t.equal(flag(n.args, '--http-port'), String(n.port), 'and plain HTTP on --http-port')
    t.equal(flag(n.args, '--tls-cert'), tls.cert)
    t.equal(flag(n.args, '--tls-key'), tls.key)
    if (n.role === 'edge')
      t.match(flag(n.args, '--upstream'), /^http:\/\//, `${n.id} fetches over plain HTTP (loopback hop)`)
  }
  t.equal(flag(plan.steering.args, '--edge-ca'), tls.caCert, 'steering checks the https edges against the CA')
  t.ok(
    plan.fleet.edges.every((e) => e.url.startsWith('https://')),
    'steering hands players https edges only (no mixed content on an https page)',
  )
  t.doesNotThrow(() => parseFleet(plan.fleet), 'steering accepts the fleet')

  const d = doc()
  ;(d.edges as Record<string, unknown>[])[0]!.port = 8080 + TLS_PORT_OFFSET
  t.throws(
    () => buildPlan(parseTopology(d, 'clash'), { paths: localPaths('/data'), tls }),
    {
      code: 'CDN_ERR_CONFIG',
      message: /port 8443: fra-parent HTTP and steering HTTPS|port 8443: steering HTTPS and fra-parent HTTP/,
    },
    "a node's HTTPS port that is another node's port is refused",
  )
  t.throws(
    () => buildPlan(topo, { paths: localPaths('/data'), basePort: 65200, tls }),
    { code: 'CDN_ERR_CONFIG', message: /above 65535/ },
    'so is an HTTPS port past 65535',
  )
})

t.test('a bad topology is refused with every problem listed', async (t) => {
  const d = doc()
  const edges = d.edges as Record<string, unknown>[]
  edges[1]!.port = edges[2]!.port
  edges[2]!.upstream = 'nowhere'
  edges[3]!.site = 'atlantis'
  edges.push({ id: 'rome-1', site: 'rome', port: 8099 })
  ;(d.regions as Record<string, unknown>[])[0]!.cidrs = ['127.0.0.0/33']
  d.colour = 'blue'
  let err: CdnError | undefined
  try {
    parseTopology(d, 'bad')
  } catch (e) {
    err = e as CdnError
  }
  t.equal(err?.code, 'CDN_ERR_CONFIG')
  const problems = (err?.details?.problems as string[]) ?? []
  for (const want of [
    /port \d+ is also used by/,
    /unknown node "nowhere"/,
    /unknown site "atlantis"/,
    /duplicate node id "rome-1"/,
    /^\/regions\/0\/cidrs\/0: "127\.0\.0\.0\/33" has a bad prefix length/,
    /^\/colour: unknown key$/,
  ])
    t.ok(
      problems.some((p) => want.test(p)),
      `names: ${want.source}`,
    )
})

t.test('upstream loops are refused', async (t) => {
  const d = doc()
  const edges = d.edges as Record<string, unknown>[]
  edges[0]!.upstream = edges[1]!.id
  t.throws(() => parseTopology(d), /loops through/)
})

t.test('compose.yaml is generated from the default topology', async (t) => {
  const topo = loadTopology(topologyFile)
  const committed = readFileSync(join(root, 'compose.yaml'), 'utf8')
  t.equal(
    committed,
    composeYaml(topo, composePlan(topo)),
    'compose.yaml is current (regenerate: cdn demo --emit-compose .)',
  )
  const plan = composePlan(topo)
  t.same(
    JSON.parse(readFileSync(join(root, 'deploy/compose/fleet.json'), 'utf8')),
    plan.fleet,
    'deploy/compose/fleet.json is current',
  )
  t.same(
    JSON.parse(readFileSync(join(root, 'deploy/compose/zones.json'), 'utf8')),
    plan.zones,
    'deploy/compose/zones.json is current',
  )
  for (const n of plan.nodes) t.match(committed, new RegExp(`^  ${n.id}:$`, 'm'), `a service for ${n.id}`)
})

t.test('every shape problem names its JSON path', async (t) => {
  const d = doc()
  const edges = d.edges as Record<string, unknown>[]
  edges[1]!.port = '8081'
  edges[2]!.memorySize = 64_000_000
  edges[3]!.tier = 3
  edges[0]!.capacity = 5
  delete (d.sites as Record<string, unknown>[])[0]!.lat
  ;(d.samples as Record<string, unknown>[])[0]!.seconds = 2.5
  ;(d.regions as Record<string, unknown>[])[1]!.name = 'Milan!'
  d.origin = { port: 70_000 }
  let problems: string[] = []
  try {
    parseTopology(d, 'bad')
  } catch (e) {
    problems = ((e as CdnError).details?.problems as string[]) ?? []
  }
  t.same(problems.sort(), [
    '/edges/0/capacity: unknown key',
    '/edges/1/port: must be integer (got "8081")',
    '/edges/2/memorySize: a size with a unit, such as "64MB" or "2GB" (got 64000000)',
    '/edges/3/tier: must be one of 1, 2 (got 3)',
    '/origin/port: must be <= 65535 (got 70000)',
    '/regions/1/name: an id of lowercase letters, digits and "-" (at most 32) (got "Milan!")',
    '/samples/0/seconds: must be integer (got 2.5)',
    '/sites/0/lat: required',
  ])
})

t.test('a good topology gets its defaults; $comment is allowed anywhere', async (t) => {
  const topo = parseTopology({
    $comment: 'minimal',
    adminToken: 'secret-token',
    samples: [{ title: 'a', seconds: 4 }],
    origin: { port: 9001 },
    steering: { port: 9000, defaultRegion: 'here' },
    sites: [{ id: 'rome', lat: 41.9, lon: 12.5, $comment: 'a site' }],
    edges: [{ id: 'rome-1', site: 'rome', port: 9002 }],
    regions: [{ name: 'here', lat: 0, lon: 0 }],
  })
  t.same(topo, {
    host: '127.0.0.1',
    basePort: 9000,
    adminToken: 'secret-token',
    samples: [{ title: 'a', seconds: 4, popularity: 1 }],
    origin: { id: 'origin', port: 9001 },
    steering: { id: 'steering', port: 9000, defaultRegion: 'here' },
    sites: [{ id: 'rome', name: 'rome', lat: 41.9, lon: 12.5 }],
    edges: [
      {
        id: 'rome-1',
        site: 'rome',
        tier: 1,
        port: 9002,
        upstream: 'origin',
        memorySize: '64MB',
        diskSize: '1GB',
        capacityBytesPerSec: 125_000_000,
      },
    ],
    regions: [{ name: 'here', lat: 0, lon: 0, cidrs: [] }],
    prefill: undefined,
  })
  t.throws(() => parseTopology(null), { code: 'CDN_ERR_CONFIG', message: /\/: must be object/ })
})
