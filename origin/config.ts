/** `cdn origin` options: one table drives --help, flags, env vars, the config file and validation. */
import { FFMPEG_OPTIONS } from '../src/config/ffmpeg-options.js'
import { type CommandSpec, LONG_DURATION_MAX, type OptionTable } from '../src/config/options.js'
import { tlsOptionTable, type TlsOptions } from '../src/config/tls-options.js'
import { DEFAULT_STARTUP_BITRATE } from '../src/hls/playlist.js'
import { DEFAULT_STORE_ETCD_PREFIX } from './store/etcd-pointers.js'
import { DEFAULT_JOB_HISTORY, DEFAULT_JOB_HISTORY_MIN_AGE_MS } from './transcode/job-retention.js'

export interface OriginOptions extends TlsOptions {
  id: string
  host: string
  port: number
  store: string
  ingestDir: string | undefined
  adminToken: string | undefined
  metricsToken: string | undefined
  logLevel: string
  samples: string[]
  sampleSize: string
  maxQueuedJobs: number
  jobConcurrency: number
  segmentSeconds: number
  format: 'fmp4' | 'ts'
  preset: string
  startupBitrate: number
  ffmpegPath: string | undefined
  ffprobePath: string | undefined
  /** ms */
  probeTimeout: number
  s3Endpoint: string | undefined
  s3Region: string
  s3AccessKeyId: string | undefined
  s3SecretAccessKey: string | undefined
  s3MaxAttempts: number
  s3PartSize: number
  s3Cas: 'auto' | 'conditional' | 'etcd' | 'single-writer'
  s3Etcd: string[]
  s3EtcdPrefix: string
  s3PointerTtl: number
  /** ms */
  s3Timeout: number
  workDir: string | undefined
  follower: boolean
  jobPollInterval: number
  jobHistory: number
  /** ms */
  jobHistoryMinAge: number
  keep: number
  grace: number
}

/** What opens a content store (STORE_OPTIONS), shared by `cdn origin` and `cdn ingest`. */
export type StoreClientOptions = Pick<
  OriginOptions,
  | 's3Endpoint'
  | 's3Region'
  | 's3AccessKeyId'
  | 's3SecretAccessKey'
  | 's3MaxAttempts'
  | 's3PartSize'
  | 's3Cas'
  | 's3Etcd'
  | 's3EtcdPrefix'
  | 's3PointerTtl'
  | 's3Timeout'
>

/** How a source is transcoded, shared by `cdn origin` and `cdn ingest`. */
export type TranscodeOptions = Pick<
  OriginOptions,
  | 'format'
  | 'segmentSeconds'
  | 'preset'
  | 'startupBitrate'
  | 'ffmpegPath'
  | 'ffprobePath'
  | 'probeTimeout'
  | 'workDir'
>

