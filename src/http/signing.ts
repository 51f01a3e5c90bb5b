/**
 * Signed playback URLs. The token rides in a path prefix so that every relative URI in the
 * playlists inherits it:
 *
 *   /t/{kid},{expiry},{scope}[,{net}],{signature}/vod/{title}/...
 *
 *   kid        which key signed ([A-Za-z0-9_-]{1,16}); keys rotate, see below
 *   expiry     Unix seconds, canonical decimal (no sign, no leading zero)
 *   scope      how many leading segments of the path the token covers: 2 is `/vod/{title}`
 *              (the whole title, what steering hands out), more binds it to a path prefix
 *              (`3` is one version, `4` one rendition)
 *   net        optional client network `{address}_{bits}` (`203.0.113.0_24`): the token is
 *              good only for clients inside it
 *   signature  base64url(HMAC-SHA256(secret, "v2\n{kid}\n{expiry}\n{prefix}\n{net}"))
 *
 * Keys rotate: a node holds a list of keys (`KID:SECRET`, or a bare secret with id `0`),
 * the first signs and every listed one verifies, so a new key is added to the edges first,
 * then put first on steering, and the old one removed once its last tokens expired.
 * Steering signs; edges verify and strip the prefix before the cache key is computed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import { CdnError } from '../errors.js'
import { titleOfPath } from './paths.js'

export interface SigningKey {
  readonly id: string
  readonly secret: string
}

export interface TokenClaims {
  /** Unix seconds. */
  readonly expiry: number
  /** Leading path segments covered (default 2: the title). */
  readonly scope?: number
  /** Client network, `address/bits` (the address with its host bits zero). */
  readonly net?: string
}

const KID_RE = /^[A-Za-z0-9_-]{1,16}$/
const MIN_SECRET = 16
const PREFIX_RE =
  /^\/t\/([A-Za-z0-9_-]{1,16}),(0|[1-9][0-9]{0,11}),([2-9]|[1-9][0-9]),(?:([0-9a-fA-F.:]{2,45})_(0|[1-9][0-9]{0,2}),)?([A-Za-z0-9_-]{43})(\/.*)$/

/**
 * Parses `KID:SECRET` items (or one bare SECRET, id `0`); returns the keys, or the problems.
 * The first key signs.
 */
export function parseSigningKeys(items: readonly string[]): SigningKey[] | string[] {
  const keys: SigningKey[] = []
  const problems: string[] = []
  for (const item of items) {
    const colon = item.indexOf(':')
    const id = colon === -1 ? '0' : item.slice(0, colon)
    const secret = colon === -1 ? item : item.slice(colon + 1)
    if (!KID_RE.test(id)) problems.push(`key id "${id}" must match ${KID_RE.source}`)
    else if (keys.some((k) => k.id === id)) problems.push(`key id "${id}" is listed twice`)
    else if (secret.length < MIN_SECRET)
      problems.push(`key "${id}": use a secret of at least ${MIN_SECRET} characters`)
    else keys.push({ id, secret })
  }
  return problems.length ? problems : keys
}

function forbidden(reason: string, message: string): CdnError {
  return new CdnError('CDN_ERR_FORBIDDEN', message, { details: { reason } })
}

function mac(key: SigningKey, expiry: number, prefix: string, net: string): string {
  return createHmac('sha256', key.secret)
    .update(`v2\n${key.id}\n${expiry}\n${prefix}\n${net}`)
    .digest('base64url')
}

/** The first `scope` segments of `path` (`/vod/a/v1/...`, 2 → `/vod/a`); undefined if shorter. */
function scopePrefix(path: string, scope: number): string | undefined {
  let end = 0
  for (let i = 0; i < scope; i++) {
    end = path.indexOf('/', end + 1)
    if (end === -1) return i === scope - 1 && path.length > 1 ? path : undefined
  }
  return path.slice(0, end)
}

/**
 * The token prefix for `path` (a content path; the token covers its first `scope` segments)
 * signed with `key`: `/t/...`, to put in front of the path.
 */
export function signedPrefix(key: SigningKey, path: string, claims: TokenClaims): string {
  const scope = claims.scope ?? 2
  const prefix = scopePrefix(path, scope)
  if (prefix === undefined) throw new Error(`signedPrefix: ${path} has fewer than ${scope} segments`)
  if (!Number.isSafeInteger(claims.expiry) || claims.expiry < 0) throw new Error('signedPrefix: bad expiry')
  const net = claims.net === undefined ? '' : claims.net.replace('/', '_')
  return `/t/${key.id},${claims.expiry},${scope},${net ? `${net},` : ''}${mac(key, claims.expiry, prefix, net)}`
}

/** Strips `::ffff:` from an IPv4-mapped address (what a dual-stack socket reports). */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a
}

function inNet(address: string | undefined, net: string, bits: number): boolean {
  const family = isIP(net)
  if (address === undefined || family === 0 || bits > (family === 4 ? 32 : 128)) return false
  const client = plainAddress(address)
  const clientFamily = isIP(client)
  if (clientFamily !== family) return false
  const list = new BlockList()
  list.addSubnet(net, bits, family === 4 ? 'ipv4' : 'ipv6')
  return list.check(client, family === 4 ? 'ipv4' : 'ipv6')
}

/**
 * With keys: returns the path without its token prefix, or throws 403 (CDN_ERR_FORBIDDEN,
 * `reason`: missing, malformed, key, signature, scope, expired, network) for a missing, forged,
 * expired, out-of-scope or other-network token. Without keys: returns the path, stripped of
 * a prefix if one is present (so signed URLs still play on an unsigned edge).
 */
export function verifySignedPath(
  path: string,
  keys: readonly SigningKey[] | undefined,
  nowSec: number,
  clientAddress?: string,
): string {
  const m = PREFIX_RE.exec(path)
  if (!keys || keys.length === 0) {
    return m ? m[7]! : path
  }
  if (!m)
    throw path.startsWith('/t/')
      ? forbidden('malformed', 'malformed token')
      : forbidden('missing', 'a signed URL is required')
  const [, kid, expiryText, scopeText, netAddr, netBits, sig, rest] = m as unknown as string[]
  const key = keys.find((k) => k.id === kid)
  if (!key) throw forbidden('key', 'token signed with an unknown key')
  if (titleOfPath(rest!) === undefined) throw forbidden('scope', 'signed path is not content')
  const expiry = Number(expiryText)
  const prefix = scopePrefix(rest!, Number(scopeText))
  if (prefix === undefined) throw forbidden('scope', 'token does not cover this path')
  const net = netAddr === undefined ? '' : `${netAddr}_${netBits}`
  const want = Buffer.from(mac(key, expiry, prefix, net))
  const got = Buffer.from(sig!)
  if (want.length !== got.length || !timingSafeEqual(want, got))
    throw forbidden('signature', 'token signature does not match this path')
  if (expiry < nowSec) throw forbidden('expired', 'token expired')
  if (net && !inNet(clientAddress, netAddr!, Number(netBits)))
    throw forbidden('network', 'token is not valid from this address')
  return rest!
}
