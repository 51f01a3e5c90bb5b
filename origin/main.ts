/**
 * Starts an origin from validated options: builds the store, ffmpeg and the app, listens,
 * queues the sample titles, and closes everything (jobs first, in the app's onClose).
 * Only the CLI calls this; tests use buildOriginApp directly.
 */
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { systemClock } from '../src/clock.js'
import { tlsProblems } from '../src/config/tls-options.js'
import { CdnError } from '../src/errors.js'
import { tokenProblems } from '../src/http/auth.js'
import { refuseConnect } from '../src/http/one-answer.js'
import { roleTls } from '../src/http/role-tls.js'
import { closeServer, listenServer } from '../src/http/tls-server.js'
import { buildOriginApp, type OriginApp } from './app.js'
import type { OriginOptions } from './config.js'
import { createOriginMetrics } from './metrics.js'
import { ensureSamples, parseSamples, parseSize } from './samples.js'
import { openStore } from './store/open-store.js'
import { Ffmpeg } from './transcode/ffmpeg.js'

export interface RunningOrigin {
  url: string
  app: OriginApp
  /** With --http-port: the plain-HTTP listener's URL. */
  httpUrl?: string
  /** Reads the certificate files again (SIGHUP); false: kept the ones in use. */
  reloadTls(): boolean
  /** Resolves when the sample jobs (if any) have been queued. */
  samplesQueued: Promise<string[]>
  close(): Promise<void>
}

export async function runOrigin(o: OriginOptions, searchPath: string | undefined): Promise<RunningOrigin> {
  problemsOf(tokenProblems('--metrics-token', o.metricsToken))
  const samples = parseSamples(o.samples)
  const size = parseSize(o.sampleSize)
  const ffmpeg = new Ffmpeg({
    ffmpegPath: o.ffmpegPath,
    ffprobePath: o.ffprobePath,
    probeTimeoutMs: o.probeTimeout,
    searchPath,
  })
  const store = await openStore({ ...o, clock: systemClock })
  if (o.ingestDir) await mkdir(resolve(o.ingestDir), { recursive: true })
  problemsOf(tlsProblems(o))
  // The app's logger, once it exists, hears certificate reloads.
  const logger: { log?: OriginApp['log'] } = {}
  const tls = roleTls(o, () => logger.log)
  const app = buildOriginApp({
    ...(tls ? { tls } : {}),
    config: {
      id: o.id,
      adminToken: o.adminToken,
      metricsToken: o.metricsToken,
      ingestDir: o.ingestDir ? resolve(o.ingestDir) : undefined,
      maxQueuedJobs: Math.max(o.maxQueuedJobs, samples.length),
      jobConcurrency: o.jobConcurrency,
      segmentSeconds: o.segmentSeconds,
      format: o.format,
      preset: o.preset,
      startupBitrate: o.startupBitrate,
      logLevel: o.logLevel,
      follower: o.follower,
      jobPollMs: o.jobPollInterval,
      jobHistory: o.jobHistory,
      jobHistoryMinAgeMs: o.jobHistoryMinAge,
    },
    store,
    ffmpeg,
    clock: systemClock,
    metrics: createOriginMetrics({ defaultMetrics: true }),
  })
  logger.log = app.log
  // CONNECT gets its 400 on the plain server too (the HTTPS one refuses it itself).
  if (!tls) refuseConnect(app.server)
  const stop = new AbortController()
  const plain = tls?.plain
  app.addHook('onClose', async () => {
    stop.abort()
    tls?.certs.close()
    if (plain) await closeServer(plain)
    await store.close()
  })
  const described = store.describe()
  app.log.info({ store: described }, storeRule(described.casMode, o.follower))
  const { removed, kept, orphansKilled } = store.leftovers
  if (removed || kept)
    app.log.info(
      { leftovers: store.leftovers },
      `store: removed ${removed} leftover(s) of crashed processes (staging, temp files; ${orphansKilled} orphaned ffmpeg killed); kept ${kept} of live processes`,
    )
  await app.listen({ host: o.host, port: o.port })
  const addr = app.server.address()
  const port = addr && typeof addr === 'object' ? addr.port : o.port
  const host = o.host.includes(':') ? `[${o.host}]` : o.host
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`
  const httpPort = plain ? await listenServer(plain, o.httpPort ?? 0, o.host) : undefined
  const samplesQueued = ensureSamples({
    samples,
    size,
    store,
    jobs: app.jobs,
    ffmpeg,
    signal: stop.signal,
    onGenerate: (title) => app.log.info({ title }, 'sample title: generating its source'),
  }).then(
    (ids) => {
      for (const id of ids) app.log.info({ job: id }, 'sample title queued')
      return ids
    },
    (err: unknown) => {
      // Closing aborts a generation in progress (its ffmpeg killed): not a failure.
      if (stop.signal.aborted) app.log.info('sample titles: generation stopped by the close')
      else app.log.error({ err }, 'could not prepare the sample titles')
      return []
    },
  )
  return {
    url,
    ...(httpPort !== undefined ? { httpUrl: `http://${host}:${httpPort}` } : {}),
    reloadTls: () => tls?.certs.reload() ?? false,
    app,
    samplesQueued,
    close: async () => {
      stop.abort()
      await samplesQueued
      await app.close()
    },
  }
}

function problemsOf(problems: string[]): void {
  if (problems.length)
    throw new CdnError('CDN_ERR_CONFIG', `cdn origin: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
}

/** The start log's line on who may write the store's pointers. */
export function storeRule(casMode: string, follower: boolean): string {
  if (casMode === 'conditional')
    return 'store: pointers swapped with conditional writes; any origin may ingest (jobs claimed by a conditional create)'
  if (casMode === 'etcd')
    return 'store: the catalogue (pointers, job claims) in etcd, swapped by transactions on revisions; any origin may ingest'
  if (casMode === 'single-writer')
    return follower
      ? 'store: no conditional writes: SINGLE-WRITER rule; this origin is a follower (records jobs, never writes pointers)'
      : 'store: no conditional writes: SINGLE-WRITER rule; this origin is THE writer (runs every job, writes every pointer): start the others with --follower'
  return 'store: a local directory; its pointers are swapped under a lock file per title (other processes, e.g. cdn ingest --store, may write it too)'
}
