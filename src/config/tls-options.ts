/**
 * The TLS options every serving role (edge, steering, origin) has, in its own options table
 * with its own environment prefix: certificates and keys (PEM files, paired by position,
 * chosen by SNI), an optional plain-HTTP listener beside the HTTPS one (serving, or
 * redirecting to HTTPS), how often the files are checked for changes, and how often session
 * ticket keys rotate. src/http/tls-certificates.ts and tls-server.ts do the TLS.
 */
import type { OptionTable } from './options.js'

export interface TlsOptions {
  tlsCert: string[]
  tlsKey: string[]
  httpPort: number | undefined
  httpRedirect: boolean
  tlsReloadInterval: number
  tlsTicketRotation: number
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
  return problems
}
