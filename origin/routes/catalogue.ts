/** The catalogue API: GET /titles and GET /titles/{title}. Reads the store's entries. */
import type { FastifyInstance } from 'fastify'
import { CdnError } from '../../src/errors.js'
import { assertTitle, masterPath } from '../../src/http/paths.js'
import type { TitleEntry } from '../store/content-store.js'
import type { OriginStore } from '../store/store.js'

function summary(t: TitleEntry) {
  const current = t.versions.find((v) => v.id === t.current)
  return {
    id: t.id,
    current: t.current,
    master: masterPath(t.id),
    updatedAt: t.updatedAt,
    versions: t.versions.length,
    durationSec: current?.durationSec ?? 0,
    bytes: t.versions.reduce((n, v) => n + v.bytes, 0),
    renditions: current?.renditions.map((r) => r.name) ?? [],
  }
}

export function catalogueRoutes(app: FastifyInstance, deps: { store: OriginStore }): void {
  app.get('/titles', async () => ({ titles: (await deps.store.listTitles()).map(summary) }))
  app.get<{ Params: { title: string } }>('/titles/:title', async (req) => {
    const id = assertTitle(req.params.title)
    const entry = await deps.store.readTitle(id)
    if (!entry) throw new CdnError('CDN_ERR_NOT_FOUND', `no title ${id}`)
    return { ...summary(entry), versions: entry.versions }
  })
}
