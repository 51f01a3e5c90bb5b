import t from 'tap'
import {
  DEFAULT_SELECT_OPTIONS,
  distanceKm,
  type EdgeInput,
  hash32,
  rendezvousScore,
  type SelectOptions,
  select,
} from '../../steering/select.js'

const ROME = { lat: 41.9, lon: 12.5 }
const NYC = { lat: 40.71, lon: -74.0 }
const TOKYO = { lat: 35.68, lon: 139.69 }
const MILAN = { lat: 45.46, lon: 9.19 }

function edge(
  id: string,
  site: string,
  at: { lat: number; lon: number },
  over: Partial<EdgeInput> = {},
): EdgeInput {
  return { id, url: `http://${id}`, site, ...at, weight: 1, load: 0, usable: true, ...over }
}

const fleet = [
  edge('rome-1', 'rome', ROME),
  edge('rome-2', 'rome', ROME),
  edge('nyc-1', 'nyc', NYC),
  edge('nyc-2', 'nyc', NYC),
  edge('tokyo-1', 'tokyo', TOKYO),
]

/** The HRW winner among ids for a title, computed independently of select(). */
function hrwFirst(title: string, ids: string[]): string {
  const h = hash32(title)
  return [...ids].sort((a, b) => rendezvousScore(h, b, 1) - rendezvousScore(h, a, 1))[0]!
}

t.test('great-circle distance', async (t) => {
  t.equal(Math.round(distanceKm(ROME, ROME)), 0)
  t.ok(Math.abs(distanceKm(ROME, NYC) - 6900) < 100, `Rome–New York ≈ 6,900 km, got ${distanceKm(ROME, NYC)}`)
  t.ok(Math.abs(distanceKm(ROME, MILAN) - 477) < 20, 'Rome–Milan ≈ 477 km')
  t.equal(
    Math.round(distanceKm({ lat: 0, lon: 179.9 }, { lat: 0, lon: -179.9 })),
    22,
    'across the antimeridian',
  )
})

interface Case {
  name: string
  client: { lat: number; lon: number }
  edges: EdgeInput[]
  title: string
  options?: Partial<SelectOptions>
  /** Expected ids in order (a prefix of the result), or a function of the result. */
  want: string[] | ((ids: string[]) => boolean)
  reasons?: string[]
}

