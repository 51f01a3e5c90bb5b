/**
 * Validation of an edge's configuration: what the options table cannot check (cross-key rules,
 * URLs, header fields, keys), refused with one message per problem naming the flag. `edgeConfig`
 * builds a validated config from the table's defaults (tests and benches).
 */
import { isIP } from 'node:net'
import { checkBaseUrl, flagName } from '../../src/config/options.js'
import { tlsProblems } from '../../src/config/tls-options.js'
import { CdnError } from '../../src/errors.js'
import { edgeUrlProblem } from '../../src/fleet-registry.js'
import { tokenProblems } from '../../src/http/auth.js'
import { redirectBase } from '../../src/http/redirect-server.js'
import { parseSigningKeys } from '../../src/http/signing.js'
import { canonicalTarget } from '../../src/http/target.js'
import { parseAddedHeader, parseCidr } from '../upstream/forward.js'
import { EDGE_SPEC, type EdgeConfig } from './spec.js'

/** Option types whose values are numbers. */
const NUMERIC = new Set(['int', 'number', 'size', 'duration'])

/** Methods an operator may relay uncached (GET/HEAD are always served from the cache). */
export const PASS_THROUGH_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Defaults from the table, overridden by `over`; checks what the table cannot. */
export function edgeConfig(over: Partial<EdgeConfig> & { upstream: string[] }): Readonly<EdgeConfig> {
  const out: Record<string, unknown> = {}
  for (const [k, spec] of Object.entries(EDGE_SPEC.options)) out[k] = spec.default
  Object.assign(out, over)
  return validateEdgeConfig(out as unknown as EdgeConfig)
}

/**
 * An upstream is an origin: scheme, host and port. The edge asks it for the client's own path
 * (the cache key is that path), so a path prefix would be dropped; it is refused instead.
 */
export function upstreamProblem(url: string): string | undefined {
  const why = checkBaseUrl(url)
  if (why) return why
  const path = new URL(url).pathname
  if (path.replace(/\/+$/, '') !== '')
    return `an upstream is scheme://host[:port] without a path (it is asked for the client's own path); drop "${path}"`
  return undefined
}

