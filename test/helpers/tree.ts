/**
 * A whole delivery tree on loopback for tests that look at it from above (steering's view of
 * the fleet, `cdn status`, the metrics a dashboard queries): a real origin holding one short
 * title, a real tier-2 parent edge in front of it, a real tier-1 edge in front of the parent,
 * and a real steering whose fleet file lists the tier-1 edge and, as upstreams, the parent and
 * the origin. The health loop runs only when the test calls checkNow().
 */
import type { Test } from 'tap'
import { buildSteeringApp } from '../../steering/app.js'
import { steeringConfig } from '../../steering/config.js'
import { parseFleet } from '../../steering/registry.js'
import { startEdge } from './edge.js'
import { ingestedStore, startOrigin } from './origin.js'
import { PLACES } from './steering.js'

/** `metricsToken`: steering's --metrics-token (which also guards the upstreams' details in /edges). */
export async function startTree(t: Test, opts: { metricsToken?: string } = {}) {
  const store = await ingestedStore(t, { titles: [{ id: 'clip', seconds: 4 }] })
  const origin = await startOrigin(t, { store, id: 'origin' })
  const parent = await startEdge(t, { upstream: origin.url, id: 'fra-parent' })
  const edge = await startEdge(t, { upstream: parent.url, id: 'rome-1', capacity: 1e8 })
  const registry = parseFleet({
    edges: [{ id: 'rome-1', url: edge.url, site: 'rome', ...PLACES.rome, capacityBytesPerSec: 1e8 }],
    upstreams: [
      {
        id: 'fra-parent',
        url: parent.url,
        role: 'edge',
        site: 'frankfurt',
        lat: 50.11,
        lon: 8.68,
        upstream: 'origin',
        serves: ['rome-1'],
      },
      { id: 'origin', url: origin.url, role: 'origin' },
    ],
  })
  const app = await buildSteeringApp({
    // A check fails only where a test makes it fail (a node it closed refuses at once): the
    // timeout is far above any answer of a live node on a busy machine, as startSteering's.
    config: steeringConfig({
      checkInterval: 3_600_000,
      checkTimeout: 30_000,
      failAfter: 2,
      recoverAfter: 1,
      ...(opts.metricsToken ? { metricsToken: opts.metricsToken } : {}),
    }),
    registry,
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const steering = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  /** One health round for the edges and one for the upstreams. */
  const checkNow = () => Promise.all([app.steering.health.checkNow(), app.steering.upstreams.checkNow()])
  return { origin, parent, edge, steering, app, checkNow }
}
