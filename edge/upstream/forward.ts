/**
 * What the edge sends upstream about a client's request (RFC 9110 §7.6): the client's end-to-end
 * header fields, minus those this module manages, plus Via and X-Forwarded-For/-Proto. One
 * policy, built once from the config, used by the cached path (single-flight: misses,
 * revalidations, background refreshes; prefill without a client) and the uncached relay
 * (pass-through.ts). docs/http-cache.md lists exactly what is sent.
 *
 * - Never forwarded: hop-by-hop fields and those the request's Connection names (src/http), Host
 *   (the upstream's own authority is sent: the edge is not an open proxy), HTTP/2
 *   pseudo-headers, and the operator's deny list (default: Cookie).
 * - Managed by the cache (cached path only; a relay forwards the client's own): Range, If-Range,
 *   the conditionals (the edge fetches whole objects and revalidates with its own validators),
 *   Accept-Encoding (the edge sends `identity` and encodes text itself: compress.ts), request framing.
 * - The forwarding chain: an incoming X-Forwarded-For is extended only when the peer is a
 *   trusted proxy (--trusted-proxy), otherwise replaced by the peer's address, so a client
 *   cannot forge it; X-Forwarded-Proto likewise; Forwarded, X-Real-IP, X-Forwarded-Host and
 *   X-Forwarded-Port only pass from a trusted peer. Via gets `<protocol> <pseudonym>` appended,
 *   a name and never an address.
 * - The operator's add list (e.g. an origin's credential) is set last, on every upstream
 *   request, over anything the client sent of that name. Its values are never logged.
 *
 * A cluster primary is reached only by its own workers, which already made these fields for
 * the client: it forwards them as received (`relayed`), adding neither Via nor an address.
 */
import { BlockList, isIP } from 'node:net'
import { HOP_BY_HOP, withoutHopByHop } from '../../src/http/hop-by-hop.js'

/** What the policy reads of a client's request (node's IncomingMessage has all of it). */
export interface ClientRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly httpVersion: string
  readonly httpVersionMajor: number
  readonly socket: { readonly remoteAddress?: string | undefined; readonly encrypted?: boolean }
}

export interface ForwardOptions {
  /** The name appended to Via (a token, never an address). */
  pseudonym: string
  /** CIDRs whose X-Forwarded-For (and the other forwarding fields) are believed. */
  trustedProxies: readonly string[]
  /** Request fields never forwarded (lower-case). */
  deny: readonly string[]
  /** Fields set on every upstream request, `name: value`. */
  add: readonly string[]
  /** A cluster primary: the forwarding fields come from its own workers and pass as received. */
  relayed?: boolean
}

/** The fields of an upstream request, and whether they carry a client's credentials. */
export interface UpstreamRequest {
  readonly headers: Readonly<Record<string, string>>
  /**
   * The client's Authorization goes upstream: the answer is stored only when it says a shared
   * cache may store it (RFC 9111 §3.5), and the fetch is never shared with another client.
   */
  readonly authorized: boolean
  /**
   * Does a client's value of this field reach the upstream? An answer is keyed by the fields of
   * its Vary that do (edge/cache/variants.ts).
   */
  readonly forwards?: (field: string) => boolean
  /** The client's own request fields (none for the edge's own requests): a variant's key is made of them. */
  readonly client?: Readonly<Record<string, string | string[] | undefined>>
}

/** The cached path fetches whole objects and revalidates with its own validators. */
const MANAGED_BY_CACHE = [
  'range',
  'if-range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'accept-encoding',
  'content-length',
  'content-type',
  'content-encoding',
  'expect',
]
/** Fields the forwarding chain is made of: believed only from a trusted proxy. */
const CHAIN = ['forwarded', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-port']
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const USER_AGENT = 'cdn-edge'

/** A CIDR (`addr/bits` or a bare address) as BlockList arguments, or why it is not one. */
export function parseCidr(text: string): { net: string; bits: number; family: 'ipv4' | 'ipv6' } | string {
  const [net = '', bitsText, extra] = text.trim().split('/')
  const family = isIP(net)
  if (family === 0 || extra !== undefined) return `${JSON.stringify(text)} is not an address or CIDR`
  const max = family === 4 ? 32 : 128
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1
  if (bits < 0 || bits > max) return `${JSON.stringify(text)}: prefix length must be 0..${max}`
  return { net, bits, family: family === 4 ? 'ipv4' : 'ipv6' }
}

/** `name: value` of the add list, or why it is not one (the value is never echoed: it may be a secret). */
export function parseAddedHeader(text: string): [string, string] | string {
  const colon = text.indexOf(':')
  const name = (colon === -1 ? text : text.slice(0, colon)).trim().toLowerCase()
  if (colon === -1) return 'expected NAME: VALUE (no colon)'
  if (!HEADER_NAME.test(name)) return `expected NAME: VALUE (${JSON.stringify(name)} is not a field name)`
  const value = text.slice(colon + 1).trim()
  if (!HEADER_VALUE.test(value)) return `the value of ${name} holds a character a header cannot`
  if (MANAGED_FIELDS.has(name)) return `${name} is managed by the edge and cannot be added`
  return [name, value]
}

/**
 * The cached path's Accept-Encoding: said, not left out. A request without the field accepts
 * any coding (RFC 9110 §12.5.3); this one asks for the unencoded form, which serves every
 * client (the edge encodes playlists and JSON itself: compress.ts).
 */
const IDENTITY = 'identity'

/** Fields an operator cannot add: the edge writes them itself. */
const MANAGED_FIELDS: ReadonlySet<string> = new Set([
  'host',
  'connection',
  'transfer-encoding',
  'via',
  'x-forwarded-for',
  'x-forwarded-proto',
  ...MANAGED_BY_CACHE,
])

/** Strips `::ffff:` from an IPv4-mapped address (what a dual-stack socket reports). */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a
}

