/** POST /jobs, GET /jobs, GET /jobs/{id}: ingest jobs, behind the operator's bearer token. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CdnError } from '../../src/errors.js'
import { unknownRungs } from '../../src/hls/ladder.js'
import { requireBearer } from '../../src/http/auth.js'
import { assertTitle } from '../../src/http/paths.js'
import { resolveIngestSource } from '../store/ingest-dir.js'
import type { Ffmpeg } from '../transcode/ffmpeg.js'
import { planLadder } from '../transcode/ingest.js'
import type { JobBoard } from '../transcode/job-board.js'
import type { JobQueue, JobSpec } from '../transcode/jobs.js'

export interface JobRouteDeps {
  jobs: JobQueue
  /** With an object store: jobs recorded there, visible from every origin. */
  board: JobBoard | undefined
  adminToken: string | undefined
  ingestDir: string | undefined
  /** Probes every job's source before the answer; without it the job alone checks. */
  ffmpeg: Ffmpeg | undefined
}

/** The protection space named in a 401's challenge (WWW-Authenticate). */
const REALM = 'cdn-origin'

const bodySchema = {
  type: 'object',
  required: ['source', 'title'],
  additionalProperties: false,
  properties: {
    source: { type: 'string', minLength: 1, maxLength: 1024 },
    title: { type: 'string', maxLength: 64 },
    ladder: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 8 },
    format: { type: 'string', enum: ['fmp4', 'ts'] },
    segmentSeconds: { type: 'number', minimum: 1, maximum: 30 },
  },
} as const

export function jobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  const auth = async (req: FastifyRequest, reply: FastifyReply) =>
    requireBearer(req.headers.authorization, deps.adminToken, reply, REALM)

  app.post<{ Body: JobSpec }>(
    '/jobs',
    { onRequest: auth, schema: { body: bodySchema }, bodyLimit: 16 * 1024 },
    async (req, reply) => {
      const body = req.body
      assertTitle(body.title)
      const unknown = unknownRungs(body.ladder ?? [])
      if (unknown.length)
        throw new CdnError('CDN_ERR_BAD_BODY', `unknown ladder rungs: ${unknown.join(', ')}`)
      // Refused now (400, 404) rather than in a failed job. The job keeps the name as given, relative
      // to the ingest directory: its view never shows the local path (resolved again when it runs).
      const file = await resolveIngestSource(deps.ingestDir, body.source)
      // The source is probed before the answer, as the job's first step would (ffprobe reads only
      // its head, within --probe-timeout): a file that is not a video is refused now, 422
      // CDN_ERR_BAD_SOURCE with ffprobe's reason, and rungs of which none fits it (none is ever
      // upscaled) 400 naming those that fit, with the codes the job would fail with, rather than
      // after a 202. Nothing is queued then, nor published.
      if (deps.ffmpeg) await planLadder(deps.ffmpeg, file, body.ladder)
      const job = deps.board
        ? await deps.board.submit({ ...body, sourceName: body.source }, body.source)
        : deps.jobs.submit({ ...body })
      return reply.code(202).header('Location', `/jobs/${job.id}`).send({ id: job.id, state: job.state })
    },
  )
  app.get('/jobs', { onRequest: auth }, async () => ({
    jobs: deps.board ? await deps.board.list() : deps.jobs.list(),
  }))
  app.get<{ Params: { id: string } }>('/jobs/:id', { onRequest: auth }, async (req) => {
    const job = deps.board ? await deps.board.get(req.params.id) : deps.jobs.get(req.params.id)
    if (!job) throw new CdnError('CDN_ERR_NOT_FOUND', `no job ${req.params.id}`)
    return job
  })
}
