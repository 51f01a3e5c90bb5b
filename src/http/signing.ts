/**
 * Signed playback URLs. The token rides in a path prefix so that every relative URI in the
 * playlists inherits it:  /t/{expiry}.{signature}/vod/{title}/...
 * signature = base64url(HMAC-SHA256(key, `${title}:${expiry}`)), expiry in Unix seconds.
 * Steering signs; edges verify and strip the prefix before the cache key is computed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { CdnError } from '../errors.js'
import { titleOfPath } from './paths.js'

const PREFIX_RE = /^\/t\/(\d{1,12})\.([A-Za-z0-9_-]{43})(\/vod\/.*)$/

export function sign(key: string, title: string, expirySec: number): string {
  return createHmac('sha256', key).update(`${title}:${expirySec}`).digest('base64url')
}

export function signedPrefix(key: string, title: string, expirySec: number): string {
  return `/t/${expirySec}.${sign(key, title, expirySec)}`
}

/**
 * With a key configured: returns the path without its token prefix, or throws 403 for a
 * missing, forged, expired or other-title token. Without a key: returns the path unchanged
 * (after stripping a prefix if one is present, so signed URLs still work).
 */
export function verifySignedPath(path: string, key: string | undefined, nowSec: number): string {
  const m = PREFIX_RE.exec(path)
  if (!key) return m ? m[3]! : path
  if (!m)
    throw new CdnError('CDN_ERR_FORBIDDEN', 'a signed URL is required', { details: { reason: 'missing' } })
  const expiry = Number(m[1])
  const rest = m[3]!
  const title = titleOfPath(rest)
  if (!title) throw new CdnError('CDN_ERR_FORBIDDEN', 'bad signed path', { details: { reason: 'path' } })
  const want = Buffer.from(sign(key, title, expiry))
  const got = Buffer.from(m[2]!)
  if (want.length !== got.length || !timingSafeEqual(want, got))
    throw new CdnError('CDN_ERR_FORBIDDEN', 'token signature does not match this title', {
      details: { reason: 'signature' },
    })
  if (expiry < nowSec)
    throw new CdnError('CDN_ERR_FORBIDDEN', 'token expired', { details: { reason: 'expired' } })
  return rest
}
