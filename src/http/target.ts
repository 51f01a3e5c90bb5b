/**
 * The one canonical form of a request target. Every target an edge receives goes through
 * `canonicalTarget` once, before anything else looks at it; the token check, the namespace
 * check, the cache key and the upstream request all use its result, so no two of them can
 * read one target two ways (`/%76od/...` is `/vod/...` for all of them, or for none).
 *
 * Canonical means: percent-encoded unreserved characters (RFC 3986 2.3: ALPHA DIGIT - . _ ~)
 * decoded, other percent-escapes kept with upper-case hex, query parameters split into
 * name/value pairs with the same treatment. Anything a server could read two ways is refused
 * with CDN_ERR_BAD_PATH (400) and a stable `reason`:
 *   form        not origin-form (`http://...`, `*`, `//host/...`), empty or too long
 *   bytes       control bytes, space, DEL, non-ASCII, `#`, `\`
 *   encoding    `%` not followed by two hex digits
 *   separator   an encoded `/` or `\` (%2F, %5C), or an encoded control byte
 *   double      `%25` in the path: a second decoding would make separators and dots
 *   params      `;` path parameters
 *   segment     a `.` or `..` segment (after decoding) or an empty segment (`//`)
 */
import { CdnError } from '../errors.js'

export const MAX_TARGET_LENGTH = 4096

export type TargetReason = 'form' | 'bytes' | 'encoding' | 'separator' | 'double' | 'params' | 'segment'

export interface QueryParam {
  /** Canonical name and value (unreserved escapes decoded, other hex upper-case). */
  readonly name: string
  readonly value: string | undefined
}

export interface CanonicalTarget {
  /** Canonical path, starting with `/`. */
  readonly path: string
  /** Query parameters in request order, empty pairs (`a&&b`) dropped. */
  readonly query: readonly QueryParam[]
}

function refuse(reason: TargetReason, message: string): never {
  throw new CdnError('CDN_ERR_BAD_PATH', message, { details: { reason } })
}

const HEX = /^[0-9A-Fa-f]{2}$/
/** Bytes never allowed anywhere in a target: controls, space, `"<>\^`{|}` and DEL, `#`, non-ASCII. */
const BAD_BYTES = /[^\x21\x24-\x3b\x3d\x3f-\x5b\x5d\x5f\x61-\x7a\x7e]/
const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * Decodes the unreserved escapes of one component and upper-cases the others. `inPath`
 * refuses encoded separators, `%25` and encoded controls, which a path must never carry.
 */
function canonicalPart(s: string, inPath: boolean): string {
  if (!s.includes('%')) return s
  let out = ''
  let i = 0
  while (i < s.length) {
    const pct = s.indexOf('%', i)
    if (pct === -1) {
      out += s.slice(i)
      break
    }
    out += s.slice(i, pct)
    const hex = s.slice(pct + 1, pct + 3)
    if (!HEX.test(hex)) refuse('encoding', 'bad percent-encoding in target')
    const code = parseInt(hex, 16)
    const ch = String.fromCharCode(code)
    if (UNRESERVED.test(ch)) out += ch
    else if (inPath && (code === 0x2f || code === 0x5c)) refuse('separator', 'encoded separator in path')
    else if (inPath && code === 0x25) refuse('double', 'encoded percent sign in path')
    else if (code < 0x20 || code === 0x7f) refuse('separator', 'encoded control byte in target')
    else out += `%${hex.toUpperCase()}`
    i = pct + 3
  }
  return out
}

function canonicalPath(raw: string): string {
  if (raw.includes(';')) refuse('params', 'path parameters are not served')
  const path = canonicalPart(raw, true)
  // Dot segments are checked after decoding: `%2e%2e` is `..` too.
  for (const seg of path.slice(1).split('/').slice(0, -1))
    if (seg === '' || seg === '.' || seg === '..') refuse('segment', 'empty or dot segment in path')
  const last = path.slice(path.lastIndexOf('/') + 1)
  if (last === '.' || last === '..') refuse('segment', 'empty or dot segment in path')
  return path
}

function canonicalQuery(raw: string): QueryParam[] {
  const out: QueryParam[] = []
  for (const pair of raw.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = canonicalPart(eq === -1 ? pair : pair.slice(0, eq), false)
    const value = eq === -1 ? undefined : canonicalPart(pair.slice(eq + 1), false)
    out.push({ name, value })
  }
  return out
}

/** The canonical form of an origin-form request target; throws CDN_ERR_BAD_PATH (see above). */
export function canonicalTarget(raw: string): CanonicalTarget {
  if (raw.length === 0 || raw.length > MAX_TARGET_LENGTH || raw.charCodeAt(0) !== 47 /* / */)
    refuse('form', 'request target must be an origin-form path')
  if (raw.charCodeAt(1) === 47) refuse('form', 'request target must be an origin-form path')
  if (BAD_BYTES.test(raw)) refuse('bytes', 'request target has bytes that are not allowed')
  const q = raw.indexOf('?')
  const path = canonicalPath(q === -1 ? raw : raw.slice(0, q))
  return { path, query: q === -1 ? [] : canonicalQuery(raw.slice(q + 1)) }
}

/** `name=value&...` of parameters (in the order given), as they go into a key or a request. */
export function formatQuery(params: readonly QueryParam[]): string {
  return params.map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`)).join('&')
}
