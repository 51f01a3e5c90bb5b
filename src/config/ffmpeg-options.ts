/** The ffmpeg/ffprobe location options, shared by every command that runs ffmpeg. */
import type { OptionTable } from './options.js'

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
}
