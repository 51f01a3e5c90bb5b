/**
 * A cache entry: what the upstream said (status, end-to-end headers, times, body length and
 * checksum) plus what is derived from it once per entry, so that a hit does no header work
 * beyond Age and X-Cache: the freshness facts and a precomputed flat header array.
 */
import { STATUS_CODES } from 'node:http'
import { withoutHopByHop } from '../../src/http/hop-by-hop.js'
import { CORS_ALLOW_ORIGIN, CORS_EXPOSE_HEADERS, titleOfPath } from '../../src/http/paths.js'
import { describe, effectiveCacheControl, type Freshness, TARGETED_FIELDS } from './freshness.js'
import { type CacheStatus, upstreamChain, withChain } from './cache-status.js'
import { type Outcome, X_CACHE } from './outcome.js'
import { compressible, type Encodings, withAcceptEncoding } from './compress.js'

/** What is persisted with every object (the disk tier writes it as JSON). */
export interface EntryMeta {
  key: string
  status: number
  /** Lower-case names; hop-by-hop, Age and Content-Length removed; Date always present. */
  headers: Record<string, string>
  requestTime: number
  responseTime: number
  bodyLength: number
  /** crc32 of the body (node:zlib). */
  crc32: number
  /** Prefilled objects live in the protected share of the disk tier. */
  protected?: boolean
  /**
   * The operator's floor on this response's freshness lifetime (ms), set when it was stored:
   * --not-found-ttl for 404/410, --error-ttl for 5xx.
   */
  minTtlMs?: number
  /**
   * A variant's fields (variants.ts): the request fields its Vary names that reach the upstream,
   * sorted; its key is the URL's plus a hash of their values in the request that fetched it.
   */
  varyKey?: string[]
}

export interface CacheEntry {
  readonly meta: EntryMeta
  /** The whole body in one Buffer; undefined for a disk-only entry not read yet. */
  body: Buffer | undefined
  readonly title: string | undefined
  readonly fresh: Freshness
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  /** The stored Date: with it, a Last-Modified is strong for If-Range only a second before it. */
  readonly date: string | undefined
  /**
   * Flat [name, value, ...] of the stored headers plus Content-Length, last (none for a 204):
   * sent as-is on a hit.
   */
  readonly block: string[]
  /**
   * Memo of the last full hit header array, keyed by Age seconds and outcome. Mutated in place,
   * so the copies a disk read makes of an entry (same block) share it.
   */
  readonly hitMemo: HitMemo
  /** Memo of the last raw response head (edge/http/raw-hits.ts), keyed by Age seconds; shared like hitMemo. */
  readonly rawMemo: RawMemo
  /** The upstream's Cache-Status members (a parent edge's), normalised; '' when none (cache-status.ts). */
  readonly chain: string
  /** Its brotli and gzip forms, once the memory tier encoded it (compress.ts). */
  readonly encoded?: Encodings
}

export interface RawMemo {
  age: number
  suffix: string
  /** hit-mem or hit-disk (its X-Cache and Cache-Status). */
  outcome: Outcome | undefined
  /** null: a stored header cannot be written raw (the entry is served through node's http). */
  head: Buffer | null
}

export interface HitMemo {
  age: number
  outcome: Outcome | undefined
  cs: CacheStatus | undefined
  headers: string[]
}

/**
 * Set-Cookie fields cannot be combined into one (RFC 9110 §5.3, RFC 6265 §3: an Expires holds a
 * comma): several are kept in one value joined by a line feed, which no field value can hold
 * (RFC 9110 §5.5), and written as one field each (`setCookieLines`).
 */
const SET_COOKIE_JOIN = '\n'

/** One Set-Cookie value as kept by endToEndHeaders, as the fields to write. */
export function setCookieLines(value: string): string[] {
  return value.split(SET_COOKIE_JOIN)
}

/** Upstream headers minus hop-by-hop (and those Connection names), Age and Content-Length. */
export function endToEndHeaders(
  raw: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, v] of Object.entries(withoutHopByHop(raw))) {
    // Age is recomputed per hit; X-Cache describes one hop (a parent's must not leak through).
    if (name === 'age' || name === 'content-length' || name === 'x-cache') continue
    out[name] = Array.isArray(v) ? v.join(name === 'set-cookie' ? SET_COOKIE_JOIN : ', ') : v
  }
  // Fields a qualified private="…" or no-cache="…" names are never stored (RFC 9111 §5.2.2.4, §5.2.2.7).
  const { cc } = effectiveCacheControl(out)
  for (const f of [...(cc.privateFields ?? []), ...(cc.noCacheFields ?? [])]) delete out[f]
  return out
}

