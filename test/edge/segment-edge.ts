/**
 * An edge in front of an upstream of 40 KB immutable segments, with room on disk for two of
 * them and memory for every repeat: the setup of the request-path tests of the disk tier's
 * admission (admission-path.test.ts, demand-path.test.ts).
 */
import type { Test } from 'tap'
import type { TieredStore } from '../../edge/cache/tiered-store.js'
import type { EdgeConfig } from '../../edge/config/spec.js'
import { startEdge } from '../helpers/edge.js'
import { startUpstream } from './upstream-server.js'

export async function segmentEdge(
  t: Test,
  policy: Partial<Pick<EdgeConfig, 'diskAdmission' | 'diskEviction'>>,
) {
  const body = Buffer.alloc(40_000, 7)
  const up = await startUpstream(t, {
    '/vod/:title/v1/720p/:file': async (_req, reply) =>
      reply
        .header('cache-control', 'public, max-age=31536000, immutable')
        .header('content-type', 'video/iso.segment')
        .send(body),
  })
  const edge = await startEdge(t, { upstream: up.url, ...policy, diskSize: 90_000, memorySize: 1e6 })
  return { up, edge, store: edge.app.edge.store as TieredStore }
}