const cases: Case[] = [
  {
    name: 'client in Rome gets a Rome edge first, then the other Rome edge, then the next site',
    client: ROME,
    edges: fleet,
    title: 'big-buck',
    want: (ids) =>
      ids[0] === hrwFirst('big-buck', ['rome-1', 'rome-2']) &&
      ids[1]!.startsWith('rome-') &&
      ids[2]!.startsWith('nyc-') &&
      ids[4] === 'tokyo-1',
  },
  {
    name: 'client in New York gets a New York edge',
    client: NYC,
    edges: fleet,
    title: 'big-buck',
    want: (ids) => ids[0] === hrwFirst('big-buck', ['nyc-1', 'nyc-2']),
  },
  {
    name: 'a down edge is never ranked',
    client: ROME,
    edges: fleet.map((e) => (e.id === 'rome-1' || e.id === 'rome-2' ? { ...e, usable: false } : e)),
    title: 'big-buck',
    want: (ids) => !ids.includes('rome-1') && !ids.includes('rome-2') && ids[0]!.startsWith('nyc-'),
  },
  {
    name: 'nothing usable: empty list',
    client: ROME,
    edges: fleet.map((e) => ({ ...e, usable: false })),
    title: 'x',
    want: [],
  },
  {
    name: 'an edge that holds the title complete comes first in its site',
    client: ROME,
    edges: fleet.map((e) =>
      e.id === 'rome-1' || e.id === 'rome-2'
        ? { ...e, titlesComplete: new Set(e.id === hrwFirst('t1', ['rome-1', 'rome-2']) ? [] : ['t1']) }
        : e,
    ),
    title: 't1',
    want: (ids) => ids[0] !== hrwFirst('t1', ['rome-1', 'rome-2']) && ids[0]!.startsWith('rome-'),
    reasons: ['holder', 'rendezvous'],
  },
  {
    name: 'holding the title does not pull a client across the ocean',
    client: ROME,
    edges: fleet.map((e) => (e.id === 'nyc-1' ? { ...e, titlesComplete: new Set(['t1']) } : e)),
    title: 't1',
    want: (ids) => ids[0]!.startsWith('rome-'),
  },
  {
    name: 'bounded load: an edge over its share spills the title to the next in its order',
    client: ROME,
    edges: fleet.map((e) =>
      e.id === hrwFirst('t2', ['rome-1', 'rome-2']) ? { ...e, load: 0.6 } : { ...e, load: 0.1 },
    ),
    title: 't2',
    want: (ids) =>
      ids[0] !== hrwFirst('t2', ['rome-1', 'rome-2']) && ids[1] === hrwFirst('t2', ['rome-1', 'rome-2']),
    reasons: ['rendezvous', 'spill', 'distance'],
  },
  {
    name: 'no spill below the floor, however uneven',
    client: ROME,
    edges: fleet.map((e) => (e.id === hrwFirst('t2', ['rome-1', 'rome-2']) ? { ...e, load: 0.15 } : e)),
    title: 't2',
    want: (ids) => ids[0] === hrwFirst('t2', ['rome-1', 'rome-2']),
  },
  {
    name: 'the distance band takes in a nearby site (Milan within 600 km of Rome)',
    client: ROME,
    edges: [edge('rome-1', 'rome', ROME), edge('milan-1', 'milan', MILAN), edge('nyc-1', 'nyc', NYC)],
    title: 'band',
    options: { bandKm: 600 },
    want: (ids) => ids[0] === hrwFirst('band', ['rome-1', 'milan-1']) && ids[2] === 'nyc-1',
  },
  {
    name: 'without the band, Milan is simply second by distance',
    client: ROME,
    edges: [edge('rome-1', 'rome', ROME), edge('milan-1', 'milan', MILAN), edge('nyc-1', 'nyc', NYC)],
    title: 'band',
    options: { bandKm: 0 },
    want: ['rome-1', 'milan-1', 'nyc-1'],
    reasons: ['rendezvous', 'distance', 'distance'],
  },
  {
    name: 'maxResults caps the list',
    client: TOKYO,
    edges: fleet,
    title: 'x',
    options: { maxResults: 2 },
    want: (ids) => ids.length === 2 && ids[0] === 'tokyo-1',
  },
  {
    name: 'weight: a heavy edge wins most titles of its site',
    client: ROME,
    edges: [edge('rome-1', 'rome', ROME, { weight: 100 }), edge('rome-2', 'rome', ROME)],
    title: 'weighted',
    want: ['rome-1'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const options = { ...DEFAULT_SELECT_OPTIONS, ...c.options }
    const ranked = select(c.client, c.edges, c.title, options)
    const ids = ranked.map((r) => r.edge.id)
    if (typeof c.want === 'function') t.ok(c.want(ids), `got ${ids.join(', ')}`)
    else t.same(ids.slice(0, c.want.length), c.want)
    if (c.reasons)
      t.same(
        ranked.slice(0, c.reasons.length).map((r) => r.reason),
        c.reasons,
      )
    t.same(select(c.client, c.edges, c.title, options), ranked, 'deterministic')
  })
}

t.test('rendezvous keeps a title on one edge and spreads many titles across a site', async (t) => {
  const site = Array.from({ length: 4 }, (_, i) => edge(`rome-${i}`, 'rome', ROME))
  const counts = new Map<string, number>()
  for (let i = 0; i < 4000; i++) {
    const id = select(ROME, site, `title-${i}`)[0]!.edge.id
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  for (const [id, n] of counts) t.ok(n > 800 && n < 1200, `${id} got ${n} of 4000 titles`)
  // Removing one edge moves only that edge's titles (the point of rendezvous hashing).
  let moved = 0
  let wrong = 0
  for (let i = 0; i < 1000; i++) {
    const before = select(ROME, site, `title-${i}`)[0]!.edge.id
    const after = select(ROME, site.slice(1), `title-${i}`)[0]!.edge.id
    if (before !== after) moved++
    if (before !== after && before !== 'rome-0') wrong++
  }
  t.equal(wrong, 0, 'only titles of the removed edge move')
  t.ok(moved > 150 && moved < 350, `${moved} of 1000 moved`)
})

t.test('the rest are the nearest by distance, in order, whatever the fleet size', async (t) => {
  const many = Array.from({ length: 300 }, (_, i) =>
    edge(`e${i}`, `s${i}`, { lat: -60 + ((i * 37) % 120), lon: -170 + ((i * 53) % 340) }),
  )
  const ranked = select(ROME, many, 'x', { ...DEFAULT_SELECT_OPTIONS, maxResults: 10, bandKm: 0 })
  const byDistance = [...many].sort((a, b) => distanceKm(ROME, a) - distanceKm(ROME, b)).slice(0, 10)
  t.same(
    ranked.map((r) => r.edge.id),
    byDistance.map((e) => e.id),
  )
})
