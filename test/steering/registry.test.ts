import { join } from 'node:path'
import t from 'tap'
import { parseCommand } from '../../src/config/options.js'
import { isCdnError } from '../../src/errors.js'
import { DEFAULT_REGISTRY_PREFIX, parseRecord } from '../../src/fleet-registry.js'
import { steeringConfig } from '../../steering/config.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { loadFleet, parseFleet } from '../../steering/registry.js'
import { buildSteeringApp } from '../../steering/app.js'
import { tempDir } from '../helpers/steering.js'

const good = {
  id: 'rome-1',
  url: 'http://127.0.0.1:8081/',
  site: 'rome',
  lat: 41.9,
  lon: 12.5,
  capacityBytesPerSec: 1e9,
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (isCdnError(err)) return (err.details as { problems: string[] }).problems
    throw err
  }
  return []
}

t.test('a good fleet parses, frozen, with defaults', async (t) => {
  const r = parseFleet({
    edges: [good, { ...good, id: 'rome-2', url: 'http://127.0.0.1:8082', weight: 2, cluster: 'eu' }],
  })
  t.equal(r.edges.length, 2)
  t.equal(r.edges[0]!.url, 'http://127.0.0.1:8081', 'trailing slash dropped')
  t.equal(r.edges[0]!.weight, 1)
  t.equal(r.byId.get('rome-2')!.cluster, 'eu')
  t.ok(Object.isFrozen(r.edges[0]))
})

t.test('a fleet with many bad fields is refused listing every one', async (t) => {
  const problems = problemsOf(() =>
    parseFleet({
      edges: [
        good,
        { ...good, url: 'http://127.0.0.1:9' }, // duplicate id
        { ...good, id: 'no-url', url: undefined },
        { ...good, id: 'bad-url', url: 'not a url' },
        { ...good, id: 'ftp', url: 'ftp://x' },
        { ...good, id: 'lat', url: 'http://a', lat: 100 },
        { ...good, id: 'lon', url: 'http://b', lon: 'east' },
        { ...good, id: 'cap', url: 'http://c', capacityBytesPerSec: 0 },
        { ...good, id: 'bad id!', url: 'http://d' },
        { ...good, id: 'same-url' }, // same URL as rome-1
        { ...good, id: 'typo', url: 'http://e', capacity: 5 },
        { ...good, id: 'w', url: 'http://f', weight: -1 },
      ],
    }),
  )
  const want = [
    '/edges/1/id: duplicate id "rome-1" (also /edges/0)',
    '/edges/2/url: required',
    '/edges/3/url: "not a url" is not an absolute URL',
    '/edges/4/url: expected http(s)',
    '/edges/5/lat: must be <= 90 (got 100)',
    '/edges/6/lon: must be number (got "east")',
    '/edges/7/capacityBytesPerSec: must be > 0 (got 0)',
    '/edges/8/id: letters, digits, ".", "_" or "-" (at most 64) (got "bad id!")',
    '/edges/9/url: same URL as rome-1',
    '/edges/10/capacity: unknown key',
    '/edges/11/weight: must be > 0 (got -1)',
  ]
  t.equal(problems.length, want.length, problems.join('\n'))
  t.same([...problems].sort(), [...want].sort())
})

