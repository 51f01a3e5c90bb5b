/**
 * The edge's only way out: an undici Pool per configured upstream (origin or parent edge),
 * tried in order. A connection failure, a timeout before headers or a 5xx moves on to the
 * next upstream; a 4xx is an answer, never retried. Only the configured upstreams are ever
 * contacted, with the edge's own request target: the edge is not an open proxy.
 */
import type { Readable } from 'node:stream'
import { Pool } from 'undici'
import { CdnError } from '../../src/errors.js'

export interface UpstreamOptions {
  urls: readonly string[]
  connectTimeout: number
  headersTimeout: number
  bodyTimeout: number
  connections: number
  /** Reach every upstream over this unix socket instead of TCP (a cluster worker to its primary). */
  socketPath?: string
}

export interface UpstreamResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Readable
  /** Which upstream answered (base URL). */
  upstream: string
}

/** What the single-flight needs from an upstream; tests may pass any object with this shape. */
export interface Upstream {
  fetch(path: string, headers: Record<string, string>, method?: 'GET' | 'HEAD'): Promise<UpstreamResponse>
  close(): Promise<void>
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])

/** Maps a transport error to the catalogue: 504 for timeouts, 502 otherwise. */
export function upstreamError(err: unknown, upstream: string): CdnError {
  if (err instanceof CdnError) return err
  const code = (err as { code?: string })?.code ?? 'unknown'
  if (TIMEOUT_CODES.has(code) || code === 'UND_ERR_BODY_TIMEOUT')
    return new CdnError('CDN_ERR_UPSTREAM_TIMEOUT', `upstream timed out (${code})`, {
      cause: err,
      details: { upstreamCode: code },
      internal: { upstream },
    })
  return new CdnError('CDN_ERR_UPSTREAM', `upstream failed (${code})`, {
    cause: err,
    details: { upstreamCode: code },
    internal: { upstream },
  })
}

export class UpstreamClient implements Upstream {
  private readonly pools: { url: string; pool: Pool }[]

  constructor(opts: UpstreamOptions) {
    this.pools = opts.urls.map((url) => ({
      url,
      pool: new Pool(url, {
        connections: opts.connections,
        connectTimeout: opts.connectTimeout,
        headersTimeout: opts.headersTimeout,
        bodyTimeout: opts.bodyTimeout,
        keepAliveTimeout: 30_000,
        pipelining: 1,
        ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
      }),
    }))
  }

  async fetch(
    path: string,
    headers: Record<string, string>,
    method: 'GET' | 'HEAD' = 'GET',
  ): Promise<UpstreamResponse> {
    let lastError: CdnError | undefined
    for (let i = 0; i < this.pools.length; i++) {
      const { url, pool } = this.pools[i]!
      const last = i === this.pools.length - 1
      try {
        const res = await pool.request({ path, method, headers: { ...headers, 'user-agent': 'cdn-edge' } })
        if (res.statusCode >= 500 && !last) {
          res.body.destroy()
          lastError = new CdnError('CDN_ERR_UPSTREAM', `upstream answered ${res.statusCode}`)
          continue
        }
        return { status: res.statusCode, headers: res.headers, body: res.body, upstream: url }
      } catch (err) {
        lastError = upstreamError(err, url)
      }
    }
    throw lastError ?? new CdnError('CDN_ERR_UPSTREAM', 'no upstream configured')
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map(({ pool }) => pool.close().catch(() => pool.destroy())))
  }
}
