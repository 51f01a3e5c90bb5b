/**
 * The raw hit path's request parser (raw-hits.ts): whether a request head is a plain GET/HEAD
 * this path answers, strictly (anything node's http would read otherwise is not one), and
 * whether a partial head may still become one (`plainStart`).
 */
/** Where the raw path asks for a hit's bytes (the content handler, serve.ts). */
export interface RawHitSource {
  /**
   * The bytes of a fresh memory hit (head, then body unless HEAD), counted; undefined: not one.
   * `acceptEncoding`: the request's, when it sent one (an encoded playlist may be the answer).
   * `retried`: asked again after a RawRetry (the read it waited for came from the disk tier).
   */
  rawHit(
    head: boolean,
    url: string,
    host: string,
    suffix: string,
    acceptEncoding?: string,
    retried?: boolean,
  ): RawAnswer | RawRetry | undefined
}

/**
 * Not answerable yet, soon: the connection waits for `ready` (which never rejects), then asks
 * once more, and hands the request over if it is still not a raw hit. A small disk body not read
 * lately is read on the threadpool first (serve.ts rawDiskHit), so that a connection whose first
 * request finds it cold stays on the raw path instead of going to node's http for good.
 */
export interface RawRetry {
  readonly ready: Promise<void>
}

/** A raw hit's bytes: its head, its body unless HEAD, and what to call once the socket took them. */
export interface RawAnswer {
  readonly head: Buffer
  readonly body?: Buffer
  /** The body's in-flight reservation (a body read from disk), released once written or dropped. */
  readonly release?: () => void
}

/** Largest request head parsed here (node's limit on the edge is the same, 16 KiB). */
export const MAX_HEAD = 16 * 1024
const GET = 0x47
const HEAD = 0x48
const SUFFIX_HTTP11 = ' HTTP/1.1'
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
const CR = 13
const LF = 10
const SP = 0x20
const HTAB = 9
const COLON = 0x3a
const SLASH = 0x2f
/** Bytes of a header name (RFC 9110 tchar). */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1
/** Bytes of a header value (field-vchar, SP, HTAB, obs-text). */
const VCHAR = new Uint8Array(256)
for (let c = 0; c < 256; c++) VCHAR[c] = c === HTAB || (c >= SP && c !== 0x7f) ? 1 : 0
const VERSION_CRLF = ' HTTP/1.1\r\n'

/** Compares buf[at..] with `text` as far as the bytes go: -1 differs, else the index after the match. */
function prefixOf(buf: Buffer, at: number, limit: number, text: string): number {
  for (let k = 0; k < text.length; k++, at++) {
    if (at === limit) return at
    if (buf[at] !== text.charCodeAt(k)) return -1
  }
  return at
}

/**
 * Whether bytes start..limit, a head without its CRLFCRLF yet, can still become a request this
 * parser answers: only then is waiting for the rest what node would do too. Anything else (bare
 * LF, lone CR, another method or version, a byte node refuses, a framing or conditional header)
 * is node's to answer, now.
 */
export function plainStart(buf: Buffer, start: number, limit: number): boolean {
  let i = prefixOf(buf, start, limit, buf[start] === HEAD ? 'HEAD ' : 'GET ')
  if (i === -1 || i === limit) return i !== -1
  if (buf[i] !== SLASH) return false
  for (; i < limit && buf[i] !== SP; i++) if (buf[i]! <= SP || buf[i]! >= 0x7f) return false
  i = prefixOf(buf, i, limit, VERSION_CRLF)
  if (i === -1) return false
  while (i < limit) {
    // A CR opening a line ends the head: its LF would have made the CRLFCRLF looked for.
    if (buf[i] === CR) return i + 1 === limit
    const name = i
    for (; i < limit && buf[i] !== COLON; i++) if (TCHAR[buf[i]!] === 0) return false
    if (i === limit) return true
    if (i === name || NOT_PLAIN.has(buf.toString('latin1', name, i).toLowerCase())) return false
    for (i++; i < limit && buf[i] !== CR; i++) if (VCHAR[buf[i]!] === 0) return false
    if (i + 1 >= limit) return true
    if (buf[i + 1] !== LF) return false
    i += 2
  }
  return true
}
/**
 * Request headers that make a request something other than a plain hit. A client's own
 * Cache-Control or Pragma goes to node's http, whose fast hit reads it (request-directives.ts).
 */
const NOT_PLAIN = new Set([
  'cache-control',
  'pragma',
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'content-length',
  'transfer-encoding',
  'expect',
  'upgrade',
])

/**
 * Parses one request head (bytes start..end, end at its CRLFCRLF) and asks `source` for the
 * hit's bytes; undefined: not a plain hit.
 */
export function answerHead(
  source: RawHitSource,
  buf: Buffer,
  start: number,
  end: number,
  suffix: string,
  retried = false,
): RawAnswer | RawRetry | undefined {
  const first = buf[start]
  let isHead: boolean
  let at: number
  if (first === GET && buf[start + 1] === 0x45 && buf[start + 2] === 0x54 && buf[start + 3] === 0x20) {
    isHead = false
    at = start + 4
  } else if (
    first === HEAD &&
    buf[start + 1] === 0x45 &&
    buf[start + 2] === 0x41 &&
    buf[start + 3] === 0x44 &&
    buf[start + 4] === 0x20
  ) {
    isHead = true
    at = start + 5
  } else return undefined
  let lineEnd = buf.indexOf(13, at)
  if (lineEnd === -1 || lineEnd > end || buf[lineEnd + 1] !== 10) return undefined
  const line = buf.toString('latin1', at, lineEnd)
  if (!line.endsWith(SUFFIX_HTTP11)) return undefined
  const url = line.slice(0, line.length - SUFFIX_HTTP11.length)
  if (url.charCodeAt(0) !== 47) return undefined
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) return undefined
  }
  let host: string | undefined
  let acceptEncoding: string | undefined
  let pos = lineEnd + 2
  while (pos < end) {
    lineEnd = buf.indexOf(13, pos)
    if (lineEnd === -1 || lineEnd > end || buf[lineEnd + 1] !== 10) return undefined
    const colon = buf.indexOf(0x3a, pos)
    if (colon === -1 || colon > lineEnd || colon === pos) return undefined
    const name = buf.toString('latin1', pos, colon).toLowerCase()
    if (!TOKEN.test(name) || NOT_PLAIN.has(name)) return undefined
    // Optional whitespace is SP and HTAB only (String.trim would also drop a 0xa0 node keeps).
    let vs = colon + 1
    let ve = lineEnd
    while (vs < ve && (buf[vs] === SP || buf[vs] === HTAB)) vs++
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--
    const value = buf.toString('latin1', vs, ve)
    if (BAD_VALUE.test(value)) return undefined
    if (name === 'host') {
      if (host !== undefined) return undefined
      host = value
    } else if (name === 'connection' && value.toLowerCase() !== 'keep-alive') return undefined
    else if (name === 'accept-encoding')
      acceptEncoding = acceptEncoding === undefined ? value : `${acceptEncoding}, ${value}`
    pos = lineEnd + 2
  }
  if (host === undefined) return undefined
  return source.rawHit(isHead, url, host, suffix, acceptEncoding, retried)
}
