/** Operator API (bearer token): purge a title from both tiers, summarise what is held. */
import type { FastifyInstance } from 'fastify'
import { requireBearer } from '../../src/http/auth.js'
import { assertTitle } from '../../src/http/paths.js'
import type { CacheStore } from '../cache/store.js'

/** The protection space of the edge's operator API (admin, prefill), named in a 401's challenge. */
export const OPERATOR_REALM = 'cdn-edge'

export interface AdminDeps {
  adminToken: string | undefined
  store: CacheStore
  /** Waits for fetches of the title still being written, so a purge is not undone by them. */
  settle: (title: string) => Promise<void>
}

export async function adminRoutes(app: FastifyInstance, d: AdminDeps): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    requireBearer(req.headers.authorization, d.adminToken, reply, OPERATOR_REALM)
  })
  app.delete<{ Params: { title: string } }>('/admin/cache/vod/:title', async (req) => {
    const title = assertTitle(req.params.title)
    await d.settle(title)
    const purged = await d.store.purgeTitle(title)
    return { title, purged }
  })
  app.get('/admin/cache', async () => {
    const s = d.store.stats()
    const titles = d.store.titles().map((title) => {
      const versions = d.store.titleIndex(title)
      let objects = 0
      for (const keys of versions.values()) objects += keys.size
      return { title, versions: [...versions.keys()].sort(), objects }
    })
    return {
      memory: s.memory,
      disk: s.disk,
      diskErrors: s.diskErrors ?? 0,
      titles,
    }
  })
}