/** Options of an object store (`--store s3://BUCKET/PREFIX`), shared by `cdn origin` and `cdn ingest`. */
export const STORE_OPTIONS: OptionTable = {
  s3Endpoint: {
    type: 'string',
    env: 'AWS_ENDPOINT_URL_S3',
    arg: 'URL',
    help: 'S3-compatible endpoint (default: AWS S3 of --s3-region)',
  },
  s3Region: { type: 'string', default: 'us-east-1', env: 'AWS_REGION', help: 'S3 region' },
  s3AccessKeyId: { type: 'string', env: 'AWS_ACCESS_KEY_ID', arg: 'KEY', help: 'S3 access key id' },
  s3SecretAccessKey: { type: 'string', env: 'AWS_SECRET_ACCESS_KEY', arg: 'SECRET', help: 'S3 secret key' },
  s3MaxAttempts: {
    type: 'int',
    default: 5,
    min: 1,
    max: 20,
    env: 'CDN_S3_MAX_ATTEMPTS',
    help: 'attempts per S3 request; 5xx, throttling and dropped connections are retried with backoff',
  },
  s3PartSize: {
    type: 'size',
    default: 8 * 1024 * 1024,
    min: 5 * 1024 * 1024,
    max: 1024 * 1024 * 1024,
    env: 'CDN_S3_PART_SIZE',
    help: 'multipart part size of uploads (memory per upload: two parts)',
  },
  s3Cas: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'conditional', 'etcd', 'single-writer'],
    env: 'CDN_S3_CAS',
    help: "how the title pointer is swapped: the store's conditional writes (auto detects them), a transaction in etcd (--s3-etcd: the catalogue lives there), or the single-writer rule",
  },
  s3Etcd: {
    type: 'list',
    default: [],
    env: 'CDN_S3_ETCD',
    arg: 'URL',
    help: 'with --s3-cas etcd: etcd endpoints of the catalogue (repeat or comma-separate); every origin and ingest of the bucket must name the same cluster',
  },
  s3EtcdPrefix: {
    type: 'string',
    default: DEFAULT_STORE_ETCD_PREFIX,
    env: 'CDN_S3_ETCD_PREFIX',
    help: "with --s3-cas etcd: key prefix of the catalogue (the bucket and the store's prefix are appended)",
  },
  s3PointerTtl: {
    type: 'duration',
    default: 1000,
    min: 0,
    max: 60_000,
    env: 'CDN_S3_POINTER_TTL',
    help: "how long a title's pointer read is reused by /vod (another origin's publish shows after it)",
  },
  s3Timeout: {
    type: 'duration',
    default: 30_000,
    min: 100,
    max: 600_000,
    env: 'CDN_S3_TIMEOUT',
    help: 'time limit of one S3 request until its response head (connecting, and sending an upload part, included): past it the attempt is abandoned and retried, so a stalled store cannot hold requests and connections for ever',
  },
  workDir: {
    type: 'string',
    env: 'CDN_ORIGIN_WORK_DIR',
    arg: 'DIR',
    help: 'local directory for staging and sample sources with an object store (default: a temp dir)',
  },
}

