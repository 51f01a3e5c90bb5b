/** Operator API (bearer token): purge a title from both tiers, summarise what is held. */
import type { FastifyInstance } from 'fastify'
import { requireBearer } from '../../src/http/auth.js'
import { assertTitle } from '../../src/http/paths.js'
import type { CacheStore, StoreStats } from '../cache/store.js'

/** The protection space of the edge's operator API (admin, prefill), named in a 401's challenge. */
export const OPERATOR_REALM = 'cdn-edge'

export interface AdminDeps {
  adminToken: string | undefined
  store: CacheStore
  /**
   * Stops the title's running fetches from storing anything and from being joined (no wait:
   * single-flight.ts purge), so a purge is not undone by them.
   */
  stopFetches: (title: string) => void
}

/** What GET /admin/cache summarises: the tiers' stats, and the keys held by title and version. */
export interface CacheParts {
  stats: StoreStats
  titles: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>
}

/** A store's parts (a cluster primary adds its workers' memory tiers: edge/cluster/host-ops.ts). */
export function storeParts(store: CacheStore): CacheParts {
  return { stats: store.stats(), titles: new Map(store.titles().map((t) => [t, store.titleIndex(t)])) }
}

/** GET /admin/cache's answer: each title's versions, and its objects (keys) once each. */
export function cacheSummary(p: CacheParts): {
  memory: StoreStats['memory']
  disk: StoreStats['disk']
  diskErrors: number
  titles: { title: string; versions: string[]; objects: number }[]
} {
  const titles = [...p.titles.keys()].sort().map((title) => {
    const versions = p.titles.get(title)!
    let objects = 0
    for (const keys of versions.values()) objects += keys.size
    return { title, versions: [...versions.keys()].sort(), objects }
  })
  return { memory: p.stats.memory, disk: p.stats.disk, diskErrors: p.stats.diskErrors ?? 0, titles }
}

export async function adminRoutes(app: FastifyInstance, d: AdminDeps): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    requireBearer(req.headers.authorization, d.adminToken, reply, OPERATOR_REALM)
  })
  app.delete<{ Params: { title: string } }>('/admin/cache/vod/:title', async (req) => {
    const title = assertTitle(req.params.title)
    d.stopFetches(title)
    const purged = await d.store.purgeTitle(title)
    return { title, purged }
  })
  app.get('/admin/cache', async () => cacheSummary(storeParts(d.store)))
}
