/**
 * --metrics-token on the origin: /metrics asks for the bearer token when one is set and is open
 * as before when none is; /status and /healthz stay open. A token shorter than 8 characters is
 * refused at start, from the flag and from the environment.
 */
import t from 'tap'
import { command as originCommand } from '../../src/cli/origin.js'
import { runCommand } from '../helpers/cli.js'
import { checkGuardedMetrics, openMetrics } from '../helpers/metrics-token.js'
import { startOrigin, tempDir } from '../helpers/origin.js'

/** A node that starts after all (the token not refused) stops at once. */
const STOP = Promise.resolve('SIGTERM')
const TOKEN = 'origin-metrics-token'

t.test('with --metrics-token, /metrics asks for it', async (t) => {
  const origin = await startOrigin(t, { store: await tempDir(t), metricsToken: TOKEN })
  const { body } = await checkGuardedMetrics(t, origin.url, 'cdn-origin-metrics', TOKEN)
  t.match(body, /^cdn_origin_/m, "the origin's metrics")
})

t.test('without --metrics-token, /metrics is open as before', async (t) => {
  const origin = await startOrigin(t, { store: await tempDir(t) })
  const { status, body } = await openMetrics(origin.url)
  t.equal(status, 200)
  t.match(body, /^cdn_origin_/m)
})

t.test('a token shorter than 8 characters is refused at start', async (t) => {
  const args = ['--store', await tempDir(t), '--host', '127.0.0.1', '--port', '0', '--log-level', 'silent']
  const flag = await runCommand(originCommand, [...args, '--metrics-token', 'short'], {}, STOP)
  t.equal(flag.code, 2)
  t.match(flag.err, /--metrics-token: must be at least 8 characters/)
  const env = await runCommand(originCommand, args, { CDN_ORIGIN_METRICS_TOKEN: '1234567' }, STOP)
  t.equal(env.code, 2, 'from CDN_ORIGIN_METRICS_TOKEN too')
  t.match(env.err, /--metrics-token: must be at least 8 characters/)
})
