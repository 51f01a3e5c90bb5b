/** `cdn origin` options: one table drives --help, flags, env vars, the config file and validation. */
import { FFMPEG_OPTIONS } from '../src/config/ffmpeg-options.js'
import type { CommandSpec } from '../src/config/options.js'
import { tlsOptionTable, type TlsOptions } from '../src/config/tls-options.js'
import { DEFAULT_STARTUP_BITRATE } from '../src/hls/playlist.js'

export interface OriginOptions extends TlsOptions {
  id: string
  host: string
  port: number
  store: string
  ingestDir: string | undefined
  adminToken: string | undefined
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
}

export const ORIGIN_SPEC: CommandSpec = {
  name: 'cdn origin',
  summary: 'Serve a content store over HTTP (/vod/..., the catalogue API, ingest jobs, /healthz, /metrics).',
  usage: 'cdn origin --store DIR [--port 8080] [--ingest-dir DIR --admin-token T] [--samples intro:20]',
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
      help: 'content store directory (created if missing)',
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
    logLevel: {
      type: 'string',
      default: 'info',
      env: 'CDN_LOG_LEVEL',
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
