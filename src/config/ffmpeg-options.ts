/** The ffmpeg/ffprobe options (locations, the probe's time limit), shared by every command that runs ffmpeg. */
import type { OptionTable } from './options.js'

/** How long one ffprobe run may take, ms, unless told otherwise (--probe-timeout; origin/transcode/ffmpeg.ts). */
export const DEFAULT_PROBE_TIMEOUT_MS = 30_000

export const FFMPEG_OPTIONS: OptionTable = {
  ffmpegPath: {
    type: 'string',
    env: 'FFMPEG_PATH',
    arg: 'FILE',
    help: 'ffmpeg binary (default: from PATH)',
  },
  ffprobePath: {
    type: 'string',
    env: 'FFPROBE_PATH',
    arg: 'FILE',
    help: 'ffprobe binary (default: from PATH)',
  },
  probeTimeout: {
    type: 'duration',
    default: DEFAULT_PROBE_TIMEOUT_MS,
    min: 100,
    max: 3_600_000,
    env: 'CDN_PROBE_TIMEOUT',
    help: 'time limit of one ffprobe run: past it ffprobe is killed and the source refused (CDN_ERR_PROBE_TIMEOUT), so a source whose read never ends (a FIFO, a stalled mount) cannot hold a request or a job',
  },
}