/**
 * The fields a qualified private="…" or no-cache="…" named, as the upstream sent them (flat
 * [name, value, ...]), for the answers of the fetch that received them: `starter` (private) go
 * only to the client whose request was sent upstream (they are that user's), `all` (no-cache)
 * to every client of the fetch (its answer was just obtained from the upstream). Undefined when
 * none was named and present.
 */
export function withheldFields(
  raw: Readonly<Record<string, string | string[] | undefined>>,
): { starter: string[]; all: string[] } | undefined {
  const { cc } = effectiveCacheControl(endToEndValues(raw))
  if (!cc.privateFields && !cc.noCacheFields) return undefined
  const pick = (names: string[] | undefined): string[] => {
    const out: string[] = []
    for (const name of names ?? []) {
      const v = raw[name]
      if (v === undefined || name === 'content-length' || name === 'age') continue
      for (const one of Array.isArray(v) ? v : [v]) out.push(name, one)
    }
    return out
  }
  const starter = pick(cc.privateFields)
  const all = pick(cc.noCacheFields?.filter((f) => !cc.privateFields?.includes(f)))
  return starter.length + all.length === 0 ? undefined : { starter, all }
}

/** The targeted and Cache-Control fields of an upstream answer, as strings (for directive parsing). */
function endToEndValues(
  raw: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['cache-control', ...TARGETED_FIELDS]) {
    const v = raw[name]
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v
  }
  return out
}

export interface EntryOptions {
  heuristicMaxMs: number
  /** The edge encodes playlists and JSON (--compress): their answers say Vary: Accept-Encoding. */
  compress?: boolean
}

/** Builds the derived parts of an entry from its meta (once per entry, or after a 304). */
export function makeEntry(meta: EntryMeta, body: Buffer | undefined, opts: EntryOptions): CacheEntry {
  const h = meta.headers
  const block: string[] = []
  // An answer the edge may encode varies on Accept-Encoding, whichever form it is sent in.
  const varies = opts.compress === true && compressible(meta)
  for (const [k, v] of Object.entries(h)) {
    // The upstream's Age is folded into the corrected initial age; our own Age is sent per hit,
    // and the upstream's Cache-Status with our member appended.
    if (k === 'set-cookie') for (const line of setCookieLines(v)) block.push(k, line)
    else if (k !== 'age' && k !== 'cache-status')
      block.push(k, varies && k === 'vary' ? withAcceptEncoding(v) : v)
  }
  if (varies && h.vary === undefined) block.push('vary', 'Accept-Encoding')
  if (meta.status === 200 && h['accept-ranges'] === undefined) block.push('accept-ranges', 'bytes')
  // Players on other origins (web players, the steering page) must be able to read media and
  // our X-Cache/Age; an upstream that says nothing about CORS gets the public-content default.
  if (h['access-control-allow-origin'] === undefined)
    block.push(
      'access-control-allow-origin',
      CORS_ALLOW_ORIGIN,
      'access-control-expose-headers',
      CORS_EXPOSE_HEADERS,
    )
  if (framedByLength(meta.status)) block.push('content-length', String(meta.bodyLength))
  return {
    meta,
    body,
    title: titleOfPath(pathOfKey(meta.key)),
    fresh: describe(meta.status, h, meta.requestTime, meta.responseTime, opts.heuristicMaxMs, meta.minTtlMs),
    etag: h.etag,
    lastModified: h['last-modified'],
    date: h.date,
    block,
    hitMemo: { age: -1, outcome: undefined, cs: undefined, headers: block },
    rawMemo: { age: -1, suffix: '', outcome: undefined, head: null },
    chain: upstreamChain(h['cache-status']),
  }
}

/**
 * Whether an answer with `status` carries Content-Length: never a 1xx or a 204 (RFC 9110 §8.6,
 * a MUST NOT), nor a 304 here (it may only repeat the 200's length; the edge sends none).
 */
function framedByLength(status: number): boolean {
  return status >= 200 && status !== 204 && status !== 304
}

/** Seconds of freshness left at `ageSec` (negative: stale), the Cache-Status ttl. */
export function ttlOf(entry: CacheEntry, ageSec: number): number {
  return Math.floor(entry.fresh.lifetimeMs / 1000) - ageSec
}

