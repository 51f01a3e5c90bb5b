/** Bearer-token checks for operator endpoints, in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto'
import { CdnError } from '../errors.js'

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/**
 * Throws 401 unless `authorization` is `Bearer <token>`, having set on `reply` the challenge
 * a 401 must carry (RFC 9110 §11.6.1): `Bearer realm="<realm>"`, with `error="invalid_token"`
 * when a bearer token was sent and is not the one (RFC 6750 §3.1). Without a configured token
 * the API is off: 403, which has no challenge (no token would do).
 */
export function requireBearer(
  authorization: string | undefined,
  token: string | undefined,
  reply: { header(name: string, value: string): unknown },
  realm: string,
): void {
  if (!token) throw new CdnError('CDN_ERR_FORBIDDEN', 'operator API is disabled: no admin token configured')
  if (bears(authorization, token)) return
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '')
  reply.header('www-authenticate', `Bearer realm="${realm}"${m ? ', error="invalid_token"' : ''}`)
  throw new CdnError('CDN_ERR_UNAUTHORIZED', 'missing or wrong bearer token')
}

/** The shortest bearer token an operator may configure (--admin-token, --metrics-token). */
export const MIN_TOKEN_LENGTH = 8

/** The problem of a configured token too short to resist guessing, naming `flag` (none: []). */
/** Whether `authorization` carries `token` as a bearer token (compared in constant time). */
export function bears(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '')
  return m !== null && timingSafeEqual(digest(m[1]!.trim()), digest(token))
}

export function tokenProblems(flag: string, token: string | undefined): string[] {
  return token !== undefined && token.length < MIN_TOKEN_LENGTH
    ? [`${flag}: must be at least ${MIN_TOKEN_LENGTH} characters`]
    : []
}

/**
 * /metrics on every role: open without a configured token (--metrics-token unset: the local demo
 * and existing scrapes), else requireBearer's check and challenge. /status and /healthz stay
 * open whatever is set: steering's health check reads /status.
 */
export function requireMetricsToken(
  authorization: string | undefined,
  token: string | undefined,
  reply: { header(name: string, value: string): unknown },
  realm: string,
): void {
  if (token !== undefined) requireBearer(authorization, token, reply, realm)
}
