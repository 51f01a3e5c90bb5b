/**
 * Synthetic sources from ffmpeg's lavfi: a moving test pattern with a burnt-in timecode and
 * frame counter, plus a sine tone. Used by fixtures, the demo's sample titles and benches,
 * so nothing binary is ever committed.
 */
import { existsSync } from 'node:fs'
import { CdnError } from '../../src/errors.js'
import type { Ffmpeg } from './ffmpeg.js'

export interface SyntheticSpec {
  seconds: number
  width: number
  height: number
  fps: number
  /** Tone frequency in Hz (default 440). */
  toneHz?: number
  /** Text shown above the timecode (e.g. the title); [a-z0-9 -] only. */
  label?: string
}

const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
  '/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf',
  '/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf',
]

function findFont(): string | undefined {
  return FONT_CANDIDATES.find((f) => existsSync(f))
}

function validate(spec: SyntheticSpec): void {
  const ok =
    Number.isFinite(spec.seconds) &&
    spec.seconds > 0 &&
    spec.seconds <= 3600 &&
    Number.isInteger(spec.width) &&
    Number.isInteger(spec.height) &&
    spec.width >= 16 &&
    spec.height >= 16 &&
    spec.width % 2 === 0 &&
    spec.height % 2 === 0 &&
    spec.width <= 7680 &&
    spec.height <= 4320 &&
    spec.fps > 0 &&
    spec.fps <= 120
  if (!ok) throw new CdnError('CDN_ERR_BAD_REQUEST', `bad synthetic source spec ${JSON.stringify(spec)}`)
  if (spec.label !== undefined && !/^[a-z0-9 -]{0,40}$/.test(spec.label))
    throw new CdnError('CDN_ERR_BAD_REQUEST', 'synthetic label must match [a-z0-9 -]{0,40}')
}

/** The video filter: timecode and frame counter burnt in when a font is available. */
export function overlayFilter(spec: SyntheticSpec, font = findFont()): string | undefined {
  if (!font) return undefined
  const size = Math.max(12, Math.round(spec.height / 14))
  const common = `fontfile=${font}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6:fontsize=${size}`
  const lines = [`drawtext=${common}:x=(w-tw)/2:y=h-2*th-24:text='%{pts\\:hms}  frame %{frame_num}'`]
  if (spec.label) lines.unshift(`drawtext=${common}:x=(w-tw)/2:y=24:text='${spec.label}'`)
  return lines.join(',')
}

/**
 * Writes an H.264/AAC MP4 to `output`. The encode is near-lossless and fast (ultrafast,
 * CRF 16) so the source is a fair stand-in for a mezzanine file. An abort of `opts.signal` kills
 * ffmpeg (CDN_ERR_CANCELLED).
 */
export async function generateSynthetic(
  ff: Ffmpeg,
  spec: SyntheticSpec,
  output: string,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<void> {
  validate(spec)
  const { seconds, width, height, fps } = spec
  const overlay = overlayFilter(spec)
  const outputOptions = ['-map', overlay ? '[v]' : '0:v', '-map', '1:a']
  outputOptions.push('-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', '-pix_fmt', 'yuv420p')
  outputOptions.push('-c:a', 'aac', '-b:a', '160k', '-ac', '2', '-ar', '48000')
  outputOptions.push('-t', String(seconds), '-movflags', '+faststart', '-f', 'mp4')
  await ff.encode({
    inputs: [
      { path: `testsrc2=size=${width}x${height}:rate=${fps}`, options: ['-f', 'lavfi'] },
      {
        path: `sine=frequency=${spec.toneHz ?? 440}:sample_rate=48000:beep_factor=4`,
        options: ['-f', 'lavfi'],
      },
    ],
    ...(overlay ? { complexFilter: `[0:v]${overlay}[v]` } : {}),
    outputOptions,
    output,
    durationSec: seconds,
    ...(opts.signal ? { signal: opts.signal } : {}),
  })
}
