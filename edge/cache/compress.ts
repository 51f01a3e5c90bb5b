/**
 * Compression of text answers the upstream did not compress: playlists (HLS) and JSON. A media
 * playlist is a list of nearly identical lines (a two-hour title's is ~100 KB) and shrinks
 * several times over; segments and other media are already compressed and are never touched.
 *
 * Each stored object that qualifies (`compressible`) is encoded once, when the memory tier
 * takes it, with brotli and gzip (node:zlib, on the threadpool), and the encoded forms are kept
 * beside it in the memory tier, counted against its bound. A form is kept only when smaller.
 * Each form is a CacheEntry of its own (`Content-Encoding`, its own `Content-Length`, a weak
 * ETag suffixed with the coding), so the hit paths, the raw head memo and the one decision for
 * conditionals (src/http/respond.ts) serve it unchanged: an If-None-Match with the encoded ETag
 * is a 304. A request with Range is answered from the identity body (byte ranges of an encoded
 * body would depend on this edge's zlib); so is one whose Accept-Encoding accepts neither coding.
 *
 * Every answer about a qualifying object carries `Vary: Accept-Encoding` (entry.ts adds it to the
 * stored headers' block), whether it is encoded or not, so a cache after the edge keeps them
 * apart. The upstream is always asked for identity (forward.ts), so this is the only encoding.
 */
import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import type { CacheEntry, EntryMeta } from './entry.js'
import { transformAllowed } from './freshness.js'
import { acceptedEncodings, type KnownEncoding } from './variants.js'

const brotli = promisify(brotliCompress)
const gzipAsync = promisify(gzip)

/** Media types encoded (lower-case, without parameters); and any `+json`. */
const TEXT_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.apple.mpegurl',
  'application/x-mpegurl',
  'audio/mpegurl',
  'audio/x-mpegurl',
  'application/json',
])
/** Bodies below this are sent as they are: the coding's overhead eats the gain. */
export const MIN_COMPRESS_BYTES = 256
/** Encodings running at once; past it an object is served as identity (it is kept unencoded). */
const MAX_PENDING = 32

/** The encoded forms of an entry, and the bytes they hold (counted by the memory tier). */
export interface Encodings {
  readonly br?: CacheEntry
  readonly gzip?: CacheEntry
  readonly bytes: number
}

/**
 * Would the edge encode this answer? A 200 of a text type above, not already encoded, that a
 * proxy may transform (RFC 9110 §7.7): no no-transform in Cache-Control or in the targeted field
 * this edge obeys (freshness.ts transformAllowed, the one rule for it).
 */
export function compressible(meta: Pick<EntryMeta, 'status' | 'headers'>): boolean {
  if (meta.status !== 200) return false
  const h = meta.headers
  const ce = h['content-encoding']
  if (ce !== undefined && ce.trim().toLowerCase() !== 'identity') return false
  const type = h['content-type']
  if (type === undefined) return false
  const semi = type.indexOf(';')
  const base = (semi === -1 ? type : type.slice(0, semi)).trim().toLowerCase()
  if (!TEXT_TYPES.has(base) && !base.endsWith('+json')) return false
  return transformAllowed(h)
}

/** A Vary value with Accept-Encoding in it (added once). */
export function withAcceptEncoding(vary: string | undefined): string {
  if (vary === undefined || vary.trim() === '') return 'Accept-Encoding'
  if (vary.split(',').some((f) => f.trim().toLowerCase() === 'accept-encoding')) return vary
  return `${vary}, Accept-Encoding`
}

/** The ETag of an encoded form: weak, its opaque part suffixed with the coding. */
export function encodedEtag(etag: string | undefined, coding: KnownEncoding): string | undefined {
  if (etag === undefined) return undefined
  const m = /^(?:W\/)?"([^"]*)"$/.exec(etag.trim())
  return m ? `W/"${m[1]}-${coding}"` : undefined
}

/** The meta of an encoded form of `meta` (its body is `length` bytes). */
export function encodedMeta(meta: EntryMeta, coding: KnownEncoding, length: number): EntryMeta {
  const headers: Record<string, string> = { ...meta.headers, 'content-encoding': coding }
  headers.vary = withAcceptEncoding(meta.headers.vary)
  const etag = encodedEtag(meta.headers.etag, coding)
  if (etag === undefined) delete headers.etag
  else headers.etag = etag
  return { ...meta, headers, bodyLength: length, crc32: 0 }
}

let lastAccept: string | string[] | undefined
let lastCodings: readonly KnownEncoding[] = []

/**
 * The form of `entry` to send for a request: an encoded one when the entry has them and the
 * request accepts one (brotli first) and asks no range; the entry itself otherwise. No work and
 * no allocation for an entry without encoded forms (every segment).
 */
export function formFor(
  entry: CacheEntry,
  acceptEncoding: string | string[] | undefined,
  range: string | undefined,
): CacheEntry {
  const enc = entry.encoded
  if (enc === undefined || acceptEncoding === undefined || range !== undefined) return entry
  // Players send the same Accept-Encoding on every request: its parse is kept.
  if (acceptEncoding !== lastAccept) {
    lastAccept = acceptEncoding
    lastCodings = acceptedEncodings(acceptEncoding)
  }
  for (const coding of lastCodings) {
    const form = enc[coding]
    if (form !== undefined) return form
  }
  return entry
}

/** Builds the encoded entries of `entry` from bodies (encoded now, or kept from before a 304's refresh). */
export type MakeEncoded = (meta: EntryMeta, body: Buffer) => CacheEntry

export function encodingsOf(
  entry: CacheEntry,
  bodies: Partial<Record<KnownEncoding, Buffer | undefined>>,
  make: MakeEncoded,
): Encodings | undefined {
  let bytes = 0
  const out: { br?: CacheEntry; gzip?: CacheEntry } = {}
  for (const coding of ['br', 'gzip'] as const) {
    const body = bodies[coding]
    if (body === undefined) continue
    out[coding] = make(encodedMeta(entry.meta, coding, body.length), body)
    bytes += body.length
  }
  return bytes === 0 ? undefined : { ...out, bytes }
}

/** Encodes bodies on the threadpool, a bounded number at once. */
export class Encoder {
  private pending = 0
  /** Objects encoded, skipped because too many were pending, and failed (for tests and figures). */
  encoded = 0
  skipped = 0
  failed = 0

  /** The forms of `body` that are smaller than it; undefined when skipped or none is. */
  async encode(body: Buffer): Promise<Partial<Record<KnownEncoding, Buffer>> | undefined> {
    if (this.pending >= MAX_PENDING) {
      this.skipped++
      return undefined
    }
    this.pending++
    try {
      const [br, gz] = await Promise.all([
        brotli(body, {
          params: {
            [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
            [constants.BROTLI_PARAM_QUALITY]: 9,
            [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
          },
        }),
        gzipAsync(body, { level: 6 }),
      ])
      this.encoded++
      const out: Partial<Record<KnownEncoding, Buffer>> = {}
      if (br.length < body.length) out.br = br
      if (gz.length < body.length) out.gzip = gz
      return out
    } finally {
      this.pending--
    }
  }

  /** Encodings running now (for tests: an object whose encoding would have begun is done). */
  get running(): number {
    return this.pending
  }
}
