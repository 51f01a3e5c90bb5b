/**
 * The network-namespace plan (src/cli/demo/netns-plan.ts) from the demo's own topology: one
 * namespace per node and per site's clients, addresses in each site's block, every URL a relay
 * address, delays from great-circle distance, tbf rates from capacities, zones per site, the
 * origin as child edges' second upstream. Pure: runs anywhere (the lab itself: test/netns/).
 */
import t from 'tap'
import { buildNetnsPlan, NETNS_STEERING_ARGS } from '../../src/cli/demo/netns-plan.js'
import { localPaths } from '../../src/cli/demo/plan.js'
import { loadTopology } from '../../src/cli/demo/topology.js'
import { topologyFile } from '../e2e/demo-helpers.js'

const topo = loadTopology(topologyFile)
const paths = localPaths('/data')

t.test('namespaces, addresses and relay routes from the demo topology', async (t) => {
  const plan = buildNetnsPlan(topo, { prefix: 'cdnab12', paths })
  t.equal(plan.hub, 'cdnab12-hub')
  t.same(
    plan.sites.map((s) => [s.id, s.clientNs, s.clientAddress, s.hubAddress]),
    [
      ['rome', 'cdnab12-c-rome', '10.77.1.200', '10.77.1.254'],
      ['new-york', 'cdnab12-c-new-york', '10.77.2.200', '10.77.2.254'],
      ['frankfurt', 'cdnab12-c-frankfurt', '10.77.3.200', '10.77.3.254'],
    ],
  )
  const byId = new Map(plan.nodes.map((n) => [n.id, n]))
  t.equal(byId.get('origin')!.site, 'frankfurt', "the origin sits at its tier-2 parent's site")
  t.equal(byId.get('steering')!.site, 'rome', 'steering at the site nearest its default region')
  t.same(
    [...byId.values()].map((n) => [n.id, n.ns, n.address, n.relayAddress]),
    [
      ['origin', 'cdnab12-origin', '10.77.3.10', '10.77.255.1'],
      ['fra-parent', 'cdnab12-fra-parent', '10.77.3.11', '10.77.255.2'],
      ['rome-1', 'cdnab12-rome-1', '10.77.1.10', '10.77.255.3'],
      ['rome-2', 'cdnab12-rome-2', '10.77.1.11', '10.77.255.4'],
      ['nyc-1', 'cdnab12-nyc-1', '10.77.2.10', '10.77.255.5'],
      ['nyc-2', 'cdnab12-nyc-2', '10.77.2.11', '10.77.255.6'],
      ['steering', 'cdnab12-steering', '10.77.1.12', '10.77.255.7'],
    ],
  )
  t.equal(byId.get('rome-1')!.uplinkBytesPerSec, 125_000_000, 'tbf at the capacity')
  t.equal(byId.get('steering')!.uplinkBytesPerSec, undefined, 'only edges are capped')
  t.same(
    plan.relay.routes.find((r) => r.id === 'rome-1'),
    {
      id: 'rome-1',
      site: 'rome',
      listenHost: '10.77.255.3',
      listenPort: 8081,
      targetHost: '10.77.1.10',
      targetPort: 8081,
    },
  )
  t.equal(plan.relay.sources['10.77.2.200'], 'new-york', 'a client is placed by its address')
  t.equal(plan.relay.siteAddress.rome, '10.77.1.254')
})

t.test('delays from great-circle distance, symmetric, zero within a site', async (t) => {
  const plan = buildNetnsPlan(topo, { prefix: 'cdnab12', paths })
  t.equal(plan.delayMs['rome|rome'], 0)
  t.equal(plan.delayMs['rome|new-york'], plan.delayMs['new-york|rome'])
  // Rome-New York is ~6,890 km: 69 ms of round trip at 1 ms per 100 km, 34.5 ms each way.
  t.equal(plan.delayMs['rome|new-york'], 34.5)
  const double = buildNetnsPlan(topo, { prefix: 'cdnab12', paths, msPer100Km: 2, jitterMs: 0 })
  t.equal(double.delayMs['rome|new-york'], 68.9)
  t.equal(double.relay.jitterMs, 0)
})

t.test('every URL is a relay address; zones per site; the origin behind child edges', async (t) => {
  const { demo } = buildNetnsPlan(topo, { prefix: 'cdnab12', paths })
  t.same(
    demo.fleet.edges.map((e) => e.url),
    [
      'http://10.77.255.3:8081',
      'http://10.77.255.4:8082',
      'http://10.77.255.5:8083',
      'http://10.77.255.6:8084',
    ],
  )
  t.same(demo.zones.zones, [
    { cidr: '10.77.1.0/24', region: 'rome' },
    { cidr: '10.77.2.0/24', region: 'new-york' },
    { cidr: '10.77.3.0/24', region: 'frankfurt' },
  ])
  const args = (id: string) => demo.nodes.find((n) => n.id === id)!.args
  const upstreams = (id: string) => args(id).flatMap((a, i, all) => (all[i - 1] === '--upstream' ? [a] : []))
  t.same(upstreams('rome-1'), ['http://10.77.255.2:8085', 'http://10.77.255.1:8090'])
  t.same(upstreams('fra-parent'), ['http://10.77.255.1:8090'], 'the parent has the origin only')
  t.same(args('steering').slice(-NETNS_STEERING_ARGS.length), NETNS_STEERING_ARGS)
  t.equal(demo.steering.args.includes('--queue-delay-high'), true)
  t.same(
    demo.prefill?.edges.map((e) => e.id),
    ['rome-1', 'rome-2'],
  )
  t.ok(args('rome-1').includes('0.0.0.0'), 'nodes listen on every address of their namespace')
})

t.test('placement, prefix and size are checked', async (t) => {
  const placed = buildNetnsPlan(topo, {
    prefix: 'cdnab12',
    paths,
    place: { origin: 'rome', steering: 'new-york' },
  })
  t.equal(placed.nodes.find((n) => n.id === 'origin')!.address, '10.77.1.10')
  t.equal(placed.nodes.find((n) => n.id === 'steering')!.site, 'new-york')
  t.throws(() => buildNetnsPlan(topo, { prefix: 'cdnab12', paths, place: { origin: 'mars' } }), {
    code: 'CDN_ERR_CONFIG',
    message: /origin placed at unknown site "mars"/,
  })
  t.throws(() => buildNetnsPlan(topo, { prefix: 'Bad-Prefix', paths }), { code: 'CDN_ERR_CONFIG' })
  const many = {
    ...topo,
    sites: Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, name: `s${i}`, lat: 0, lon: i / 2 })),
  }
  t.throws(() => buildNetnsPlan(many, { prefix: 'cdnab12', paths }), { message: /at most 199 sites/ })
})
