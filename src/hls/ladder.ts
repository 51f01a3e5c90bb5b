/**
 * The bitrate ladder: policy as data. Rungs follow Apple's HLS authoring spec (H.264, 16:9,
 * 30 fps): 1080p 6 Mb/s, 720p 3 Mb/s, 480p between its 432p (730 kb/s) and 540p (2 Mb/s)
 * rows, 360p 365 kb/s and 234p/240p 145 kb/s. A source is never upscaled.
 */
import { CdnError } from '../errors.js'

export interface Rung {
  /** Rendition name in URLs, e.g. "720p". */
  readonly name: string
  /** Lines on the picture's short side: a landscape picture's height, a portrait one's width. */
  readonly height: number
  /** Target video bitrate, bits/s. */
  readonly videoBitrate: number
  /** AAC-LC bitrate, bits/s. */
  readonly audioBitrate: number
}

export const DEFAULT_LADDER: readonly Rung[] = Object.freeze([
  { name: '1080p', height: 1080, videoBitrate: 6_000_000, audioBitrate: 128_000 },
  { name: '720p', height: 720, videoBitrate: 3_000_000, audioBitrate: 128_000 },
  { name: '480p', height: 480, videoBitrate: 1_100_000, audioBitrate: 96_000 },
  { name: '360p', height: 360, videoBitrate: 365_000, audioBitrate: 64_000 },
  { name: '240p', height: 240, videoBitrate: 145_000, audioBitrate: 64_000 },
])

export const RUNG_NAMES: readonly string[] = DEFAULT_LADDER.map((r) => r.name)

/** Peak allowed over the target (VBV maxrate), and the VBV buffer in seconds of target. */
export const MAXRATE_FACTOR = 1.1
export const BUFSIZE_SECONDS = 2

/** The fewest bits/s of video a rendition below the lowest rung is given. */
export const MIN_VIDEO_BITRATE = 16_000

/**
 * The rungs to encode for a source of `sourceLines` lines (its displayed short side): the
 * requested rungs (all by default) that do not exceed the source, highest first; a source is
 * never upscaled. Requested rungs of which none fits are refused (CDN_ERR_BAD_REQUEST), never
 * swapped for others. Asked for nothing, a source smaller than every rung gets one rendition at
 * its own size, at the lowest rung's bits per pixel.
 */
export function chooseLadder(sourceLines: number, names: readonly string[] = []): Rung[] {
  const wanted = names.length ? DEFAULT_LADDER.filter((r) => names.includes(r.name)) : [...DEFAULT_LADDER]
  const fits = wanted.filter((r) => r.height <= sourceLines)
  if (fits.length) return fits.sort((a, b) => b.height - a.height)
  if (names.length) {
    const could = DEFAULT_LADDER.filter((r) => r.height <= sourceLines).map((r) => r.name)
    const hint = could.length ? `ask for ${could.join(', ')}` : 'ask for no ladder: one rendition at its size'
    throw new CdnError(
      'CDN_ERR_BAD_REQUEST',
      `no requested rung (${names.join(', ')}) fits a ${sourceLines}-line source, never upscaled: ${hint}`,
    )
  }
  return [belowEveryRung(sourceLines)]
}

/** The one rendition of a source smaller than every rung: its own lines, bits for its pixels. */
function belowEveryRung(sourceLines: number): Rung {
  const base = DEFAULT_LADDER[DEFAULT_LADDER.length - 1]!
  const lines = Math.max(16, sourceLines - (sourceLines % 2))
  // At one aspect, pixels (and the bits they need) go with the square of the lines.
  const scaled = Math.round((base.videoBitrate * (lines / base.height) ** 2) / 1000) * 1000
  return { ...base, name: `${lines}p`, height: lines, videoBitrate: Math.max(MIN_VIDEO_BITRATE, scaled) }
}

/** Unknown rung names in a request (for a clear 400). */
export function unknownRungs(names: readonly string[]): string[] {
  return names.filter((n) => !RUNG_NAMES.includes(n))
}

/** Output width for a rung keeping the source's display aspect, rounded to even. */
export function scaledWidth(sourceWidth: number, sourceHeight: number, height: number): number {
  return Math.max(2, Math.round((sourceWidth * height) / sourceHeight / 2) * 2)
}

/**
 * A rendition's size for `lines` of a source DISPLAYED at `displayWidth` x `displayHeight`
 * (after its pixel aspect and rotation): the lines go on the short side, so a portrait 360p is
 * 360x640, the pixels (and the bitrate) of a landscape one; the long side keeps the displayed
 * aspect, rounded to even. The output has square pixels.
 */
export function renditionSize(
  displayWidth: number,
  displayHeight: number,
  lines: number,
): { width: number; height: number } {
  if (displayWidth >= displayHeight)
    return { width: scaledWidth(displayWidth, displayHeight, lines), height: lines }
  return { width: lines, height: scaledWidth(displayHeight, displayWidth, lines) }
}

/** The lines a source displayed at this size offers: its short side. */
export function sourceLines(displayWidth: number, displayHeight: number): number {
  return Math.floor(Math.min(displayWidth, displayHeight))
}
