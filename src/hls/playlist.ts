/**
 * Playlists: read with m3u8-parser (never by hand), written by us. Shared by the origin
 * (which writes them) and the edge's prefill (which reads them).
 */
import { Parser } from 'm3u8-parser'
import { CdnError } from '../errors.js'

export interface MediaSegment {
  uri: string
  duration: number
}

export interface MediaPlaylist {
  targetDuration: number
  mediaSequence: number
  playlistType: string | undefined
  endList: boolean
  independentSegments: boolean
  /** EXT-X-MAP URI (fMP4), if any. */
  mapUri: string | undefined
  segments: MediaSegment[]
}

export interface Variant {
  uri: string
  bandwidth: number
  averageBandwidth: number | undefined
  codecs: string | undefined
  resolution: { width: number; height: number } | undefined
  frameRate: number | undefined
}

export interface MasterPlaylist {
  independentSegments: boolean
  variants: Variant[]
}

function parse(text: string, what: string) {
  if (!text.trimStart().startsWith('#EXTM3U'))
    throw new CdnError('CDN_ERR_PLAYLIST', `${what}: not an M3U8 playlist (no #EXTM3U)`)
  const parser = new Parser()
  parser.push(text)
  parser.end()
  return parser.manifest
}

export function parseMediaPlaylist(text: string, what = 'media playlist'): MediaPlaylist {
  const m = parse(text, what)
  if (m.playlists?.length) throw new CdnError('CDN_ERR_PLAYLIST', `${what}: is a master playlist`)
  const segments = (m.segments ?? []).map((s) => {
    if (!s.uri || !(s.duration >= 0))
      throw new CdnError('CDN_ERR_PLAYLIST', `${what}: segment without URI or duration`)
    return { uri: s.uri, duration: s.duration }
  })
  const first = m.segments?.[0] as { map?: { uri?: string } } | undefined
  return {
    targetDuration: m.targetDuration ?? 0,
    mediaSequence: m.mediaSequence ?? 0,
    playlistType: m.playlistType,
    endList: m.endList === true,
    independentSegments: (m as { independentSegments?: boolean }).independentSegments === true,
    mapUri: first?.map?.uri,
    segments,
  }
}

export function parseMasterPlaylist(text: string, what = 'master playlist'): MasterPlaylist {
  const m = parse(text, what)
  const variants = (m.playlists ?? []).map((p) => {
    const a = (p.attributes ?? {}) as Record<string, unknown>
    const avg = a['AVERAGE-BANDWIDTH']
    return {
      uri: p.uri,
      bandwidth: Number(a.BANDWIDTH),
      averageBandwidth: avg === undefined ? undefined : Number(avg),
      codecs: typeof a.CODECS === 'string' ? a.CODECS : undefined,
      resolution: a.RESOLUTION as { width: number; height: number } | undefined,
      frameRate: a['FRAME-RATE'] === undefined ? undefined : Number(a['FRAME-RATE']),
    }
  })
  if (!variants.length) throw new CdnError('CDN_ERR_PLAYLIST', `${what}: no variants`)
  return {
    independentSegments: (m as { independentSegments?: boolean }).independentSegments === true,
    variants,
  }
}

/** RFC 8216 §4.3.3.1: the target duration is the maximum EXTINF rounded to the nearest integer. */
export function targetDurationOf(segments: readonly MediaSegment[]): number {
  return Math.max(1, ...segments.map((s) => Math.round(s.duration)))
}

/** A VOD media playlist with EXT-X-ENDLIST and (for fMP4) EXT-X-MAP. */
export function writeMediaPlaylist(p: {
  segments: readonly MediaSegment[]
  mapUri?: string | undefined
  mediaSequence?: number
}): string {
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${p.mapUri ? 7 : 3}`,
    `#EXT-X-TARGETDURATION:${targetDurationOf(p.segments)}`,
    `#EXT-X-MEDIA-SEQUENCE:${p.mediaSequence ?? 0}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
  ]
  if (p.mapUri) lines.push(`#EXT-X-MAP:URI="${p.mapUri}"`)
  for (const s of p.segments) lines.push(`#EXTINF:${s.duration.toFixed(6)},`, s.uri)
  lines.push('#EXT-X-ENDLIST', '')
  return lines.join('\n')
}

export interface VariantSpec {
  uri: string
  /** Peak segment bitrate, bits/s. */
  bandwidth: number
  /** Mean bitrate over the whole rendition, bits/s. */
  averageBandwidth: number
  codecs: string
  width: number
  height: number
  frameRate: number
}

/**
 * Bits/s the startup variant may peak at by default: mid-ladder (the 480p rung of a 720p or
 * 1080p title), which starts in well under two seconds on a 1.5 Mbit/s link where the top
 * rung takes several.
 */
export const DEFAULT_STARTUP_BITRATE = 2_000_000

/**
 * The variant a player should start with: the highest whose BANDWIDTH is at most
 * `startupBitrate`, else the lowest. hls.js and Safari start with the first variant listed,
 * before they have measured anything, so this choice is the startup time.
 */
export function startupVariant<V extends { bandwidth: number }>(
  variants: readonly V[],
  startupBitrate: number,
): V | undefined {
  const byRate = [...variants].sort((a, b) => b.bandwidth - a.bandwidth)
  return byRate.find((v) => v.bandwidth <= startupBitrate) ?? byRate.at(-1)
}

/**
 * The master playlist: the startup variant first (see startupVariant; pass Infinity for the
 * highest), then the others highest bandwidth first. RFC 8216 sets no order; players take the
 * first listed as their start, so the order is a startup policy. Every variant carries what
 * Apple's authoring spec asks for (BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, RESOLUTION,
 * FRAME-RATE), and EXT-X-INDEPENDENT-SEGMENTS.
 */
export function writeMasterPlaylist(
  variants: readonly VariantSpec[],
  opts: { startupBitrate?: number } = {},
): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']
  const byRate = [...variants].sort((a, b) => b.bandwidth - a.bandwidth)
  const first = startupVariant(byRate, opts.startupBitrate ?? DEFAULT_STARTUP_BITRATE)
  for (const v of first ? [first, ...byRate.filter((x) => x !== first)] : byRate) {
    const attrs = [
      `BANDWIDTH=${Math.round(v.bandwidth)}`,
      `AVERAGE-BANDWIDTH=${Math.round(v.averageBandwidth)}`,
      `CODECS="${v.codecs}"`,
      `RESOLUTION=${v.width}x${v.height}`,
      `FRAME-RATE=${v.frameRate.toFixed(3)}`,
    ]
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, v.uri)
  }
  lines.push('')
  return lines.join('\n')
}

/** Peak and mean bitrate (bits/s) of a rendition from its segments' sizes and durations. */
export function measureBandwidth(segments: readonly { bytes: number; duration: number }[]): {
  peak: number
  average: number
} {
  let bytes = 0
  let seconds = 0
  let peak = 0
  for (const s of segments) {
    bytes += s.bytes
    seconds += s.duration
    if (s.duration > 0) peak = Math.max(peak, (s.bytes * 8) / s.duration)
  }
  const average = seconds > 0 ? (bytes * 8) / seconds : 0
  return { peak: Math.max(peak, average), average }
}
