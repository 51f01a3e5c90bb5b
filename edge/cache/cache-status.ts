/**
 * `Cache-Status` (RFC 9211): what each cache in the chain did with the request, one list
 * member per cache, the origin's side first. The edge appends its own member to the one its
 * upstream sent (a parent edge's, kept as stored with the response), named by its Via
 * pseudonym (the edge id by default):
 *
 *   hit          served from the cache without going upstream (a fresh hit, or stale while
 *                revalidating in the background); `ttl` is the remaining freshness, negative
 *                when stale
 *   fwd=uri-miss nothing stored for the URI; `fwd-status` the upstream's status, `stored` when
 *                the answer is being stored, `collapsed` when the request joined another's fetch
 *   fwd=vary-miss the URI's answer varies and is held, but not for this request's fields
 *                (variants.ts); the rest as uri-miss
 *   fwd=stale    a stored copy was stale: revalidated (`fwd-status=304`), replaced, or served
 *                because the upstream failed (`fwd-status` its 5xx, absent when none came)
 *   fwd=bypass   a method relayed uncached (--pass-through)
 *
 *   fwd=request  a fresh copy was revalidated because the client asked (no-cache, max-age,
 *                min-fresh), only with --client-freshness obey (request-directives.ts)
 *
 * Values are Structured Fields, serialised by
 * the structured-headers package; a hit's member is a prefix made once plus its integer ttl, so
 * the hit paths (memoised per Age second) do no list serialisation.
 */
import {
  type Item,
  type Parameters,
  parseList,
  serializeInteger,
  serializeList,
  Token,
} from 'structured-headers'

/** Why a request went upstream, and what came back. */
export interface ForwardFacts {
  fwd: 'uri-miss' | 'vary-miss' | 'stale' | 'bypass' | 'request'
  /** The upstream's status; undefined when no answer came. */
  status?: number
  /** The answer is stored (or being stored) by this cache. */
  stored: boolean
  /** The request joined a fetch another request started. */
  collapsed?: boolean
}

/** An sf-token may name the cache bare; anything else is an sf-string. */
const TOKEN = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*$/
/** ttl is an sf-integer: at most 15 digits. */
const MAX_TTL = 999_999_999_999_999

export class CacheStatus {
  private readonly name: Token | string
  private readonly hitPrefix: string
  /** The member of a relayed (uncached) request. */
  readonly bypass: string

  constructor(name: string) {
    this.name = TOKEN.test(name) ? new Token(name) : name
    this.hitPrefix = `${this.member(new Map([['hit', true]]))};ttl=`
    this.bypass = this.member(new Map([['fwd', new Token('bypass')]]))
  }

  /** This cache's member for a hit with `ttl` seconds of freshness left (negative: stale). */
  hit(ttl: number): string {
    return this.hitPrefix + serializeInteger(clampTtl(ttl))
  }

  /** This cache's member for a request that went upstream; `ttl` when the answer is a stored one. */
  forwarded(f: ForwardFacts, ttl?: number): string {
    const params: Parameters = new Map()
    params.set('fwd', new Token(f.fwd))
    if (f.status !== undefined) params.set('fwd-status', f.status)
    if (ttl !== undefined) params.set('ttl', clampTtl(ttl))
    if (f.stored) params.set('stored', true)
    if (f.collapsed) params.set('collapsed', true)
    return this.member(params)
  }

  private member(params: Parameters): string {
    return serializeList([[this.name, params] as Item])
  }
}

function clampTtl(ttl: number): number {
  return Math.max(-MAX_TTL, Math.min(MAX_TTL, Math.trunc(ttl)))
}

/**
 * The upstream's Cache-Status as a list to append to: normalised, or '' when absent or not a
 * valid Structured Fields list (RFC 8941: an unparsable field is ignored whole).
 */
export function upstreamChain(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return ''
  try {
    return serializeList(parseList(value))
  } catch {
    return ''
  }
}

/** The whole field: the upstream's members, then ours (either may be empty). */
export function withChain(chain: string, ours: string | undefined): string | undefined {
  if (ours === undefined) return chain === '' ? undefined : chain
  return chain === '' ? ours : `${chain}, ${ours}`
}