t.test('an edge URL with whitespace or a control character is refused, naming the edge', async (t) => {
  // new URL() drops tabs and line breaks without a word: these all parse, and each raw string,
  // once stored, broke every redirect to its edge (a Location header with a CR or LF).
  const bad: [string, string][] = [
    ['crlf', 'http://127.0.0.1:80\r\n81'],
    ['lf', 'http://127.0.0.1:8082/cdn\n'],
    ['tab', 'http://127.0.0.1:8083/a\tb'],
    ['space', 'http://127.0.0.1:8084/a b'],
    ['nul', 'http://127.0.0.1:8085/\u0000'],
  ]
  const problems = problemsOf(() =>
    parseFleet({
      edges: [good, ...bad.map(([id, url]) => ({ ...good, id, url }))],
      upstreams: [{ id: 'origin', url: 'http://127.0.0.1:8090\t', role: 'origin' }],
    }),
  )
  t.equal(problems.length, bad.length + 1, problems.join('\n'))
  bad.forEach(([id], i) =>
    t.match(
      problems.find((p) => p.startsWith(`/edges/${i + 1}/url: `)),
      new RegExp(`edge "${id}": .* holds whitespace or a control character \\(U\\+00`),
      id,
    ),
  )
  t.match(
    problems.find((p) => p.startsWith('/upstreams/')),
    /^\/upstreams\/0\/url: upstream "origin": .*U\+0009/,
  )

  // The registry's records follow the same rule: refused (and logged by the watch), never stored.
  const record = (url: string) =>
    parseRecord(
      `${DEFAULT_REGISTRY_PREFIX}rome-1`,
      JSON.stringify({ ...good, url, tier: 1 }),
      DEFAULT_REGISTRY_PREFIX,
    )
  for (const [, url] of bad)
    t.match(record(url), [/^\/url: edge "rome-1": .* holds whitespace or a control character/], url)
})

t.test(
  'an edge URL with a user name or password is refused, naming the edge, never showing it',
  async (t) => {
    // Stored, it went into every /play Location, /steer answer, content-steering master and /edges.
    const bad: [string, string][] = [
      ['both', 'http://user:secret@127.0.0.1:19201/cdn'],
      ['user', 'http://secret@127.0.0.1:19202'],
      ['password', 'https://:secret@127.0.0.1:19203'],
      ['unparsable', 'http://user:secret@127.0.0.1:port'],
      ['with-tab', 'http://user:secret@127.0.0.1:19204/a\tb'],
    ]
    const problems = problemsOf(() =>
      parseFleet({
        edges: [good, ...bad.map(([id, url]) => ({ ...good, id, url }))],
        upstreams: [{ id: 'origin', url: 'http://user:secret@127.0.0.1:8090', role: 'origin' }],
      }),
    )
    t.equal(problems.length, bad.length + 1, problems.join('\n'))
    for (const [i, [id]] of bad.entries()) {
      const p = problems.find((p) => p.startsWith(`/edges/${i + 1}/url: `))
      t.ok(p, id)
      if (id !== 'unparsable') t.match(p, `edge "${id}": the URL carries a user name or password`, id)
    }
    t.match(
      problems.find((p) => p.startsWith('/upstreams/0/url: ')),
      'upstream "origin": the URL carries',
    )
    t.notMatch(problems.join('\n'), /secret/, 'the secret is in no message')

    // The registry's records follow the same rule (and their problems are what the watch logs).
    for (const [, url] of bad) {
      const problems = parseRecord(
        `${DEFAULT_REGISTRY_PREFIX}rome-1`,
        JSON.stringify({ ...good, url, tier: 1 }),
        DEFAULT_REGISTRY_PREFIX,
      )
      t.ok(Array.isArray(problems), url)
      t.notMatch(JSON.stringify(problems), /secret/, url)
    }
    const query = parseRecord(
      `${DEFAULT_REGISTRY_PREFIX}rome-1`,
      JSON.stringify({ ...good, url: 'http://user:secret@127.0.0.1:1/?q', tier: 1 }),
      DEFAULT_REGISTRY_PREFIX,
    )
    t.same(query, [
      '/url: edge "rome-1": the URL carries a user name or password (not shown): players would all be handed it',
    ])
    t.same(
      parseRecord(
        `${DEFAULT_REGISTRY_PREFIX}rome-1`,
        JSON.stringify({ ...good, url: 'ftp://127.0.0.1/?q', tier: 1 }),
        DEFAULT_REGISTRY_PREFIX,
      ),
      ['/url: expected http(s)'],
      'the schema no longer checks the URL: edgeUrlProblem does',
    )
  },
)