/** The path of a stored key (a variant's is its URL's: variants.ts). */
export function pathOfKey(key: string): string {
  const q = key.indexOf('?')
  if (q !== -1) return key.slice(0, q)
  const v = key.indexOf('#')
  return v === -1 ? key : key.slice(0, v)
}

/**
 * Full response headers for a 200 hit from the cache (Cache-Status `hit` from `cs`; none from a
 * cluster primary, which has no `cs`); the array is reused while Age stays the same.
 */
export function hitHeaders(
  entry: CacheEntry,
  ageSec: number,
  outcome: Outcome,
  cs: CacheStatus | undefined,
): string[] {
  const memo = entry.hitMemo
  if (memo.age === ageSec && memo.outcome === outcome && memo.cs === cs) return memo.headers
  const headers = entry.block.concat('age', String(ageSec), 'x-cache', X_CACHE[outcome])
  const status = withChain(entry.chain, cs?.hit(ttlOf(entry, ageSec)))
  if (status !== undefined) headers.push('cache-status', status)
  memo.age = ageSec
  memo.outcome = outcome
  memo.cs = cs
  memo.headers = headers
  return headers
}

/** What node's http would refuse to write in a header (it throws); such an entry is not sent raw. */
const UNSAFE_HEADER = /[^\t\x20-\x7e\x80-\xff]/

/**
 * The whole head of a fresh hit (`outcome`) as bytes, for the raw hit path (edge/http/raw-hits.ts): status
 * line, the stored block, Age, X-Cache and `suffix` (the connection headers), memoised per Age
 * second. The same headers node's http writes from `hitHeaders`, without its per-request work.
 * Null when a stored header holds a character node would refuse.
 */
export function rawHitHead(
  entry: CacheEntry,
  ageSec: number,
  suffix: string,
  cs: CacheStatus | undefined,
  outcome: 'hit-mem' | 'hit-disk' = 'hit-mem',
): Buffer | null {
  const memo = entry.rawMemo
  if (memo.age === ageSec && memo.suffix === suffix && memo.outcome === outcome) return memo.head
  const status = entry.meta.status
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
  const headers = hitHeaders(entry, ageSec, outcome, cs)
  let ok = true
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    const value = headers[i + 1]!
    if (UNSAFE_HEADER.test(name) || UNSAFE_HEADER.test(value) || name.includes(':')) ok = false
    text += `${name}: ${value}\r\n`
  }
  memo.age = ageSec
  memo.suffix = suffix
  memo.outcome = outcome
  memo.head = ok ? Buffer.from(`${text}${suffix}\r\n`, 'latin1') : null
  return memo.head
}

/** Headers for a variant answer (206, 304, streaming miss): block minus Content-Length, plus extras. */
export function variantHeaders(entry: CacheEntry, extra: readonly string[]): string[] {
  const block = entry.block
  const out = block[block.length - 2] === 'content-length' ? block.slice(0, -2) : block.slice()
  for (let i = 0; i < extra.length; i++) out.push(extra[i]!)
  return out
}

/**
 * Meta for a fresh upstream response. The upstream's Age stays in `headers.age` only for the
 * age computation (makeEntry leaves it out of what is sent). A response without Date gets one.
 */
export function metaFromUpstream(
  key: string,
  status: number,
  raw: Readonly<Record<string, string | string[] | undefined>>,
  requestTime: number,
  responseTime: number,
): EntryMeta {
  const headers = endToEndHeaders(raw)
  const age = raw.age
  if (age !== undefined) headers.age = Array.isArray(age) ? age[0]! : age
  if (headers.date === undefined) headers.date = new Date(responseTime).toUTCString()
  return { key, status, headers, requestTime, responseTime, bodyLength: 0, crc32: 0 }
}

/** RFC 9111 §4.3.4: a 304 refreshes the stored headers it carries (but not the body's framing). */
export function refreshedMeta(
  old: EntryMeta,
  raw: Readonly<Record<string, string | string[] | undefined>>,
  requestTime: number,
  responseTime: number,
): EntryMeta {
  const fresh = endToEndHeaders(raw)
  const headers = { ...old.headers }
  delete headers.age
  for (const [k, v] of Object.entries(fresh)) {
    if (k === 'content-length' || k === 'content-encoding' || k === 'content-range') continue
    headers[k] = v
  }
  const age = raw.age
  if (age !== undefined) headers.age = Array.isArray(age) ? age[0]! : age
  if (fresh.date === undefined) headers.date = new Date(responseTime).toUTCString()
  return { ...old, headers, requestTime, responseTime }
}
