/**
 * The HTTP client of the operator commands (prefill, purge, status, ingest --origin): one undici
 * Agent per run that trusts the `--ca` files for https instead of the system's CAs (as an edge
 * trusts --upstream-ca), a time limit per request, and failures told in one line each:
 *
 *   - no answer: the method, the URL and the transport's own cause, unwrapped from fetch's and
 *     undici's wrappers (`connect ECONNREFUSED 127.0.0.1:8444`, `self-signed certificate in
 *     certificate chain (SELF_SIGNED_CERT_IN_CHAIN; --ca FILE to trust a private CA)`), as
 *     CDN_ERR_UPSTREAM, or CDN_ERR_UPSTREAM_TIMEOUT past the time limit;
 *   - an error answer in our JSON shape (`{"error":{"code","message"}}`): the server's own code
 *     and message (CDN_ERR_UNAUTHORIZED, CDN_ERR_BAD_TITLE...), with its status; any other error
 *     answer: its status and the start of its body, as CDN_ERR_UPSTREAM.
 */
import { Agent, request } from 'undici'
import type { OptionTable } from '../config/options.js'
import { formatDuration } from '../config/units.js'
import { CdnError, isErrorCode } from '../errors.js'
import { readBounded } from '../http/bounded-body.js'
import { readCaFiles } from '../http/tls-certificates.js'

/** The --ca option of every command that makes requests; one variable for all of them. */
export const CA_OPTIONS: OptionTable = {
  ca: {
    type: 'list',
    default: [],
    env: 'CDN_CA',
    arg: 'FILE',
    help: "CA certificate PEM file trusted for https URLs instead of the system CAs, e.g. the demo's data/tls/ca.pem (repeat, comma-separate, or one bundle)",
  },
}

/** The most of an answer's body read: every answer the commands read is a JSON document. */
const MAX_BODY = 64 * 1024 * 1024

/** Certificate errors that trusting the right CA cures. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
])

const TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ABORT_ERR',
])

export interface CliHttpOptions {
  /** CA certificate files (--ca); none: the system's CAs. */
  readonly ca: readonly string[]
  /** Time limit of each request, connection to the last byte (ms). */
  readonly timeout: number
  /** Bearer token sent with every request but those that say `token: undefined`. */
  readonly token?: string | undefined
}

export interface CliAnswer {
  readonly status: number
  /** The body as JSON; undefined when empty or not JSON. */
  readonly json: unknown
}

/** The cause of a request that got no answer, as one readable phrase, and its code. */
export function transportCause(err: unknown): { text: string; code: string | undefined } {
  let e = err as { message?: string; code?: unknown; cause?: unknown; errors?: unknown[]; name?: string }
  // fetch's TypeError('fetch failed') and undici's wrappers carry the socket's error as `cause`.
  for (let depth = 0; depth < 5 && e?.cause && (typeof e.code !== 'string' || !e.message); depth++)
    e = e.cause as typeof e
  const code = typeof e?.code === 'string' ? e.code : e?.name === 'TimeoutError' ? 'ABORT_ERR' : undefined
  // A connection tried on every address (autoSelectFamily) fails with an AggregateError without a message.
  const first = Array.isArray(e?.errors) ? (e.errors[0] as { message?: string } | undefined) : undefined
  const text = e?.message || first?.message || String(err)
  return { text, code }
}

/** The one-line CdnError of a request that got no answer. */
function noAnswer(method: string, url: string, err: unknown, o: CliHttpOptions): CdnError {
  const { text, code } = transportCause(err)
  if (code && TIMEOUTS.has(code))
    return new CdnError(
      'CDN_ERR_UPSTREAM_TIMEOUT',
      `${method} ${url}: no answer within ${formatDuration(o.timeout)}`,
      {
        cause: err,
      },
    )
  const notes = code && !text.includes(code) ? [code] : []
  if (code && UNTRUSTED.has(code))
    notes.push(o.ca.length ? 'not signed by the --ca given' : '--ca FILE to trust a private CA')
  return new CdnError(
    'CDN_ERR_UPSTREAM',
    `${method} ${url}: ${text}${notes.length ? ` (${notes.join('; ')})` : ''}`,
    {
      cause: err,
    },
  )
}

/** The CdnError of an error answer: the server's own code when it sent our JSON error. */
function errorAnswer(method: string, url: string, status: number, json: unknown, text: string): CdnError {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
  const message = typeof e?.message === 'string' ? e.message : ''
  if (isErrorCode(e?.code))
    return new CdnError(e.code, `${method} ${url}: ${status} ${message}`.trim(), {
      status,
      details: { status },
    })
  const said = message || text.replace(/\s+/g, ' ').trim().slice(0, 200)
  return new CdnError('CDN_ERR_UPSTREAM', `${method} ${url}: ${status}${said ? ` ${said}` : ''}`, {
    details: { status },
  })
}

/** The HTTP client of one command run; close it when done. */
export class CliHttp {
  private readonly agent: Agent

  constructor(private readonly o: CliHttpOptions) {
    const ca = readCaFiles(o.ca, '--ca')
    this.agent = new Agent(ca ? { connect: { ca } } : {})
  }

  /**
   * One request; resolves with a 2xx or 3xx answer, throws a CdnError for anything else.
   * `token: undefined` sends none (a public endpoint such as steering's /edges).
   */
  async call(
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    opts: { body?: unknown; token?: string | undefined } = {},
  ): Promise<CliAnswer> {
    const token = 'token' in opts ? opts.token : this.o.token
    let status: number
    let text: string
    try {
      const res = await request(url, {
        method,
        dispatcher: this.agent,
        headers: {
          accept: 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        signal: AbortSignal.timeout(this.o.timeout),
      })
      status = res.statusCode
      text = await bounded(res.body, method, url)
    } catch (err) {
      if (err instanceof CdnError) throw err
      throw noAnswer(method, url, err, this.o)
    }
    let json: unknown
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    if (status >= 400) throw errorAnswer(method, url, status, json, text)
    return { status, json }
  }

  close(): Promise<void> {
    return this.agent.close()
  }
}

/** The body as text, refused past MAX_BODY. */
async function bounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, method: string, url: string) {
  const bytes = await readBounded(body, MAX_BODY)
  if (!bytes) throw new CdnError('CDN_ERR_UPSTREAM', `${method} ${url}: answer larger than ${MAX_BODY} bytes`)
  return bytes.toString('utf8')
}

/** The base URL of every edge steering lists (its public GET /edges), in its order. */
export async function steeringEdges(http: CliHttp, steeringUrl: string): Promise<string[]> {
  const { json } = await http.call('GET', `${steeringUrl}/edges`, { token: undefined })
  const edges = (json as { edges?: Array<{ url?: unknown }> })?.edges
  const urls = (edges ?? []).map((e) => e.url).filter((u): u is string => typeof u === 'string')
  if (!urls.length) throw new CdnError('CDN_ERR_UPSTREAM', `GET ${steeringUrl}/edges: lists no edge`)
  return urls.map((u) => u.replace(/\/+$/, ''))
}