t.test('an edge URL is stored as the URL parser writes it', async (t) => {
  const r = parseFleet({
    edges: [{ ...good, url: 'HTTP://LocalHost:80/cdn/édge/' }],
    upstreams: [{ id: 'origin', url: 'http://[::1]:8090/', role: 'origin' }],
  })
  t.equal(r.edges[0]!.url, 'http://localhost/cdn/%C3%A9dge')
  t.equal(r.upstreams![0]!.url, 'http://[::1]:8090')
  t.match(
    problemsOf(() => parseFleet({ edges: [good, { ...good, id: 'rome-2', url: 'http://127.0.0.1:8081/' }] })),
    ['/edges/1/url: same URL as rome-1'],
  )
  const rec = parseRecord(
    `${DEFAULT_REGISTRY_PREFIX}rome-1`,
    JSON.stringify({ ...good, url: 'http://LocalHost:80/cdn/', tier: 1 }),
    DEFAULT_REGISTRY_PREFIX,
  )
  t.match(rec, { id: 'rome-1', url: 'http://localhost/cdn' })
})

t.test('fleet shape problems', async (t) => {
  t.match(
    problemsOf(() => parseFleet(null)),
    ['/: must be object (got null)'],
  )
  t.match(
    problemsOf(() => parseFleet({ edges: [] })),
    ['/edges: must have at least 1 item (or edges from --registry-etcd)'],
  )
  t.match(
    problemsOf(() => parseFleet({ edges: [1], x: 1 })),
    ['/x: unknown key', '/edges/0: must be object (got 1)'],
  )
})

t.test('with the fleet registry the file may list no edge; steering then answers 503', async (t) => {
  const dir = tempDir(t, { 'empty.json': JSON.stringify({ edges: [] }) })
  t.throws(() => loadFleet(join(dir, 'empty.json')), { code: 'CDN_ERR_CONFIG', message: /at least 1 item/ })
  const registry = loadFleet(join(dir, 'empty.json'), { registry: true })
  t.same(registry.edges, [])
  const app = await buildSteeringApp({ config: steeringConfig({ checkInterval: 3_600_000 }), registry })
  t.teardown(() => app.close())
  await app.ready()
  const r = await app.inject({ url: '/steer?title=x' })
  t.equal(r.statusCode, 503, 'no edge registered yet: no answer, no crash')
})

t.test('fleet file errors name the file', async (t) => {
  const dir = tempDir(t, { 'bad.json': '{ nope', 'ok.json': JSON.stringify({ edges: [good] }) })
  t.throws(() => loadFleet(`${dir}/missing.json`), { code: 'CDN_ERR_CONFIG', message: /missing\.json/ })
  t.throws(() => loadFleet(`${dir}/bad.json`), { code: 'CDN_ERR_CONFIG', message: /not valid JSON/ })
  t.equal(loadFleet(`${dir}/ok.json`).edges.length, 1)
})

t.test('command options: flags, defaults, and every problem at once', async (t) => {
  const { config } = parseCommand<SteeringOptions>(
    STEERING_SPEC,
    [
      '--fleet',
      'f.json',
      '--trusted-proxy',
      '10.0.0.0/8',
      '--trusted-proxy',
      '::1',
      '--check-interval',
      '500ms',
      '--load-high',
      '0.9',
    ],
    {},
  )
  const c = steeringConfig(config)
  t.equal(c.checkIntervalMs, 500)
  t.equal(c.loadHigh, 0.9)
  t.equal(c.trustedProxies.length, 2)
  t.same(c.defaultLocation, { lat: 0, lon: 0 })
  t.throws(() => parseCommand(STEERING_SPEC, [], {}), {
    code: 'CDN_ERR_CONFIG',
    message: /--fleet: required/,
  })
  const problems = problemsOf(() =>
    steeringConfig({
      trustedProxy: ['10.0.0.1/8', 'nope'],
      defaultLocation: '100,1',
      loadHigh: 0.5,
      loadLow: 0.6,
      signingKey: 'short',
    }),
  )
  t.equal(problems.length, 5, problems.join('\n'))
})
