/**
 * CMCD (CTA-5004, Common Media Client Data) as the edge reads it: from the `CMCD=` query
 * parameter (hls.js's default) and the CMCD-Request, CMCD-Object, CMCD-Status and
 * CMCD-Session headers, v1 keys and the v2 keys players send (nor, br, bl, su, sid, sta...).
 * Decoding is @svta/cml-cmcd's (the Structured Field Values dictionary the spec defines; the
 * library hls.js and dash.js encode with). What the edge acts on is checked here, strictly:
 * anything malformed is ignored whole and counted, never answered with a 4xx (a player's
 * telemetry must never break its playback).
 */
import { decodeCmcd, fromCmcdHeaders } from '@svta/cml-cmcd'
import type { IncomingHttpHeaders } from 'node:http'

/** What the edge uses of a request's CMCD data. */
export interface CmcdFacts {
  /** Next object request (`nor`, URL-decoded), relative to the request URL: the first one named. */
  nor?: string
  /** Object type: m manifest, a audio, v video, av muxed, i init, c caption, tt timed text, k key, o other. */
  ot?: string
  /** Encoded bitrate (kbps), buffer length (ms), startup, session id, player state: for the log. */
  br?: number
  bl?: number
  su?: boolean
  sid?: string
  sta?: string
}

const CMCD_HEADERS = ['cmcd-request', 'cmcd-object', 'cmcd-status', 'cmcd-session'] as const
/** Longest `nor` acted on (a URL path, relative). */
const MAX_NOR = 1024
const OBJECT_TYPES: ReadonlySet<string> = new Set(['m', 'a', 'v', 'av', 'i', 'c', 'tt', 'k', 'o'])

/**
 * The request's CMCD data: undefined when it sends none, 'malformed' when what it sends does not
 * decode or a key the edge uses has the wrong type. `query` is the decoded `CMCD=` value.
 */
export function readCmcd(
  query: string | undefined,
  headers: IncomingHttpHeaders | undefined,
): CmcdFacts | 'malformed' | undefined {
  const fromHeaders = headers !== undefined && CMCD_HEADERS.some((h) => headers[h] !== undefined)
  if (query === undefined && !fromHeaders) return undefined
  let data: Record<string, unknown>
  try {
    data = {
      ...(fromHeaders ? (fromCmcdHeaders(plainHeaders(headers)) as Record<string, unknown>) : {}),
      ...(query !== undefined ? (decodeCmcd(query) as Record<string, unknown>) : {}),
    }
  } catch {
    return 'malformed'
  }
  return checked(data)
}

function plainHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const h of CMCD_HEADERS) {
    const v = headers[h]
    if (typeof v === 'string') out[h] = v
  }
  return out
}

function checked(d: Record<string, unknown>): CmcdFacts | 'malformed' {
  const out: CmcdFacts = {}
  // v2 sends `nor` as an inner list of strings; v1 as one string.
  const nor = Array.isArray(d.nor) ? (d.nor as unknown[])[0] : d.nor
  if (nor !== undefined) {
    const v =
      typeof nor === 'object' && nor !== null && 'value' in nor ? (nor as { value: unknown }).value : nor
    if (typeof v !== 'string' || v === '' || v.length > MAX_NOR) return 'malformed'
    // The spec has nor URL-encoded inside its string (hls.js sends `..%2F480p%2Fseg-2.m4s`).
    try {
      out.nor = decodeURIComponent(v)
    } catch {
      return 'malformed'
    }
  }
  if (d.ot !== undefined) {
    const ot =
      typeof d.ot === 'object' && d.ot !== null ? String((d.ot as { toString(): string }).toString()) : d.ot
    if (typeof ot !== 'string' || !OBJECT_TYPES.has(ot)) return 'malformed'
    out.ot = ot
  }
  for (const k of ['br', 'bl'] as const) {
    const v = d[k]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return 'malformed'
    out[k] = v
  }
  if (d.su !== undefined) out.su = d.su === true
  if (typeof d.sid === 'string') out.sid = d.sid.slice(0, 64)
  if (typeof d.sta === 'string') out.sta = d.sta.slice(0, 8)
  return out
}

/** Media segments are what gets a next object prefetched: not playlists, init segments, keys. */
const SEGMENT_RE = /\/[^/]+\.(?:m4s|ts|m4v|m4a|mp4|aac|cmfv|cmfa|vtt|webvtt)$/
const MEDIA_TYPES: ReadonlySet<string> = new Set(['a', 'v', 'av', 'c', 'tt'])

/** Whether a request for `path` (canonical, no query) with object type `ot` is a media segment. */
export function isSegment(path: string, ot: string | undefined): boolean {
  if (ot !== undefined && !MEDIA_TYPES.has(ot)) return false
  if (!SEGMENT_RE.test(path)) return false
  const name = path.slice(path.lastIndexOf('/') + 1)
  return !name.startsWith('init')
}
