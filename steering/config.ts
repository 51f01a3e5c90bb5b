/**
 * Steering's configuration: the typed, frozen config the app takes, made from the options
 * parsed against the table in config-spec.ts.
 */
import { type TlsOptions, tlsProblems } from '../src/config/tls-options.js'
import { CdnError } from '../src/errors.js'
import { tokenProblems } from '../src/http/auth.js'
import { parseSigningKeys, type SigningKey } from '../src/http/signing.js'
import type { Location } from './geo.js'
import { type Cidr, parseCidr } from './ip.js'
import type { SelectOptions } from './select.js'
import { STEERING_SPEC, type SteeringOptions } from './config-spec.js'

export interface SteeringConfig {
  readonly port: number
  readonly host: string
  readonly trustedProxies: readonly Cidr[]
  /** Keys for signed URLs, the first signs; undefined: URLs are not signed. */
  readonly signingKeys: readonly SigningKey[] | undefined
  /** Client network bits a token is bound to (0: not bound). */
  readonly tokenIpv4Prefix: number
  readonly tokenIpv6Prefix: number
  readonly tokenTtlMs: number
  readonly checkIntervalMs: number
  readonly checkTimeoutMs: number
  readonly failAfter: number
  readonly recoverAfter: number
  readonly loadHigh: number
  readonly loadLow: number
  /** ms; 0: the queueing-delay signal is off. */
  readonly queueDelayHigh: number
  readonly checkConcurrency: number
  readonly defaultLocation: Location
  readonly select: SelectOptions
  readonly steerTtlSec: number
  readonly pathways: number
  readonly csTtlSec: number
  /** ms: one deadline for fetching a whole master from one candidate edge (connect to last byte). */
  readonly csMasterTimeoutMs: number
  /** Fleet registry: etcd endpoints (empty: the fleet file alone), key prefix, bound, watch check. */
  readonly registry: {
    readonly endpoints: readonly string[]
    readonly prefix: string
    readonly maxEdges: number
    /** ms between checks that the watch still follows etcd (registry-watch.ts). */
    readonly checkIntervalMs: number
  }
  /** Bearer token /metrics asks for; undefined: /metrics is open. */
  readonly metricsToken: string | undefined
  readonly logLevel: string
  /** HTTPS on the port (src/http/role-tls.ts); no certificates: plain HTTP. */
  readonly tls: TlsOptions
  /** CA certificate files for checking https edges; empty: the system's. */
  readonly edgeCa: readonly string[]
}

/** Every key has a default, so tests name only what they care about. */
export function steeringConfig(o: Partial<SteeringOptions> = {}): SteeringConfig {
  const d = STEERING_SPEC.options
  const get = <K extends keyof SteeringOptions>(k: K): SteeringOptions[K] =>
    (o[k] ?? d[k]?.default) as SteeringOptions[K]
  const problems: string[] = []
  const trustedProxies: Cidr[] = []
  for (const s of get('trustedProxy') ?? []) {
    const c = parseCidr(s)
    if (typeof c === 'string') problems.push(`--trusted-proxy: ${c}`)
    else trustedProxies.push(c)
  }
  const loc = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(get('defaultLocation'))
  const lat = Number(loc?.[1])
  const lon = Number(loc?.[2])
  if (!loc || Math.abs(lat) > 90 || Math.abs(lon) > 180)
    problems.push(`--default-location: expected LAT,LON such as 41.9,12.5 (got "${get('defaultLocation')}")`)
  for (const u of get('registryEtcd') ?? [])
    if (!/^https?:\/\/[^/?#]+\/?$/.test(u))
      problems.push(`--registry-etcd: expected http://host:port (got ${JSON.stringify(u)})`)
  if (get('loadLow') >= get('loadHigh'))
    problems.push(`--load-low (${get('loadLow')}) must be below --load-high (${get('loadHigh')})`)
  if (get('checkTimeout') > get('checkInterval') * 10)
    problems.push('--check-timeout: more than ten intervals would leave the view stale; shorten it')
  const keyItems = get('signingKey')
  const keys = parseSigningKeys(typeof keyItems === 'string' ? [keyItems] : (keyItems ?? []))
  if (typeof keys[0] === 'string') for (const p of keys) problems.push(`--signing-key: ${String(p)}`)
  problems.push(...tokenProblems('--metrics-token', o.metricsToken))
  const tls: TlsOptions = {
    tlsCert: get('tlsCert') ?? [],
    tlsKey: get('tlsKey') ?? [],
    httpPort: o.httpPort,
    httpRedirect: get('httpRedirect') ?? false,
    tlsReloadInterval: get('tlsReloadInterval') ?? 10_000,
    tlsTicketRotation: get('tlsTicketRotation') ?? 12 * 3_600_000,
    hsts: get('hsts'),
  }
  problems.push(...tlsProblems(tls))
  if (problems.length)
    throw new CdnError('CDN_ERR_CONFIG', `cdn steering: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
  return Object.freeze({
    port: get('port'),
    host: get('host'),
    trustedProxies,
    signingKeys: keys.length && typeof keys[0] !== 'string' ? Object.freeze(keys as SigningKey[]) : undefined,
    tokenIpv4Prefix: get('tokenIpv4Prefix'),
    tokenIpv6Prefix: get('tokenIpv6Prefix'),
    tokenTtlMs: get('tokenTtl'),
    checkIntervalMs: get('checkInterval'),
    checkTimeoutMs: get('checkTimeout'),
    failAfter: get('failAfter'),
    recoverAfter: get('recoverAfter'),
    loadHigh: get('loadHigh'),
    loadLow: get('loadLow'),
    queueDelayHigh: get('queueDelayHigh'),
    checkConcurrency: get('checkConcurrency'),
    defaultLocation: { lat, lon },
    select: Object.freeze({
      bandKm: get('bandKm'),
      maxResults: get('maxResults'),
      boundedLoadFactor: get('boundedLoadFactor'),
      boundedLoadFloor: get('boundedLoadFloor'),
    }),
    steerTtlSec: Math.round(get('steerTtl') / 1000),
    pathways: get('pathways'),
    csTtlSec: Math.max(1, Math.round(get('csTtl') / 1000)),
    csMasterTimeoutMs: get('csMasterTimeout') || 2 * get('checkTimeout'),
    registry: Object.freeze({
      endpoints: Object.freeze([...(get('registryEtcd') ?? [])]),
      prefix: get('registryPrefix'),
      maxEdges: get('registryMaxEdges'),
      checkIntervalMs: get('registryCheckInterval'),
    }),
    metricsToken: o.metricsToken,
    logLevel: get('logLevel'),
    tls: Object.freeze(tls),
    edgeCa: get('edgeCa') ?? [],
  })
}
