/** Bearer-token checks for operator endpoints, in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto'
import { CdnError } from '../errors.js'

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Throws 401 unless `authorization` is `Bearer <token>`. */
export function requireBearer(authorization: string | undefined, token: string | undefined): void {
  if (!token) throw new CdnError('CDN_ERR_FORBIDDEN', 'operator API is disabled: no admin token configured')
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '')
  if (!m || !timingSafeEqual(digest(m[1]!.trim()), digest(token)))
    throw new CdnError('CDN_ERR_UNAUTHORIZED', 'missing or wrong bearer token')
}