export class ForwardPolicy {
  private readonly trusted = new BlockList()
  private readonly anyTrusted: boolean
  private readonly deny: ReadonlySet<string>
  private readonly add: readonly [string, string][]
  private readonly dropCached: readonly string[]
  private readonly dropRelayed: readonly string[]
  private readonly cachedDrops: ReadonlySet<string>

  constructor(private readonly opts: ForwardOptions) {
    for (const c of opts.trustedProxies) {
      const cidr = parseCidr(c)
      if (typeof cidr === 'string') throw new TypeError(cidr)
      this.trusted.addSubnet(cidr.net, cidr.bits, cidr.family)
    }
    this.anyTrusted = opts.trustedProxies.length > 0
    this.add = opts.add.map((a) => {
      const h = parseAddedHeader(a)
      if (typeof h === 'string') throw new TypeError(h)
      return h
    })
    // A field the operator adds is never taken from the client either.
    this.deny = new Set([...opts.deny.map((d) => d.toLowerCase()), ...this.add.map(([n]) => n)])
    this.dropRelayed = ['host', ...this.deny]
    this.dropCached = [...this.dropRelayed, ...MANAGED_BY_CACHE]
    this.cachedDrops = new Set(this.dropCached)
  }

  /** Is `address` (a socket's remote address) one of the trusted proxies? */
  trusts(address: string | undefined): boolean {
    if (!this.anyTrusted || address === undefined) return false
    const a = plainAddress(address)
    const family = isIP(a)
    return family !== 0 && this.trusted.check(a, family === 4 ? 'ipv4' : 'ipv6')
  }

  /**
   * The fields of an upstream request made for `req`: `cached` for the cache's own fetch (it
   * manages ranges, conditionals and encodings), otherwise a relay of the client's request.
   */
  forRequest(
    req: ClientRequest,
    mode: 'cached' | 'relay',
  ): UpstreamRequest & { headers: Record<string, string> } {
    const kept = withoutHopByHop(req.headers, mode === 'cached' ? this.dropCached : this.dropRelayed)
    const out: Record<string, string> = {}
    for (const [name, v] of Object.entries(kept)) {
      // HTTP/2's pseudo-headers (:path, :authority...) are the request line, not fields.
      if (name.charCodeAt(0) === 58) continue
      out[name] = Array.isArray(v) ? v.join(name === 'cookie' ? '; ' : ', ') : v
    }
    // An Authorization the operator adds is the edge's own credential, not a client's.
    const authorized = out.authorization !== undefined
    if (!this.opts.relayed) this.chain(req, out)
    out['user-agent'] ??= USER_AGENT
    for (const [name, value] of this.add) out[name] = value
    if (mode === 'cached') out['accept-encoding'] = IDENTITY
    return { headers: out, authorized, forwards: this.forwards, client: req.headers }
  }

  /** The fields of a request the edge makes for itself (prefill): Via and the add list. */
  own(): UpstreamRequest {
    const out: Record<string, string> = {
      via: `1.1 ${this.opts.pseudonym}`,
      'user-agent': USER_AGENT,
      'accept-encoding': IDENTITY,
    }
    for (const [name, value] of this.add) out[name] = value
    return { headers: out, authorized: false, forwards: this.forwards }
  }

  /** Whether a client's value of `field` (lower-case) can reach the upstream on the cached path. */
  readonly forwards = (field: string): boolean =>
    !HOP_BY_HOP.has(field) && !field.startsWith('proxy-') && !this.cachedDrops.has(field)

  /** Via and the X-Forwarded fields for a request from `req`'s peer. */
  private chain(req: ClientRequest, out: Record<string, string>): void {
    const peer = req.socket.remoteAddress === undefined ? undefined : plainAddress(req.socket.remoteAddress)
    const trusted = this.trusts(peer)
    if (!trusted) for (const name of CHAIN) delete out[name]
    const xff = trusted ? out['x-forwarded-for'] : undefined
    if (peer !== undefined) out['x-forwarded-for'] = xff ? `${xff}, ${peer}` : peer
    else if (!trusted) delete out['x-forwarded-for']
    if (!trusted || out['x-forwarded-proto'] === undefined)
      out['x-forwarded-proto'] = req.socket.encrypted ? 'https' : 'http'
    const protocol = req.httpVersionMajor >= 2 ? String(req.httpVersionMajor) : req.httpVersion
    const via = `${protocol} ${this.opts.pseudonym}`
    out.via = out.via ? `${out.via}, ${via}` : via
  }
}
