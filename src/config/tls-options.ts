/**
 * The TLS options every serving role (edge, steering, origin) has, in its own options table
 * with its own environment prefix: certificates and keys (PEM files, paired by position,
 * chosen by SNI), an optional plain-HTTP listener beside the HTTPS one (serving, or
 * redirecting to HTTPS), Strict-Transport-Security, how often the files are checked for changes,
 * and how often session ticket keys rotate. src/http/tls-certificates.ts and tls-server.ts do the TLS.
 */
import type { OptionTable } from './options.js'

export interface TlsOptions {
  tlsCert: string[]
  tlsKey: string[]
  httpPort: number | undefined
  httpRedirect: boolean
  tlsReloadInterval: number
  tlsTicketRotation: number
  /** Strict-Transport-Security max-age (ms; 0: none); undefined: HSTS_DEFAULT with --http-redirect, else none. */
  hsts?: number | undefined
}

/**
 * The HSTS max-age when --http-redirect is set and --hsts is not: one year. The operator has said
 * plain HTTP is only a way to HTTPS, and HSTS makes a browser skip that plaintext hop, where a
 * man in the middle could keep it on HTTP. A year is the shortest max-age the browsers' preload
 * lists accept and what common guidance asks for; no includeSubDomains, since a CDN host's
 * siblings are not its to promise.
 */
export const HSTS_DEFAULT = 365 * 24 * 3_600_000

/** The Strict-Transport-Security max-age (seconds) of a role's HTTPS answers; 0: none. */
export function hstsMaxAge(o: Pick<TlsOptions, 'hsts' | 'httpRedirect'>): number {
  return Math.floor((o.hsts ?? (o.httpRedirect ? HSTS_DEFAULT : 0)) / 1000)
}

/** The TLS rows of a role's table; `env` is its prefix, e.g. CDN_EDGE. */
export function tlsOptionTable(env: string): OptionTable {
  return {
    tlsCert: {
      type: 'list',
      help: 'certificate (chain) PEM file: with it --port speaks HTTPS, HTTP/2 and HTTP/1.1; repeat for more names (chosen by SNI, the first is the default)',
      default: [],
      env: `${env}_TLS_CERT`,
      arg: 'FILE',
    },
    tlsKey: {
      type: 'list',
      help: 'private key PEM file of each --tls-cert, in the same order',
      default: [],
      env: `${env}_TLS_KEY`,
      arg: 'FILE',
    },
    httpPort: {
      type: 'int',
      help: 'with --tls-cert: a plain-HTTP listener on this port beside the HTTPS one',
      env: `${env}_HTTP_PORT`,
      min: 0,
      max: 65535,
    },
    httpRedirect: {
      type: 'boolean',
      help: 'the --http-port listener answers every request with a 308 to the same URL over HTTPS',
      default: false,
      env: `${env}_HTTP_REDIRECT`,
    },
    hsts: {
      type: 'duration',
      help: 'with --tls-cert: Strict-Transport-Security max-age on every HTTPS answer, 0 for none (default: 8760h, one year, with --http-redirect; none without)',
      env: `${env}_HSTS`,
      min: 0,
    },
    tlsReloadInterval: {
      type: 'duration',
      help: 'how often the certificate and key files are checked for changes (0: only on SIGHUP)',
      default: 10_000,
      env: `${env}_TLS_RELOAD_INTERVAL`,
      min: 0,
    },
    tlsTicketRotation: {
      type: 'duration',
      help: 'how often TLS session ticket keys are replaced',
      default: 12 * 3_600_000,
      env: `${env}_TLS_TICKET_ROTATION`,
      min: 1000,
    },
  }
}

/** Problems of a role's TLS options that the table cannot see. */
export function tlsProblems(o: Partial<TlsOptions>): string[] {
  const problems: string[] = []
  const certs = o.tlsCert ?? []
  const keys = o.tlsKey ?? []
  if (certs.length !== keys.length)
    problems.push(
      `--tls-key: one key per --tls-cert, in the same order (got ${keys.length} keys for ${certs.length} certificates)`,
    )
  if (!certs.length && o.httpPort !== undefined) problems.push('--http-port: needs --tls-cert')
  if (o.httpRedirect && o.httpPort === undefined) problems.push('--http-redirect: needs --http-port')
  if (!certs.length && o.hsts) problems.push('--hsts: needs --tls-cert (HSTS is only sent over HTTPS)')
  return problems
}
