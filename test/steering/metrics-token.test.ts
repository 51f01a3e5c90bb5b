/**
 * --metrics-token on steering: /metrics asks for the bearer token when one is set and is open as
 * before when none is; /healthz stays open. A token shorter than 8 characters is refused.
 */
import t, { type Test } from 'tap'
import { steeringConfig } from '../../steering/config.js'
import { checkGuardedMetrics, openMetrics } from '../helpers/metrics-token.js'
import { startContractEdge, startSteering } from '../helpers/steering.js'

const TOKEN = 'steering-metrics-token'

/** One edge in Rome that answers its /status, checked once: the fleet steering counts in. */
async function oneEdgeSteering(t: Test, options: { metricsToken?: string } = {}) {
  const edge = await startContractEdge(t, 'rome-1')
  const s = await startSteering(
    t,
    [{ id: 'rome-1', url: edge.url, site: 'rome', lat: 41.9, lon: 12.5 }],
    options,
  )
  await s.health.checkNow()
  return s
}

t.test('with --metrics-token, /metrics asks for it', async (t) => {
  const s = await oneEdgeSteering(t, { metricsToken: TOKEN })
  const { body } = await checkGuardedMetrics(t, s.url, 'cdn-steering-metrics', TOKEN, ['/healthz'])
  t.match(body, /^cdn_steering_edges\{state="in"\} 1$/m, "steering's metrics")
})

t.test('without --metrics-token, /metrics is open as before', async (t) => {
  const s = await oneEdgeSteering(t)
  const { status, body } = await openMetrics(s.url)
  t.equal(status, 200)
  t.match(body, /^cdn_steering_edges\{state="in"\} 1$/m)
})

t.test('a token shorter than 8 characters is refused', async (t) => {
  t.throws(() => steeringConfig({ metricsToken: 'short' }), {
    code: 'CDN_ERR_CONFIG',
    message: /--metrics-token: must be at least 8 characters/,
  })
  t.equal(steeringConfig({ metricsToken: TOKEN }).metricsToken, TOKEN, '8 or more is taken')
})
