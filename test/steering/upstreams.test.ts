/**
 * Steering's view of the delivery tree above the edges: the fleet file's "upstreams" are
 * validated with the rest of it, watched with the same health loop, and shown in /edges with
 * their last /status (kept, with its time, after a node dies).
 */
import t from 'tap'
import { request } from 'undici'
import { parseFleet } from '../../steering/registry.js'
import { startTree } from '../helpers/tree.js'

const EDGE = {
  id: 'rome-1',
  url: 'http://127.0.0.1:1',
  site: 'rome',
  lat: 41.9,
  lon: 12.5,
  capacityBytesPerSec: 1e9,
}

t.test('the fleet file lists upstreams; every problem is named', async (t) => {
  const ok = parseFleet({
    edges: [EDGE],
    upstreams: [
      {
        id: 'p',
        url: 'http://127.0.0.1:2/',
        role: 'edge',
        lat: 50,
        lon: 8,
        upstream: 'o',
        serves: ['rome-1'],
      },
      { id: 'o', url: 'http://127.0.0.1:3', role: 'origin' },
    ],
  })
  t.same(
    ok.upstreams?.map((u) => [u.id, u.url, u.role, u.upstream ?? null]),
    [
      ['p', 'http://127.0.0.1:2', 'edge', 'o'],
      ['o', 'http://127.0.0.1:3', 'origin', null],
    ],
  )
  t.same(parseFleet({ edges: [EDGE] }).upstreams, [], 'optional')
  const bad = () =>
    parseFleet({
      edges: [EDGE],
      upstreams: [
        {
          id: 'rome-1',
          url: 'ftp://x',
          role: 'cache',
          lat: 50,
          upstream: 'nowhere',
          serves: ['nyc-9'],
          x: 1,
        },
      ],
    })
  t.throws(bad, { code: 'CDN_ERR_CONFIG' })
  try {
    bad()
  } catch (err) {
    const problems = (err as { details: { problems: string[] } }).details.problems.join('\n')
    for (const p of [
      /^\/upstreams\/0\/x: unknown key$/m,
      /^\/upstreams\/0\/id: duplicate id "rome-1"$/m,
      /^\/upstreams\/0\/url: expected http\(s\)$/m,
      /^\/upstreams\/0\/role: must be one of "edge", "origin" \(got "cache"\)$/m,
      /^\/upstreams\/0\/lon: required with lat$/m,
      /^\/upstreams\/0\/serves\/0: "nyc-9" is not a fleet edge id$/m,
      /^\/upstreams\/0\/upstream: "nowhere" is not an upstream id$/m,
    ])
      t.match(problems, p)
  }
})

t.test('/edges shows the parent and the origin with their health, traffic and staleness', async (t) => {
  const tree = await startTree(t)
  // Traffic through the whole tree: the edge misses, the parent misses, the origin serves.
  for (const path of ['/vod/clip/master.m3u8']) {
    const res = await request(`${tree.edge.url}${path}`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  await tree.checkNow()
  const doc = (await (await request(`${tree.steering}/edges`)).body.json()) as {
    edges: { id: string; state: string }[]
    upstreams: {
      id: string
      role: string
      state: string
      lastOk: string | null
      serves: string[]
      upstream: string | null
      status: { bytesServed: number; egressBytesPerSec: number; hitRatio?: number; titles: string[] } | null
    }[]
  }
  t.same(
    doc.edges.map((e) => e.id),
    ['rome-1'],
    'edges are the ones steering chooses from',
  )
  const [parent, origin] = doc.upstreams
  t.equal(parent?.id, 'fra-parent')
  t.equal(parent?.state, 'up')
  t.equal(parent?.upstream, 'origin')
  t.same(parent?.serves, ['rome-1'])
  t.ok(parent?.status && typeof parent.status.hitRatio === 'number', 'the parent reports its hit ratio')
  t.ok((parent?.status?.bytesServed ?? 0) > 0, 'the parent served the edge')
  t.equal(origin?.role, 'origin')
  t.equal(origin?.state, 'up')
  t.ok((origin?.status?.bytesServed ?? 0) > 0, 'the origin counts what it sent')
  t.ok((origin?.status?.egressBytesPerSec ?? 0) > 0, 'and its egress rate')
  t.same(origin?.status?.titles, ['clip'], 'and the titles it holds')

  const lastOk = parent!.lastOk
  await tree.parent.app.close()
  await tree.checkNow()
  await tree.checkNow()
  const after = (await (await request(`${tree.steering}/edges`)).body.json()) as typeof doc
  const dead = after.upstreams[0]!
  t.equal(dead.state, 'down', 'a dead parent is down after fail-after rounds')
  t.equal(dead.lastOk, lastOk, 'its last good check keeps its time')
  t.ok(
    dead.status && dead.status.bytesServed > 0,
    'and its last figures stay, for the dashboard to show as stale',
  )
  t.equal(after.upstreams[1]!.state, 'up', 'the origin is still up')
})

t.test(
  "with --metrics-token, /edges shows the upstreams' addresses, errors and /status only to the token",
  async (t) => {
    const token = 'steering-metrics-token'
    const tree = await startTree(t, { metricsToken: token })
    await tree.parent.app.close()
    await tree.checkNow()
    await tree.checkNow()
    type Node = Record<string, unknown> & { status: Record<string, unknown> | null }
    const edges = async (headers: Record<string, string> = {}) =>
      ((await (await request(`${tree.steering}/edges`, { headers })).body.json()) as { upstreams: Node[] })
        .upstreams
    const inside = await edges({ authorization: `Bearer ${token}` })
    t.match(inside[0], {
      id: 'fra-parent',
      state: 'down',
      url: tree.parent.url,
      lastError: String,
      why: String,
    })
    t.match(inside[1]?.status, { store: Object, titles: ['clip'] }, "the origin's own /status, whole")
    const refused: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-x' }]
    for (const headers of refused) {
      const outside = await edges(headers)
      t.same(
        outside.map((n) => [n.id, n.state, n.upstream]),
        [
          ['fra-parent', 'down', 'origin'],
          ['origin', 'up', null],
        ],
        'the tree and its health',
      )
      const text = JSON.stringify(outside)
      for (const node of [tree.parent.url, tree.origin.url])
        t.notMatch(text, new URL(node).host, 'no address')
      for (const n of outside)
        t.same(
          Object.keys(n).filter((k) => ['url', 'why', 'lastError'].includes(k)),
          [],
        )
      t.notOk(outside[1]?.status?.store, "nor the origin's store")
      t.equal(typeof outside[1]?.status?.bytesServed, 'number', 'its figures stay')
    }
  },
)