export function validateEdgeConfig(c: EdgeConfig): Readonly<EdgeConfig> {
  const problems: string[] = []
  if (!c.upstream?.length) problems.push('--upstream: at least one upstream URL is required')
  for (const u of c.upstream ?? []) {
    const why = upstreamProblem(u)
    if (why) problems.push(`--upstream: ${why} (got ${JSON.stringify(u)})`)
  }
  problems.push(...registrationProblems(c))
  problems.push(...tokenProblems('--admin-token', c.adminToken))
  problems.push(...tokenProblems('--metrics-token', c.metricsToken))
  for (const m of c.passThrough ?? [])
    if (!PASS_THROUGH_METHODS.has(m))
      problems.push(
        `--pass-through: ${JSON.stringify(m)} is not one of ${[...PASS_THROUGH_METHODS].join(', ')}`,
      )
  const keys = parseSigningKeys(signingKeyList(c.signingKey))
  if (typeof keys[0] === 'string') for (const p of keys) problems.push(`--signing-key: ${String(p)}`)
  for (const p of c.publicPath ?? [])
    if (!canonicalPrefix(p)) problems.push(`--public-path: ${JSON.stringify(p)} is not a canonical path`)
  for (const n of c.keepQueryParams ?? [])
    if (!/^[A-Za-z0-9._~*-]+$/.test(n))
      problems.push(`--keep-query-params: ${JSON.stringify(n)} is not a plain parameter name`)
  problems.push(...forwardProblems(c))
  // A config built in code (tests, the hit-ratio replay) skips the flag parser and its bounds:
  // a NaN, or a half-life of 0, would quietly unbound the cache.
  for (const [key, spec] of Object.entries(EDGE_SPEC.options)) {
    const v = (c as unknown as Record<string, unknown>)[key]
    if (!NUMERIC.has(spec.type) || v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v))
      problems.push(`--${flagName(key)}: expected a finite number (got ${String(v)})`)
    else if (spec.min !== undefined && v < spec.min)
      problems.push(`--${flagName(key)}: must be at least ${spec.min} (got ${v})`)
    else if (spec.max !== undefined && v > spec.max)
      problems.push(`--${flagName(key)}: must be at most ${spec.max} (got ${v})`)
  }
  if (c.sliceSize > c.maxObjectSize) problems.push('--slice-size: must be at most --max-object-size')
  if (c.prefillConcurrency > c.prefillMaxConcurrency)
    problems.push('--prefill-concurrency: must be at most --prefill-max-concurrency')
  if (c.prefillTimeZone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: c.prefillTimeZone })
    } catch {
      problems.push(`--prefill-time-zone: unknown IANA time zone (got ${JSON.stringify(c.prefillTimeZone)})`)
    }
  }
  if (c.waiterTimeout < c.connectTimeout)
    problems.push('--waiter-timeout: must be at least --connect-timeout')
  if (c.clientHeadersTimeout > c.clientRequestTimeout)
    problems.push('--client-headers-timeout: must be at most --client-request-timeout')
  problems.push(...tlsProblems(c))
  // A worker's HTTPS server listens on a private path: the port it redirects to is --port's.
  if (c.httpRedirect && c.workers !== 1 && c.port === 0 && redirectBase(c.publicUrl) === undefined)
    problems.push(
      '--http-redirect: with --workers, needs a fixed --port (or an https --public-url) to redirect to',
    )
  if (problems.length)
    throw new CdnError('CDN_ERR_CONFIG', `cdn edge: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
  return Object.freeze({
    ...c,
    signingKey: signingKeyList(c.signingKey),
    upstream: c.upstream.map((u) => u.replace(/\/+$/, '')),
  })
}

/** The forwarding options (edge/upstream/forward.ts); an added value is never echoed (a secret). */
function forwardProblems(c: EdgeConfig): string[] {
  const problems: string[] = []
  const via = c.viaPseudonym
  if (via !== undefined && (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(via) || isIP(via) !== 0))
    problems.push(`--via-pseudonym: an HTTP token that is not an address (got ${JSON.stringify(via)})`)
  if (via === undefined && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(c.id ?? ''))
    problems.push('--via-pseudonym: required when --id is not an HTTP token')
  for (const p of c.trustedProxy ?? []) {
    const cidr = parseCidr(p)
    if (typeof cidr === 'string') problems.push(`--trusted-proxy: ${cidr}`)
  }
  for (const n of c.forwardDeny ?? [])
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n))
      problems.push(`--forward-deny: ${JSON.stringify(n)} is not a header field name`)
  for (const a of c.forwardAdd ?? []) {
    const h = parseAddedHeader(a)
    if (typeof h === 'string') problems.push(`--forward-add: ${h}`)
  }
  return problems
}

/** A config file or a test may give one key as a string. */
function signingKeyList(v: string[] | string | undefined): string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v
}

/** A public path must be what canonicalisation would make of it (else it could never match). */
function canonicalPrefix(p: string): boolean {
  try {
    return !p.includes('?') && canonicalTarget(p).path === p
  } catch {
    return false
  }
}

/** Registering in the fleet registry needs what steering needs to place and load the edge. */
function registrationProblems(c: EdgeConfig): string[] {
  if (!c.registryEtcd?.length) return []
  const problems: string[] = []
  for (const key of ['site', 'lat', 'lon'] as const)
    if (c[key] === undefined) problems.push(`--${kebab(key)}: required with --registry-etcd`)
  if (!c.capacity) problems.push('--capacity: required (above 0) with --registry-etcd')
  // Steering refuses a record whose URL it could not hand to players (credentials, whitespace):
  // said here, at start, rather than as a record steering leaves out.
  const urlProblem = c.publicUrl === undefined ? undefined : edgeUrlProblem(c.publicUrl, '--public-url')
  if (urlProblem)
    problems.push(urlProblem.startsWith('--public-url') ? urlProblem : `--public-url: ${urlProblem}`)
  // Without --public-url the edge registers the address it listens on: 0.0.0.0 or :: is where it
  // listens, never where a player reaches it (steering on the same host even finds it healthy).
  if (c.publicUrl === undefined && unspecifiedAddress(c.host))
    problems.push(
      `--public-url: required with --registry-etcd when --host is ${c.host} (players cannot reach an edge there)`,
    )
  for (const u of c.registryEtcd)
    if (!/^https?:\/\/[^/?#]+\/?$/.test(u))
      problems.push(`--registry-etcd: expected http://host:port (got ${JSON.stringify(u)})`)
  return problems
}

/** 0.0.0.0 or :: however spelt. */
function unspecifiedAddress(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1')
  if (isIP(h) === 4) return h.split('.').every((o) => Number(o) === 0)
  return isIP(h) === 6 && /^[0:]+$/.test(h)
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
