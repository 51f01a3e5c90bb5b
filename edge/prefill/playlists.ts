/**
 * Reading HLS playlists for prefill, with m3u8-parser only. m3u8-parser is lenient (it turns
 * garbage into empty manifests and warnings), so the checks that make a playlist usable for a
 * fill are here: a master names variants with BANDWIDTH, a media playlist is a finished VOD
 * list of segments. Every URI is resolved against its playlist and must stay on this host:
 * prefill only ever fills paths of the edge's own upstream.
 */
import { Parser } from 'm3u8-parser'
import { CdnError } from '../../src/errors.js'
import { RENDITION_RE } from '../../src/http/paths.js'

export interface VariantRef {
  /** Rendition name, e.g. "720p" (from the path, else the height, else the URI). */
  readonly name: string
  readonly path: string
  readonly height: number | undefined
  readonly bandwidth: number | undefined
  readonly kind: 'video' | 'audio' | 'subtitles'
}

export interface MediaObject {
  readonly path: string
  readonly kind: 'init' | 'segment'
  /** Known size when every reference to the path is a byte range (end of the last range). */
  readonly rangeBytes: number | undefined
}

export interface MediaListing {
  readonly objects: MediaObject[]
  readonly durationSec: number
}

function playlistError(path: string, why: string): CdnError {
  return new CdnError('CDN_ERR_PLAYLIST', `playlist ${path} does not parse: ${why}`, { details: { path } })
}

function parse(text: string, path: string) {
  if (!text.trimStart().startsWith('#EXTM3U')) throw playlistError(path, 'missing #EXTM3U header')
  const parser = new Parser()
  parser.push(text)
  parser.end()
  return parser.manifest
}

/** Resolves a playlist URI to a path (with query) on the same host, or throws. */
export function resolveUri(uri: string, base: string): string {
  const root = 'http://upstream.invalid'
  let u: URL
  try {
    u = new URL(uri, root + base)
  } catch {
    throw playlistError(base, `bad URI ${JSON.stringify(uri)}`)
  }
  if (u.origin !== root) throw playlistError(base, `URI ${JSON.stringify(uri)} points to another host`)
  return u.pathname + u.search
}

function renditionName(path: string, height: number | undefined): string {
  const dir = path.split('?')[0]!.split('/').slice(-2, -1)[0] ?? ''
  if (RENDITION_RE.test(dir)) return dir
  if (height) return `${height}p`
  return path
}

/** The variants (and audio/subtitle renditions) a master playlist names. */
export function readMaster(text: string, path: string): VariantRef[] {
  const m = parse(text, path)
  const out: VariantRef[] = []
  const playlists = m.playlists ?? []
  if (!playlists.length) {
    if (m.segments.length) throw playlistError(path, 'expected a master playlist, got a media playlist')
    throw playlistError(path, 'no #EXT-X-STREAM-INF variants')
  }
  for (const p of playlists) {
    const bw = p.attributes?.BANDWIDTH
    if (typeof bw !== 'number' || !Number.isFinite(bw))
      throw playlistError(
        path,
        `variant ${JSON.stringify(p.uri)} has no BANDWIDTH (not after #EXT-X-STREAM-INF)`,
      )
    const resolved = resolveUri(p.uri, path)
    const height = p.attributes.RESOLUTION?.height
    out.push({ name: renditionName(resolved, height), path: resolved, height, bandwidth: bw, kind: 'video' })
  }
  for (const [group, kind] of [
    ['AUDIO', 'audio'],
    ['SUBTITLES', 'subtitles'],
  ] as const) {
    for (const ids of Object.values(m.mediaGroups?.[group] ?? {}))
      for (const [label, media] of Object.entries(ids)) {
        if (!media.uri) continue
        const resolved = resolveUri(media.uri, path)
        if (out.some((v) => v.path === resolved)) continue
        out.push({ name: `${kind}:${label}`, path: resolved, height: undefined, bandwidth: undefined, kind })
      }
  }
  return dedupe(out)
}

function dedupe(variants: VariantRef[]): VariantRef[] {
  const seen = new Set<string>()
  return variants.filter((v) => {
    if (seen.has(v.path)) return false
    seen.add(v.path)
    return true
  })
}

/** Every object a media playlist needs: init segments (EXT-X-MAP) and media segments. */
export function readMedia(text: string, path: string): MediaListing {
  const m = parse(text, path)
  if (m.playlists?.length) throw playlistError(path, 'expected a media playlist, got a master playlist')
  if (!m.segments.length) throw playlistError(path, 'no segments')
  if (!m.endList)
    throw playlistError(path, 'no #EXT-X-ENDLIST (only finished VOD playlists can be prefilled)')
  const byPath = new Map<string, { kind: 'init' | 'segment'; ranged: boolean; end: number }>()
  const note = (
    uri: string,
    kind: 'init' | 'segment',
    range: { offset: number; length: number } | undefined,
  ) => {
    const p = resolveUri(uri, path)
    const prev = byPath.get(p)
    const end = range ? range.offset + range.length : 0
    if (range && !(Number.isFinite(end) && range.length > 0))
      throw playlistError(path, `bad byte range for ${JSON.stringify(uri)}`)
    if (!prev) byPath.set(p, { kind, ranged: range !== undefined, end })
    else {
      prev.ranged &&= range !== undefined
      prev.end = Math.max(prev.end, end)
    }
  }
  let durationSec = 0
  for (const s of m.segments) {
    if (!s.uri) throw playlistError(path, 'a segment has no URI')
    if (!(Number.isFinite(s.duration) && s.duration >= 0))
      throw playlistError(path, `segment ${JSON.stringify(s.uri)} has no valid #EXTINF duration`)
    durationSec += s.duration
    if (s.map?.uri) note(s.map.uri, 'init', s.map.byterange)
    note(s.uri, 'segment', s.byterange)
  }
  const objects = [...byPath].map(([p, o]) => ({
    path: p,
    kind: o.kind,
    rangeBytes: o.ranged ? o.end : undefined,
  }))
  // Init segments first: a player needs them before any media segment.
  objects.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'init' ? -1 : 1))
  return { objects, durationSec }
}
