/**
 * The origin app factory: the content store over HTTP, the catalogue API, ingest jobs,
 * health and metrics. Everything it uses is passed in; it creates only the job queue, which
 * it closes in onClose. `origin/main.ts` (or a test) listens.
 */
import type { RoleTls } from '../src/http/role-tls.js'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import { type Clock, systemClock } from '../src/clock.js'
import { CdnError } from '../src/errors.js'
import { requireMetricsToken } from '../src/http/auth.js'
import { fastifyNoRoute, jsonErrorHandler, jsonFrameworkErrors } from '../src/http/errors.js'
import { answerClientError, answerHalfClosed, trackRequest } from '../src/http/one-answer.js'
import { originForm } from '../src/http/origin-form.js'
import { HEALTHZ } from '../src/http/status.js'
import { loggerOptions } from '../src/log.js'
import { createOriginMetrics, type OriginMetrics } from './metrics.js'
import { catalogueRoutes } from './routes/catalogue.js'
import { jobRoutes } from './routes/jobs.js'
import { OriginTraffic, statusRoute } from './routes/status.js'
import { unroutedMethod, vodCors, vodRoutes } from './routes/vod.js'
import type { OriginStore } from './store/store.js'
import type { Ffmpeg } from './transcode/ffmpeg.js'
import { resolveIngestSource } from './store/ingest-dir.js'
import { S3Store } from './store/s3-store.js'
import { ingest } from './transcode/ingest.js'
import { JobBoard } from './transcode/job-board.js'
import { DEFAULT_JOB_HISTORY, DEFAULT_JOB_HISTORY_MIN_AGE_MS } from './transcode/job-retention.js'
import { JobQueue, type JobSpec } from './transcode/jobs.js'
import type { SegmentFormat } from './transcode/ladder-args.js'

export interface OriginAppConfig {
  /** Node id, reported in /status. */
  id?: string | undefined
  /** Bearer token for POST/GET /jobs; without one the job API answers 403. */
  adminToken?: string | undefined
  /** Bearer token GET /metrics asks for; without one /metrics is open. */
  metricsToken?: string | undefined
  /** Directory POST /jobs sources are confined to. */
  ingestDir?: string | undefined
  /** Jobs waiting at most (beyond: 503). */
  maxQueuedJobs: number
  /** Jobs transcoding at once (each is one ffmpeg using every core). */
  jobConcurrency: number
  /** Defaults for jobs that do not say. */
  segmentSeconds: number
  format: SegmentFormat
  preset: string
  /** With an object store: this origin only records jobs; the writer (or any runner) runs them. */
  follower?: boolean | undefined
  /** With an object store: how often a job-running origin looks for others' jobs, ms. */
  jobPollMs?: number | undefined
  /** Settled jobs kept, the newest (in memory; with an object store, its records too). */
  jobHistory?: number | undefined
  /** Settled jobs finished less than this ago are kept beyond jobHistory, ms. */
  jobHistoryMinAgeMs?: number | undefined
  /** Bits/s of the variant masters list first (see writeMasterPlaylist); default 2 Mbit/s. */
  startupBitrate?: number | undefined
  logLevel: string
}

/** The protection space of the origin's /metrics, named in a 401's challenge. */
const METRICS_REALM = 'cdn-origin-metrics'

/**
 * The file a job outside --ingest-dir reads (a generated sample, samples.ts), its `source` only a
 * name to show. A symbol: no request body or job record (JSON) can name a file this way.
 */
export const SOURCE_FILE: unique symbol = Symbol('source file')
export type LocalFileJobSpec = JobSpec & { [SOURCE_FILE]: string }

export const DEFAULT_ORIGIN_APP_CONFIG: Readonly<OriginAppConfig> = Object.freeze({
  maxQueuedJobs: 16,
  jobConcurrency: 1,
  segmentSeconds: 4,
  format: 'fmp4',
  preset: 'veryfast',
  logLevel: 'silent',
})

export interface OriginDeps {
  config: Partial<OriginAppConfig>
  store: OriginStore
  /** Needed to run jobs; without it POST /jobs fails with CDN_ERR_FFMPEG_MISSING. */
  ffmpeg?: Ffmpeg | undefined
  clock?: Clock
  metrics?: OriginMetrics
  /** HTTPS on the app's server (src/http/role-tls.ts); its plain listener is the caller's to listen. */
  tls?: RoleTls
}

export type OriginApp = FastifyInstance & {
  jobs: JobQueue
  metrics: OriginMetrics
  board: JobBoard | undefined
}

