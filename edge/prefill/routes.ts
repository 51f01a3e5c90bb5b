/**
 * Prefill's operator API, a fastify plugin the edge app registers. Every route needs the
 * admin bearer token. JSON bodies are parsed here (scoped to this plugin) so bad JSON is a
 * 400 naming `body` like every other refusal; errors go to the app's one error handler.
 *
 *   POST   /admin/prefill        {titles} | {popularity}, options  → 202 {id} (200 plan if dryRun)
 *   GET    /admin/prefill        every job known, newest last
 *   GET    /admin/prefill/:id    state, objects/bytes done/total, rate, ETA, per-title results
 *   DELETE /admin/prefill/:id    cancel
 *   GET    /admin/popularity     the decayed request ranking, shaped like {popularity}
 */
import type { FastifyInstance } from 'fastify'
import { CdnError } from '../../src/errors.js'
import { requireBearer } from '../../src/http/auth.js'
import { OPERATOR_REALM } from '../routes/admin.js'
import type { Plan } from './fit.js'
import type { PrefillJobs } from './jobs.js'
import type { Popularity } from './popularity.js'
import { badField, parsePrefillRequest, type RequestLimits } from './request.js'

export interface PrefillRoutesOptions {
  readonly jobs: PrefillJobs
  readonly popularity: Popularity
  readonly adminToken: string | undefined
  readonly limits: RequestLimits
}

/** A plan without its object lists (those stay on disk), for answers and reports. */
export function planView(plan: Plan) {
  return {
    ...plan,
    titles: plan.titles.map(({ plan: p, decision, reason }) => ({
      title: p.title,
      rank: p.rank,
      ...(p.weight === undefined ? {} : { weight: p.weight }),
      ...(p.version ? { version: p.version } : {}),
      decision,
      ...(reason ? { reason } : {}),
      ...(p.error ? { error: p.error } : {}),
      objects: p.objects.length,
      bytesTotal: p.bytesTotal,
      bytesHeld: p.bytesHeld,
      bytesToFetch: p.bytesTotal - p.bytesHeld,
      estimatedObjects: p.estimatedObjects,
      renditions: p.renditions,
    })),
  }
}

export async function prefillRoutes(app: FastifyInstance, opts: PrefillRoutesOptions): Promise<void> {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: 1 << 20 },
    (_req, body, done) => {
      try {
        done(null, body === '' ? undefined : JSON.parse(body as string))
      } catch (err) {
        done(badField('body', `not valid JSON: ${(err as Error).message}`), undefined)
      }
    },
  )
  app.addHook('onRequest', async (req, reply) => {
    requireBearer(req.headers.authorization, opts.adminToken, reply, OPERATOR_REALM)
  })

  app.post('/admin/prefill', async (req, reply) => {
    const { spec, dryRun } = parsePrefillRequest(req.body, opts.limits)
    if (dryRun) return reply.code(200).send({ dryRun: true, plan: planView(await opts.jobs.dryRun(spec)) })
    const { id, existing } = await opts.jobs.submit(spec)
    return reply
      .code(202)
      .header('location', `/admin/prefill/${id}`)
      .send({ id, existing, state: opts.jobs.get(id)?.state })
  })

  app.get('/admin/prefill', async () => ({ jobs: opts.jobs.list() }))

  app.get<{ Params: { id: string } }>('/admin/prefill/:id', async (req) => {
    const view = opts.jobs.get(req.params.id)
    if (!view) throw new CdnError('CDN_ERR_NOT_FOUND', `no prefill job ${req.params.id}`)
    return view
  })

  app.delete<{ Params: { id: string } }>('/admin/prefill/:id', async (req) => opts.jobs.cancel(req.params.id))

  app.get<{ Querystring: { limit?: string } }>('/admin/popularity', async (req) => {
    const raw = req.query.limit
    const limit = raw === undefined ? 100 : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw badField('limit', `expected an integer from 1 to 10000 (got ${JSON.stringify(raw)})`)
    return { popularity: opts.popularity.ranking(limit), tracked: opts.popularity.size }
  })
}
