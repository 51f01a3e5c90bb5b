/**
 * --metrics-token on the edge: /metrics (whose cdn_edge_upstream_* labels name the upstreams,
 * internal addresses) asks for the bearer token when one is set, on a single process and on a
 * cluster's primary (the built CLI with --workers: run `npm run build` first), and is open as
 * before when none is; /status and /healthz stay open. A token shorter than 8 characters is
 * refused at start, from the flag and from the environment.
 */
import t from 'tap'
import { METRICS_REALM } from '../../edge/routes/ops.js'
import { command as edgeCommand } from '../../src/cli/edge.js'
import { runCommand } from '../helpers/cli.js'
import { startEdge, tempDir } from '../helpers/edge.js'
import { checkGuardedMetrics, openMetrics } from '../helpers/metrics-token.js'
import { startCluster } from './cluster-process.js'
import { startUpstream } from './upstream-server.js'

/** A node that starts after all (the token not refused) stops at once. */
const STOP = Promise.resolve('SIGTERM')
const TOKEN = 'edge-metrics-token'

t.test('with --metrics-token, /metrics asks for it and a refusal names no upstream', async (t) => {
  const up = await startUpstream(t, {})
  const upstreamHost = new URL(up.url).host
  const edge = await startEdge(t, { upstream: up.url, metricsToken: TOKEN })
  const { body, refusals } = await checkGuardedMetrics(t, edge.url, METRICS_REALM, TOKEN)
  t.match(body, `cdn_edge_upstream_up{upstream="${up.url}"} 1`, 'the served metrics name the upstream')
  for (const r of refusals) t.notMatch(r, upstreamHost, 'a refusal does not show the upstream address')
})

t.test('without --metrics-token, /metrics is open as before', async (t) => {
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url })
  const { status, body } = await openMetrics(edge.url)
  t.equal(status, 200)
  t.match(body, `cdn_edge_upstream_up{upstream="${up.url}"} 1`)
})

t.test("a cluster's primary asks for the token (read from CDN_EDGE_METRICS_TOKEN)", async (t) => {
  const up = await startUpstream(t, {})
  const c = await startCluster(t, up.url, [], { env: { CDN_EDGE_METRICS_TOKEN: TOKEN } })
  const { body, refusals } = await checkGuardedMetrics(t, c.url, METRICS_REALM, TOKEN)
  t.match(body, `cdn_edge_upstream_up{upstream="${up.url}"} 1`, 'the host-wide metrics')
  for (const r of refusals)
    t.notMatch(r, new URL(up.url).host, 'a refusal does not show the upstream address')
})

t.test('a token shorter than 8 characters is refused at start', async (t) => {
  const args = ['--upstream', 'http://127.0.0.1:9', '--host', '127.0.0.1', '--port', '0']
  args.push('--cache-dir', tempDir(t), '--log-level', 'silent')
  const flag = await runCommand(edgeCommand, [...args, '--metrics-token', 'short'], {}, STOP)
  t.equal(flag.code, 2)
  t.match(flag.err, /--metrics-token: must be at least 8 characters/)
  const env = await runCommand(edgeCommand, args, { CDN_METRICS_TOKEN: 'short' }, STOP)
  t.equal(env.code, 2, 'CDN_METRICS_TOKEN, the name every role reads, too')
  t.match(env.err, /--metrics-token: must be at least 8 characters/)
})
