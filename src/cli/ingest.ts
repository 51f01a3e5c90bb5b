/**
 * `cdn ingest SOURCE --title ID --store DIR`: transcode locally into a store, or with
 * `--origin URL --token T` submit the job to a running origin (SOURCE relative to its ingest
 * directory) and follow it. A progress bar on a terminal, plain lines otherwise; non-zero
 * exit when the job fails.
 */
import { FFMPEG_OPTIONS } from '../config/ffmpeg-options.js'
import { Ffmpeg } from '../../origin/transcode/ffmpeg.js'
import { STORE_OPTIONS, type StoreClientOptions, type TranscodeOptions } from '../../origin/config.js'
import { openStore } from '../../origin/store/open-store.js'
import type { OriginStore } from '../../origin/store/store.js'
import { ingest } from '../../origin/transcode/ingest.js'
import { type CommandSpec, parseCommand } from '../config/options.js'
import { CdnError, isCdnError } from '../errors.js'
import { DEFAULT_STARTUP_BITRATE } from '../hls/playlist.js'
import type { CliCommand, CliIo } from './command.js'
import { CA_OPTIONS, CliHttp } from './http-client.js'
import { createProgress } from './progress.js'

export interface IngestCliOptions extends StoreClientOptions, TranscodeOptions {
  title: string
  store: string | undefined
  origin: string | undefined
  token: string | undefined
  ca: string[]
  ladder: string[]
  pollInterval: number
}

export const INGEST_SPEC: CommandSpec = {
  name: 'cdn ingest',
  summary:
    'Transcode SOURCE into an HLS ladder (H.264/AAC, aligned keyframes) and publish it as a new version of a title.',
  usage: 'cdn ingest SOURCE --title ID (--store DIR | --origin URL --token TOKEN [--ca FILE]) [options]',
  positionals: 'SOURCE',
  envPrefix: 'CDN_INGEST',
  options: {
    title: { type: 'string', required: true, arg: 'ID', help: 'title id, [a-z0-9][a-z0-9-]{0,63}' },
    store: {
      type: 'string',
      arg: 'DIR',
      help: 'content store to publish into (local ingest): a directory or s3://BUCKET/PREFIX',
    },
    ...STORE_OPTIONS,
    origin: {
      type: 'url',
      help: 'submit to this running origin instead; SOURCE is then relative to its --ingest-dir',
    },
    token: {
      type: 'string',
      env: 'CDN_ADMIN_TOKEN',
      arg: 'TOKEN',
      help: "the origin's admin bearer token (required with --origin)",
    },
    ...CA_OPTIONS,
    ladder: {
      type: 'list',
      default: [],
      arg: 'RUNG',
      help: 'rungs to keep, e.g. 720p,360p (default: all that fit)',
    },
    format: { type: 'string', default: 'fmp4', choices: ['fmp4', 'ts'], help: 'segment format' },
    segmentSeconds: { type: 'number', default: 4, min: 1, max: 30, help: 'segment duration, seconds' },
    preset: {
      type: 'string',
      default: 'veryfast',
      choices: ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow'],
      help: 'x264 preset (local ingest)',
    },
    startupBitrate: {
      type: 'int',
      default: DEFAULT_STARTUP_BITRATE,
      min: 0,
      arg: 'BITS/S',
      help: 'the master lists first the highest rendition peaking at most this (local ingest; an origin uses its own)',
    },
    pollInterval: {
      type: 'duration',
      default: 500,
      min: 50,
      max: 60_000,
      help: 'how often to poll the origin for job progress',
    },
    ...FFMPEG_OPTIONS,
  },
}

async function local(io: CliIo, source: string, o: IngestCliOptions): Promise<number> {
  const bar = createProgress(io.stdout, `ingest ${o.title}`)
  const ffmpeg = new Ffmpeg({
    ffmpegPath: o.ffmpegPath,
    ffprobePath: o.ffprobePath,
    probeTimeoutMs: o.probeTimeout,
    searchPath: io.env.PATH,
  })
  const abort = new AbortController()
  void io.stopSignal.then(() => abort.abort())
  let store: OriginStore | undefined
  try {
    store = await openStore({ ...o, store: o.store! })
    const r = await ingest(source, {
      title: o.title,
      store,
      ladder: o.ladder,
      format: o.format,
      segmentSeconds: o.segmentSeconds,
      preset: o.preset,
      startupBitrate: o.startupBitrate,
      ffmpeg,
      signal: abort.signal,
      onProgress: (f, phase) => bar.update(f, phase),
    })
    const rungs = r.version.renditions.map((x) => `${x.name} ${Math.round(x.averageBandwidth / 1000)}k`)
    bar.done(`published ${r.title} ${r.version.id} (${rungs.join(', ')})`)
    return 0
  } catch (err) {
    bar.fail(isCdnError(err) ? `${err.message} [${err.code}]` : String(err))
    return 1
  } finally {
    await store?.close()
  }
}

/** Time limit of each request to the origin. */
const REQUEST_TIMEOUT = 15_000

async function remote(io: CliIo, source: string, o: IngestCliOptions, http: CliHttp): Promise<number> {
  const bar = createProgress(io.stdout, `ingest ${o.title}`)
  const body = {
    source,
    title: o.title,
    format: o.format,
    segmentSeconds: o.segmentSeconds,
    ...(o.ladder.length ? { ladder: o.ladder } : {}),
  }
  const { id } = (await http.call('POST', `${o.origin}/jobs`, { body })).json as { id: string }
  io.stdout.write(`ingest ${o.title}: job ${id} accepted by ${o.origin}\n`)
  let stopped = false
  void io.stopSignal.then(() => {
    stopped = true
  })
  for (;;) {
    const job = (await http.call('GET', `${o.origin}/jobs/${encodeURIComponent(id)}`)).json as {
      state: string
      progress: number
      phase: string
      version?: string
      error?: { code: string; message: string }
    }
    if (job.state === 'succeeded') {
      bar.done(`published ${o.title} ${job.version}`)
      return 0
    }
    if (job.state === 'failed' || job.state === 'cancelled') {
      bar.fail(job.error ? `${job.error.message} [${job.error.code}]` : job.state)
      return 1
    }
    bar.update(job.progress, job.phase)
    if (stopped) {
      io.stdout.write(`\ningest ${o.title}: stopped following; job ${id} continues on the origin\n`)
      return 130
    }
    await new Promise((r) => setTimeout(r, o.pollInterval))
  }
}

export const command: CliCommand = {
  spec: INGEST_SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<IngestCliOptions>(INGEST_SPEC, io.argv, io.env)
    if (positionals.length !== 1)
      throw new CdnError('CDN_ERR_CONFIG', `expected exactly one SOURCE (usage: ${INGEST_SPEC.usage})`)
    if (!config.store === !config.origin)
      throw new CdnError('CDN_ERR_CONFIG', 'give exactly one of --store DIR (local) or --origin URL (remote)')
    if (!config.origin) return local(io, positionals[0]!, config)
    // The origin's /jobs API takes nothing but its bearer token (403 when it has none set).
    if (!config.token)
      throw new CdnError('CDN_ERR_CONFIG', '--token: required with --origin (or set CDN_ADMIN_TOKEN)')
    const http = new CliHttp({ ...config, timeout: REQUEST_TIMEOUT })
    try {
      return await remote(io, positionals[0]!, config, http)
    } finally {
      await http.close()
    }
  },
}
