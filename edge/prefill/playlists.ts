/**
 * What prefill needs from HLS playlists, read through src/hls (the one m3u8-parser reader):
 * a master's variants and alternative renditions, a media playlist's objects. The checks that
 * make a playlist usable for a fill are here: a media playlist is a finished VOD list, and
 * every URI is resolved against its playlist and must stay on this host (prefill only ever
 * fills paths of the edge's own upstream). Errors are CDN_ERR_PLAYLIST with the path.
 */
import { CdnError, isCdnError } from '../../src/errors.js'
import { type ByteRange, parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist.js'
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
  /** A segment's start in the presentation, seconds (its first reference). */
  readonly startSec?: number
}

export interface MediaListing {
  readonly objects: MediaObject[]
  readonly durationSec: number
}

function playlistError(path: string, why: string): CdnError {
  return new CdnError('CDN_ERR_PLAYLIST', `playlist ${path}: ${why}`, { details: { path } })
}

/** Runs a src/hls reader, adding the playlist's path to its error for the job's report. */
function read<T>(path: string, parse: (what: string) => T): T {
  try {
    return parse(`playlist ${path}`)
  } catch (err) {
    if (isCdnError(err) && err.code === 'CDN_ERR_PLAYLIST')
      throw new CdnError('CDN_ERR_PLAYLIST', err.message, { details: { path }, cause: err })
    throw err
  }
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
  const m = read(path, (what) => parseMasterPlaylist(text, what))
  const out: VariantRef[] = m.variants.map((v) => {
    const resolved = resolveUri(v.uri, path)
    const height = v.resolution?.height
    return {
      name: renditionName(resolved, height),
      path: resolved,
      height,
      bandwidth: v.bandwidth,
      kind: 'video',
    }
  })
  for (const r of m.renditions) {
    const resolved = resolveUri(r.uri, path)
    if (out.some((v) => v.path === resolved)) continue
    const kind = r.type === 'AUDIO' ? 'audio' : 'subtitles'
    out.push({ name: `${kind}:${r.name}`, path: resolved, height: undefined, bandwidth: undefined, kind })
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
  const m = read(path, (what) => parseMediaPlaylist(text, what))
  if (!m.segments.length) throw playlistError(path, 'no segments')
  if (!m.endList)
    throw playlistError(path, 'no #EXT-X-ENDLIST (only finished VOD playlists can be prefilled)')
  const byPath = new Map<string, { kind: 'init' | 'segment'; ranged: boolean; end: number; start: number }>()
  const note = (uri: string, kind: 'init' | 'segment', range: ByteRange | undefined, start: number) => {
    const p = resolveUri(uri, path)
    const prev = byPath.get(p)
    const end = range ? range.offset + range.length : 0
    if (!prev) byPath.set(p, { kind, ranged: range !== undefined, end, start })
    else {
      prev.ranged &&= range !== undefined
      prev.end = Math.max(prev.end, end)
    }
  }
  let durationSec = 0
  for (const s of m.segments) {
    if (s.map) note(s.map.uri, 'init', s.map.byteRange, 0)
    note(s.uri, 'segment', s.byteRange, durationSec)
    durationSec += s.duration
  }
  const objects = [...byPath].map(([p, o]) => ({
    path: p,
    kind: o.kind,
    rangeBytes: o.ranged ? o.end : undefined,
    ...(o.kind === 'segment' ? { startSec: o.start } : {}),
  }))
  // Init segments first: a player needs them before any media segment.
  objects.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'init' ? -1 : 1))
  return { objects, durationSec }
}
