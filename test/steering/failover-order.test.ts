/**
 * The failover order (select.ts, step 6): after the first edge, each client has its own
 * order of the band, so the viewers of one title whose first edge fails spread over the
 * band; the first choice, the ranks (holders, spills) and agreement between instances stay.
 */
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { steeringConfig } from '../../steering/config.js'
import { clientKey, Decider } from '../../steering/decider.js'
import { FleetState } from '../../steering/fleet-state.js'
import { parseZones } from '../../steering/geo.js'
import { applyRound, viewOf } from '../../steering/health.js'
import type { EdgeStatus } from '../../src/http/status.js'
import { parseAddress } from '../../steering/ip.js'
import { DEFAULT_SELECT_OPTIONS, type EdgeInput, select } from '../../steering/select.js'

const ROME = { lat: 41.9, lon: 12.5 }
const NYC = { lat: 40.71, lon: -74.0 }
const edge = (id: string, over: Partial<EdgeInput> = {}): EdgeInput => ({
  id,
  url: `http://${id}`,
  site: 'rome',
  ...ROME,
  weight: 1,
  load: 0,
  usable: true,
  ...over,
})
const site = Array.from({ length: 10 }, (_, i) => edge(`rome-${i}`))
const fleet = [...site, edge('nyc-1', { site: 'nyc', ...NYC })]
const ids = (r: readonly { edge: EdgeInput }[]) => r.map((x) => x.edge.id)

t.test('the first edge is the title’s; the failover edges spread over the band per client', async (t) => {
  const plain = ids(select(ROME, fleet, 'popular'))
  const seconds = new Map<string, number>()
  for (let c = 0; c < 2000; c++) {
    const got = ids(
      select(
        ROME,
        fleet,
        'popular',
        DEFAULT_SELECT_OPTIONS,
        clientKey(parseAddress(`10.0.${c >> 8}.${c & 255}`)!),
      ),
    )
    if (got[0] !== plain[0]) t.fail(`client ${c}: first ${got[0]}, not ${plain[0]}`)
    t.equal(new Set(got).size, got.length)
    seconds.set(got[1]!, (seconds.get(got[1]!) ?? 0) + 1)
  }
  t.equal(seconds.size, 9, 'every other edge of the band is some client’s second')
  for (const [id, n] of seconds) t.ok(n > 120 && n < 330, `${id} second for ${n} of 2000 clients`)
  t.not(seconds.get(plain[1]!), 2000, 'not all on the title’s second')
  const key = clientKey(parseAddress('2001:db8::1')!)
  t.same(
    ids(select(ROME, fleet, 'popular', DEFAULT_SELECT_OPTIONS, key)),
    ids(select(ROME, fleet, 'popular', DEFAULT_SELECT_OPTIONS, key)),
    'the same client, the same list',
  )
  t.same(
    ids(select(ROME, fleet, 'popular', { ...DEFAULT_SELECT_OPTIONS, maxResults: 1 }, key)),
    [plain[0]],
    'one edge asked: the first',
  )
})

t.test('ranks stay: holders before the others, spills behind, the rest by distance', async (t) => {
  const edges = [
    edge('rome-0', { titlesComplete: new Set(['x']) }),
    edge('rome-1', { titlesComplete: new Set(['x']) }),
    edge('rome-2'),
    edge('rome-3'),
    edge('rome-4', { load: 0.9 }),
    edge('rome-5', { load: 0.95 }),
    edge('nyc-1', { site: 'nyc', ...NYC }),
  ]
  const options = { ...DEFAULT_SELECT_OPTIONS, maxResults: 10 }
  const orders = new Set<string>()
  for (let c = 0; c < 200; c++) {
    const got = ids(select(ROME, edges, 'x', options, clientKey(parseAddress(`192.0.2.${c}`)!)))
    orders.add(got.join())
    t.same(got.slice(0, 2).sort(), ['rome-0', 'rome-1'], 'holders first')
    t.same(got.slice(2, 4).sort(), ['rome-2', 'rome-3'])
    t.same(got.slice(4, 6).sort(), ['rome-4', 'rome-5'], 'spills behind')
    t.equal(got[6], 'nyc-1')
  }
  // The first (a holder) is fixed; the rendezvous pair and the spill pair each go either way.
  t.equal(orders.size, 4, 'clients order each rank their own way')
})

t.test('the Decider: clients of one title share its first edge, not its failover', async (t) => {
  const config = steeringConfig({ failAfter: 1, recoverAfter: 1 })
  const state = new FleetState()
  state.setAll(fleet.map((e) => ({ ...e, capacityBytesPerSec: 1e9 })))
  const members = state.list()
  const status = { egressBytesPerSec: 0, titlesComplete: [] } as unknown as EdgeStatus
  const ok = members.map(() => ({ ok: true as const, status, latencyMs: 1 }))
  const quiet = { info: () => undefined, warn: () => undefined }
  applyRound(state, members, ok, 0, config, quiet)
  const source = { view: viewOf(state) }
  const zones = parseZones({ zones: [{ cidr: '10.0.0.0/8', ...ROME }] })
  const a = new Decider(config, zones, source, new ManualClock())
  const b = new Decider(config, zones, source, new ManualClock())
  const facts = (ip: string) => ({ socketAddress: ip, forwardedFor: undefined, query: {} })
  const firsts = new Set<string>()
  const seconds = new Set<string>()
  for (let c = 0; c < 50; c++) {
    const d = a.decide(facts(`10.1.2.${c}`), 'popular')
    t.same(ids(b.decide(facts(`10.1.2.${c}`), 'popular').ranked), ids(d.ranked), 'two instances agree')
    firsts.add(d.ranked[0]!.edge.id)
    seconds.add(d.ranked[1]!.edge.id)
  }
  t.equal(firsts.size, 1, 'one first edge for the title')
  t.ok(seconds.size >= 5, `failover edges spread (${seconds.size})`)
  t.not(clientKey(parseAddress('10.0.0.1')!), clientKey(parseAddress('10.0.0.2')!))
})
