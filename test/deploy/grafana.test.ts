/**
 * The Grafana dashboard (deploy/grafana/open-cdn.json) queries only metrics that real nodes
 * export: a real origin, a tier-2 parent edge, a tier-1 edge and steering are started on
 * loopback, their /metrics read, and every metric name in every panel's PromQL must be among
 * them. The Prometheus scrape config (deploy/prometheus/prometheus.yml) must name every node
 * of the default topology on its port, with the `node` label the dashboard's legends use.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { parse as parseYaml } from 'yaml'
import { buildPlan, localPaths } from '../../src/cli/demo/plan.js'
import { loadTopology } from '../../src/cli/demo/topology.js'
import { startTree } from '../helpers/tree.js'
import { root } from '../helpers/repo.js'

const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/open-cdn.json'), 'utf8')) as {
  panels: { type: string; title: string; targets?: { expr: string }[] }[]
}

/** PromQL words that are not metric names. */
const PROMQL = new Set(
  (
    'sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on ignoring ' +
    'group_left group_right bool and or unless offset rate irate increase delta idelta deriv ' +
    'histogram_quantile abs ceil floor round clamp clamp_min clamp_max label_replace label_join vector ' +
    'scalar time sort sort_desc absent absent_over_time avg_over_time max_over_time min_over_time ' +
    'sum_over_time count_over_time last_over_time predict_linear resets changes le inf nan'
  ).split(' '),
)
/** Series Prometheus makes itself for every target. */
const PROMETHEUS_OWN = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped'])

/** The metric names a PromQL expression reads. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$\w+/g, '') // Grafana variables
  const names = new Set<string>()
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g))
    if (!PROMQL.has(m[0].toLowerCase())) names.add(m[0])
  return [...names]
}

/** Names a /metrics page exposes, with the _bucket/_sum/_count series of histograms and summaries. */
function exposed(text: string): Set<string> {
  const out = new Set<string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    out.add(m[1]!)
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(m[1]! + s)
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) out.add(m[1]! + s)
  }
  for (const m of text.matchAll(/^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/gm)) out.add(m[1]!)
  return out
}

t.test('the extractor finds metric names, not functions, labels or variables', async (t) => {
  t.same(
    metricNames(
      'histogram_quantile(0.95, sum by (le, node) (rate(cdn_edge_upstream_fetch_seconds_bucket{tier=~"a|b"}[$__rate_interval])))',
    ),
    ['cdn_edge_upstream_fetch_seconds_bucket'],
  )
  t.same(metricNames('sum by (node) (rate(a_total[1m])) / sum by (node) (rate(b_total[1m]))'), [
    'a_total',
    'b_total',
  ])
})

t.test("every metric the dashboard queries is in a real node's /metrics", async (t) => {
  const tree = await startTree(t)
  // Some traffic, so labelled series exist too (not only their # TYPE lines).
  const res = await request(`${tree.edge.url}/vod/clip/master.m3u8`)
  await res.body.dump()
  await tree.checkNow()
  const names = new Set<string>(PROMETHEUS_OWN)
  for (const url of [tree.origin.url, tree.parent.url, tree.edge.url, tree.steering]) {
    const r = await request(`${url}/metrics`)
    t.equal(r.statusCode, 200, `${url}/metrics answers`)
    for (const n of exposed(await r.body.text())) names.add(n)
  }
  const queries = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((q) => ({ panel: p.title, expr: q.expr })),
  )
  t.ok(queries.length >= 20, `the dashboard has queries (${queries.length})`)
  const used = new Set<string>()
  for (const q of queries) {
    const found = metricNames(q.expr)
    t.ok(found.length >= 1, `${q.panel}: reads a metric`)
    for (const n of found) {
      used.add(n)
      t.ok(names.has(n), `${q.panel}: ${n} is exported by a node`)
    }
  }
  for (const prefix of ['cdn_edge_', 'cdn_origin_', 'cdn_steering_'])
    t.ok(
      [...used].some((n) => n.startsWith(prefix)),
      `the dashboard covers ${prefix}* metrics`,
    )
})

t.test('the Prometheus scrape config names every node of the default topology', async (t) => {
  const text = readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')
  const scraped = new Map<string, number>()
  for (const m of text.matchAll(/targets: \['[^:']+:(\d+)'\]\s*\n\s*labels: \{ node: ([^,}\s]+)/g))
    scraped.set(m[2]!, Number(m[1]))
  const plan = buildPlan(loadTopology(join(root, 'deploy/topology.json')), { paths: localPaths('/tmp/x') })
  t.same(
    Object.fromEntries([...scraped].sort()),
    Object.fromEntries(plan.nodes.map((n) => [n.id, n.port] as const).sort()),
    'one target per node, on its port, labelled with its id',
  )
  for (const job of ['cdn-origin', 'cdn-edge', 'cdn-steering'])
    t.match(text, new RegExp(`job_name: ${job}\\b`))
})

/** Label names each metric of a /metrics page carries (histograms' `le` included). */
function metricLabels(text: string): Set<string> {
  const out = new Set<string>()
  for (const m of text.matchAll(/^[A-Za-z_:][A-Za-z0-9_:]*\{([^}]*)\}/gm))
    for (const l of m[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) out.add(l[1]!)
  return out
}

t.test("no label the scrape config puts on a target is one of that node's own labels", async (t) => {
  // Prometheus (honor_labels false, the default) renames a scraped label that a target label
  // also names to exported_<name> and gives the series the target's value: a target label
  // `tier` turned cdn_edge_requests_total{tier="memory"} into {exported_tier="memory",tier="1"},
  // and the dashboard's tier=~"memory|disk" and `by (tier)` read nothing or the wrong thing.
  const config = parseYaml(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; static_configs: { labels?: Record<string, string> }[] }[]
  }
  const targetLabels = new Map<string, Set<string>>()
  for (const job of config.scrape_configs)
    targetLabels.set(job.job_name, new Set(job.static_configs.flatMap((c) => Object.keys(c.labels ?? {}))))
  t.same([...targetLabels.keys()].sort(), ['cdn-edge', 'cdn-origin', 'cdn-steering'])
  const tree = await startTree(t)
  const res = await request(`${tree.edge.url}/vod/clip/master.m3u8`)
  await res.body.dump()
  await tree.checkNow()
  for (const [job, urls] of [
    ['cdn-origin', [tree.origin.url]],
    ['cdn-edge', [tree.parent.url, tree.edge.url]],
    ['cdn-steering', [tree.steering]],
  ] as const) {
    const own = new Set<string>()
    for (const url of urls)
      for (const l of metricLabels(await (await request(`${url}/metrics`)).body.text())) own.add(l)
    t.ok(own.size > 0, `${job}: its metrics carry labels`)
    t.same(
      [...targetLabels.get(job)!].filter((l) => own.has(l)),
      [],
      `${job}: no target label collides with a metric label`,
    )
  }
})