export const ORIGIN_SPEC: CommandSpec = {
  name: 'cdn origin',
  summary: 'Serve a content store over HTTP (/vod/..., the catalogue API, ingest jobs, /healthz, /metrics).',
  usage:
    'cdn origin --store DIR|s3://BUCKET/PREFIX [--port 8080] [--ingest-dir DIR --admin-token T] [--samples intro:20]\n       cdn origin retire TITLE --store ... --keep N [--grace 1h]',
  positionals: '[retire TITLE]',
  envPrefix: 'CDN_ORIGIN',
  options: {
    id: { type: 'string', default: 'origin', env: 'CDN_ORIGIN_ID', help: 'node id, shown in logs' },
    host: { type: 'string', default: '127.0.0.1', env: 'CDN_ORIGIN_HOST', help: 'address to listen on' },
    port: {
      type: 'int',
      default: 8080,
      min: 0,
      max: 65535,
      env: 'CDN_ORIGIN_PORT',
      help: 'TCP port (0: any)',
    },
    store: {
      type: 'string',
      required: true,
      env: 'CDN_ORIGIN_STORE',
      arg: 'DIR',
      help: 'content store: a directory (created if missing) or s3://BUCKET/PREFIX',
    },
    ...STORE_OPTIONS,
    follower: {
      type: 'boolean',
      default: false,
      env: 'CDN_ORIGIN_FOLLOWER',
      help: 'with an object store: serve and record jobs, but never run them or write pointers (every origin but the writer, when the store lacks conditional writes)',
    },
    jobPollInterval: {
      type: 'duration',
      default: 1000,
      min: 10,
      max: 60_000,
      env: 'CDN_ORIGIN_JOB_POLL_INTERVAL',
      help: 'with an object store: how often a job-running origin looks for jobs submitted to other origins',
    },
    jobHistory: {
      type: 'int',
      default: DEFAULT_JOB_HISTORY,
      min: 0,
      max: 1_000_000,
      env: 'CDN_ORIGIN_JOB_HISTORY',
      arg: 'N',
      help: 'finished jobs kept whatever their age, the newest (0: none, only --job-history-min-age keeps them); with an object store, older records are deleted by a job-running origin',
    },
    jobHistoryMinAge: {
      type: 'duration',
      default: DEFAULT_JOB_HISTORY_MIN_AGE_MS,
      min: 0,
      max: LONG_DURATION_MAX,
      env: 'CDN_ORIGIN_JOB_HISTORY_MIN_AGE',
      help: 'a finished job is kept at least this long after it finished, beyond --job-history (GET /jobs/ID of a recent job still finds it)',
    },
    keep: {
      type: 'int',
      default: 2,
      min: 1,
      max: 1000,
      help: 'retire: versions kept per title (the current one always)',
    },
    grace: {
      type: 'duration',
      default: 3_600_000,
      min: 0,
      max: LONG_DURATION_MAX,
      help: 'retire: a version is deleted this long after it left the pointer (edges may still hold masters naming it)',
    },
    ingestDir: {
      type: 'string',
      env: 'CDN_ORIGIN_INGEST_DIR',
      arg: 'DIR',
      help: 'directory POST /jobs may read sources from (nothing outside it)',
    },
    adminToken: {
      type: 'string',
      env: 'CDN_ADMIN_TOKEN',
      arg: 'TOKEN',
      help: 'bearer token for the /jobs API; without it the API answers 403',
    },
    metricsToken: {
      type: 'string',
      env: 'CDN_ORIGIN_METRICS_TOKEN',
      envAliases: ['CDN_METRICS_TOKEN'],
      arg: 'TOKEN',
      help: 'bearer token /metrics asks for (at least 8 characters); without it /metrics is open',
    },
    logLevel: {
      type: 'string',
      default: 'info',
      env: 'CDN_ORIGIN_LOG_LEVEL',
      envAliases: ['CDN_LOG_LEVEL'],
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      help: 'log level',
    },
    samples: {
      type: 'list',
      default: [],
      env: 'CDN_ORIGIN_SAMPLES',
      arg: 'TITLE:SECONDS',
      help: 'generate and ingest these synthetic sample titles at start when missing, e.g. intro:20,feature:36',
    },
    sampleSize: {
      type: 'string',
      default: '1280x720',
      env: 'CDN_ORIGIN_SAMPLE_SIZE',
      arg: 'WxH',
      help: 'resolution of generated sample sources (the ladder never goes above it)',
    },
    maxQueuedJobs: {
      type: 'int',
      default: 16,
      min: 0,
      max: 1000,
      env: 'CDN_ORIGIN_MAX_QUEUED_JOBS',
      help: 'ingest jobs allowed to wait; more are refused with 503',
    },
    jobConcurrency: {
      type: 'int',
      default: 1,
      min: 1,
      max: 16,
      env: 'CDN_ORIGIN_JOB_CONCURRENCY',
      help: 'ingest jobs transcoding at once (each ffmpeg uses every core)',
    },
    segmentSeconds: {
      type: 'number',
      default: 4,
      min: 1,
      max: 30,
      env: 'CDN_ORIGIN_SEGMENT_SECONDS',
      help: 'default segment duration of ingests, seconds',
    },
    format: {
      type: 'string',
      default: 'fmp4',
      choices: ['fmp4', 'ts'],
      env: 'CDN_ORIGIN_FORMAT',
      help: 'default segment format: fMP4/CMAF or MPEG-TS',
    },
    preset: {
      type: 'string',
      default: 'veryfast',
      choices: ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow'],
      env: 'CDN_ORIGIN_PRESET',
      help: 'x264 preset of ingests (speed against quality per bit)',
    },
    startupBitrate: {
      type: 'int',
      default: DEFAULT_STARTUP_BITRATE,
      min: 0,
      env: 'CDN_ORIGIN_STARTUP_BITRATE',
      arg: 'BITS/S',
      help: 'masters of new ingests list first the highest rendition peaking at most this (players start there)',
    },
    ...FFMPEG_OPTIONS,
    ...tlsOptionTable('CDN_ORIGIN'),
  },
}
