/**
 * Playlists: read with m3u8-parser (never by hand, and through this module only), written by
 * us. Shared by the origin (which writes and validates them) and the edge's prefill (which
 * reads them to list what to fetch). Parsing refuses what RFC 8216 requires and m3u8-parser
 * would let through as warnings (no #EXTM3U, a variant without BANDWIDTH, a segment without
 * URI or duration), each as CDN_ERR_PLAYLIST naming the playlist.
 */
import { Parser } from 'm3u8-parser'
import { CdnError } from '../errors.js'

/** EXT-X-BYTERANGE / EXT-X-MAP BYTERANGE, with the offset filled in as RFC 8216 says. */
export interface ByteRange {
  offset: number
  length: number
}

export interface MediaSegment {
  uri: string
  duration: number
  /** Present only when the segment is a byte range of its URI. */
  byteRange?: ByteRange
  /** The EXT-X-MAP in force for this segment, when the playlist has one. */
  map?: { uri: string; byteRange?: ByteRange }
}

export interface MediaPlaylist {
  targetDuration: number
  mediaSequence: number
  playlistType: string | undefined
  endList: boolean
  independentSegments: boolean
  /** EXT-X-MAP URI (fMP4) of the first segment, if any. */
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

/** An EXT-X-MEDIA rendition with its own playlist (alternative audio, subtitles). */
export interface MediaRendition {
  type: 'AUDIO' | 'SUBTITLES'
  groupId: string
  name: string
  uri: string
}

export interface MasterPlaylist {
  independentSegments: boolean
  variants: Variant[]
  renditions: MediaRendition[]
}

export function playlistError(what: string, why: string): CdnError {
  return new CdnError('CDN_ERR_PLAYLIST', `${what}: ${why}`)
}

function parse(text: string, what: string) {
  if (!text.trimStart().startsWith('#EXTM3U')) throw playlistError(what, 'not an M3U8 playlist (no #EXTM3U)')
  const parser = new Parser()
  parser.push(text)
  parser.end()
  return parser.manifest
}

function byteRange(r: { offset?: number; length?: number } | undefined, what: string, uri: string) {
  if (!r) return undefined
  const { offset, length } = r
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset! >= 0 && length! > 0))
    throw playlistError(what, `bad byte range for ${JSON.stringify(uri)}`)
  return { offset: offset!, length: length! }
}

export function parseMediaPlaylist(text: string, what = 'media playlist'): MediaPlaylist {
  const m = parse(text, what)
  if (m.playlists?.length) throw playlistError(what, 'is a master playlist, not a media playlist')
  const segments = (m.segments ?? []).map((s): MediaSegment => {
    if (!s.uri) throw playlistError(what, 'a segment has no URI')
    if (!(Number.isFinite(s.duration) && s.duration >= 0))
      throw playlistError(what, `segment ${JSON.stringify(s.uri)} has no valid #EXTINF duration`)
    const seg: MediaSegment = { uri: s.uri, duration: s.duration }
    const range = byteRange(s.byterange, what, s.uri)
    if (range) seg.byteRange = range
    if (s.map?.uri) {
      const mapRange = byteRange(s.map.byterange, what, s.map.uri)
      seg.map = mapRange ? { uri: s.map.uri, byteRange: mapRange } : { uri: s.map.uri }
    }
    return seg
  })
  return {
    targetDuration: m.targetDuration ?? 0,
    mediaSequence: m.mediaSequence ?? 0,
    playlistType: m.playlistType,
    endList: m.endList === true,
    independentSegments: (m as { independentSegments?: boolean }).independentSegments === true,
    mapUri: segments[0]?.map?.uri,
    segments,
  }
}

export function parseMasterPlaylist(text: string, what = 'master playlist'): MasterPlaylist {
  const m = parse(text, what)
  const variants = (m.playlists ?? []).map((p) => {
    const a = (p.attributes ?? {}) as Record<string, unknown>
    const bandwidth = Number(a.BANDWIDTH)
    if (!(a.BANDWIDTH !== undefined && Number.isFinite(bandwidth)))
      throw playlistError(
        what,
        `variant ${JSON.stringify(p.uri)} has no BANDWIDTH (not after #EXT-X-STREAM-INF)`,
      )
    const avg = a['AVERAGE-BANDWIDTH']
    return {
      uri: p.uri,
      bandwidth,
      averageBandwidth: avg === undefined ? undefined : Number(avg),
      codecs: typeof a.CODECS === 'string' ? a.CODECS : undefined,
      resolution: a.RESOLUTION as { width: number; height: number } | undefined,
      frameRate: a['FRAME-RATE'] === undefined ? undefined : Number(a['FRAME-RATE']),
    }
  })
  if (!variants.length)
    throw playlistError(
      what,
      m.segments?.length ? 'is a media playlist, not a master playlist' : 'no #EXT-X-STREAM-INF variants',
    )
  const renditions: MediaRendition[] = []
  for (const type of ['AUDIO', 'SUBTITLES'] as const)
    for (const [groupId, group] of Object.entries(m.mediaGroups?.[type] ?? {}))
      for (const [name, media] of Object.entries(group))
        if (media.uri) renditions.push({ type, groupId, name, uri: media.uri })
  return {
    independentSegments: (m as { independentSegments?: boolean }).independentSegments === true,
    variants,
    renditions,
  }
}

/** RFC 8216 §4.3.3.1: the target duration is the maximum EXTINF rounded to the nearest integer. */
export function targetDurationOf<S extends { duration: number }>(segments: readonly S[]): number {
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

/**
 * Peak and mean bitrate (bits/s) of a rendition from its segments' sizes and durations. The
 * peak is RFC 8216's peak segment bit rate (§4.1): the highest bit rate of any run of
 * consecutive segments lasting between 0.5 and 1.5 times the target duration, so a short last
 * segment (0.2 s holding a keyframe) counts with its neighbour, never alone: alone it made
 * BANDWIDTH up to 1.7 times what the rendition ever needs. No such run (a title shorter than
 * half its target duration): the mean.
 */
export function measureBandwidth(segments: readonly { bytes: number; duration: number }[]): {
  peak: number
  average: number
} {
  let bytes = 0
  let seconds = 0
  for (const s of segments) {
    bytes += s.bytes
    seconds += s.duration
  }
  const average = seconds > 0 ? (bytes * 8) / seconds : 0
  const target = targetDurationOf(segments)
  let peak = 0
  for (let i = 0; i < segments.length; i++) {
    let runBytes = 0
    let runSeconds = 0
    for (let j = i; j < segments.length && runSeconds <= 1.5 * target; j++) {
      runBytes += segments[j]!.bytes
      runSeconds += segments[j]!.duration
      if (runSeconds >= 0.5 * target && runSeconds <= 1.5 * target)
        peak = Math.max(peak, (runBytes * 8) / runSeconds)
    }
  }
  return { peak: Math.max(peak, average), average }
}