export function buildOriginApp(deps: OriginDeps): OriginApp {
  const config: OriginAppConfig = { ...DEFAULT_ORIGIN_APP_CONFIG, ...deps.config }
  const clock = deps.clock ?? systemClock
  const metrics = deps.metrics ?? createOriginMetrics()
  const traffic = new OriginTraffic(clock)
  const app = Fastify({
    logger: loggerOptions(config.logLevel, 'origin'),
    // Paths are checked against the contract's patterns; never rewrite them first.
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
    // Unknown fields in a JSON body are refused (400), not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // Per-request lines only at debug/trace: segment traffic would drown everything else.
    logController: new LogController({
      disableRequestLogging: config.logLevel !== 'debug' && config.logLevel !== 'trace',
    }),
    // What node or fastify refuses before any route (a request node cannot parse, a head too
    // large, a path that does not decode) gets the one JSON error body too, as on every node; a
    // client error is answered after the answers before it (src/http/one-answer.ts).
    clientErrorHandler: answerClientError,
    // RFC 9112 §3.2.2: an absolute-form target (`GET http://origin/vod/a/master.m3u8`) is taken
    // in origin-form, its authority as the Host, before anything reads the path, as on the edge.
    rewriteUrl: (req) => {
      originForm(req)
      return req.url ?? '/'
    },
    frameworkErrors: (err, req, reply) => {
      if (req.url.startsWith('/vod/')) vodCors(reply)
      jsonFrameworkErrors(err, req, reply)
    },
    ...(deps.tls ? { serverFactory: deps.tls.serverFactory } : {}),
  })

  // A job names its source as the client gave it, relative to --ingest-dir: that is what its view
  // (GET /jobs, the job records) shows, never a local path. The file is found when the job starts,
  // confined again (a symlink swapped in since the submit is refused); a sample names its own.
  const sourceFile = async (spec: JobSpec | LocalFileJobSpec): Promise<string> =>
    SOURCE_FILE in spec ? spec[SOURCE_FILE] : resolveIngestSource(config.ingestDir, spec.source)

  const jobs = new JobQueue({
    clock,
    maxQueued: config.maxQueuedJobs,
    concurrency: config.jobConcurrency,
    maxHistory: config.jobHistory ?? DEFAULT_JOB_HISTORY,
    minAgeMs: config.jobHistoryMinAgeMs ?? DEFAULT_JOB_HISTORY_MIN_AGE_MS,
    onState: (state, durationSec) => {
      metrics.job(state, durationSec)
      metrics.setJobGauge(jobs.counts())
    },
    onError: (id, err) => app.log.warn({ job: id, err }, 'ingest job failed'),
    onChange: (view) => board?.onChange(view),
    run: async (spec, onProgress, signal) => {
      if (!deps.ffmpeg) throw new CdnError('CDN_ERR_FFMPEG_MISSING', 'this origin was started without ffmpeg')
      const result = await ingest(await sourceFile(spec), {
        title: spec.title,
        store: deps.store,
        ladder: spec.ladder,
        format: spec.format ?? config.format,
        segmentSeconds: spec.segmentSeconds ?? config.segmentSeconds,
        preset: config.preset,
        startupBitrate: config.startupBitrate,
        ffmpeg: deps.ffmpeg,
        clock,
        onProgress,
        signal,
      })
      return { version: result.version.id }
    },
  })

  // With an object store, jobs are recorded in it and claimed by one origin (job-board.ts).
  const store = deps.store
  const board =
    store instanceof S3Store
      ? new JobBoard({
          store,
          queue: jobs,
          owner: config.id ?? 'origin',
          runner: !config.follower,
          // Checked at the claim (an unreadable source fails the job at once); the job keeps the
          // name, and its file is found when it runs (sourceFile).
          resolveSource: async (name) => {
            await resolveIngestSource(config.ingestDir, name)
            return name
          },
          clock,
          pollMs: config.jobPollMs ?? 1000,
          history: config.jobHistory ?? DEFAULT_JOB_HISTORY,
          minAgeMs: config.jobHistoryMinAgeMs ?? DEFAULT_JOB_HISTORY_MIN_AGE_MS,
          onError: (err) => app.log.warn({ err }, 'job record'),
        })
      : undefined

  // A request no route takes: a method fastify does not know at all skips the not-found handler.
  app.setErrorHandler((err, req, reply) =>
    fastifyNoRoute(err) ? unroutedMethod(req, reply) : jsonErrorHandler(err, req, reply),
  )
  app.setNotFoundHandler(unroutedMethod)
  answerHalfClosed(app.server)
  app.addHook('onRequest', async (req, reply) => trackRequest(req.raw, reply.raw))
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.request(route, req.method, reply.statusCode, reply.elapsedTime / 1000)
    traffic.request()
  })
  app.addHook('onReady', async () => board?.start())
  app.addHook('onClose', async () => {
    await board?.stop()
    await jobs.close()
    await board?.flush()
  })

  // /status counts the same bytes as the Prometheus counter.
  const counted: OriginMetrics = {
    ...metrics,
    bytesSent(n) {
      metrics.bytesSent(n)
      traffic.bytes(n)
    },
  }
  vodRoutes(app, { store: deps.store, metrics: counted })
  statusRoute(app, { id: config.id ?? 'origin', traffic, store: deps.store, jobs, clock })
  catalogueRoutes(app, { store: deps.store })
  jobRoutes(app, {
    jobs,
    board,
    adminToken: config.adminToken,
    ingestDir: config.ingestDir,
    ffmpeg: deps.ffmpeg,
  })
  app.get('/healthz', async () => HEALTHZ)
  app.get('/metrics', async (req, reply) => {
    requireMetricsToken(req.headers.authorization, config.metricsToken, reply, METRICS_REALM)
    metrics.setJobGauge(jobs.counts())
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  return Object.assign(app, { jobs, metrics, board })
}
