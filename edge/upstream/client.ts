/**
 * The edge's only way out: an undici Pool per configured upstream (origin or parent edge),
 * tried in order. A connection failure, a timeout before headers or a 5xx moves on to the
 * next upstream; a 4xx is an answer, never retried. Only the configured upstreams are ever
 * contacted, with the edge's own request target: the edge is not an open proxy.
 *
 * Each upstream has a health state, as nginx's max_fails/fail_timeout but with an active probe:
 * `maxFails` consecutive transport failures (refused, reset, timed out) or 502/503/504 answers
 * mark it down. A down upstream is skipped at once, so nobody waits a full timeout on it again;
 * when every upstream is down a request fails at once with CDN_ERR_UPSTREAM_UNAVAILABLE (503), which
 * lets the cache serve what stale-if-error allows without delay. While an upstream is down, one
 * background probe (GET `probePath`, bounded by `probeTimeout`) every `probeInterval` finds out
 * when it is back; any answer below 500 marks it up. A GET whose pooled connection was closed by
 * the peer before any answer is retried once on a new connection and not counted as a failure.
 * A circuit-breaker library (opossum) was considered: it lets one real request through to test a
 * tripped circuit, which is the very wait this avoids, and has no active probe.
 */
import type { Readable } from 'node:stream'
import { type Dispatcher, Pool } from 'undici'
import { CdnError } from '../../src/errors.js'

export interface UpstreamOptions {
  urls: readonly string[]
  connectTimeout: number
  headersTimeout: number
  bodyTimeout: number
  connections: number
  /** Reach every upstream over this unix socket instead of TCP (a cluster worker to its primary). */
  socketPath?: string
  /** Consecutive failures that mark an upstream down (0: never; a worker's local primary). */
  maxFails?: number
  /** How often a down upstream is probed (ms). */
  probeInterval?: number
  /** Path of the probe request (an origin's or an edge's /healthz). */
  probePath?: string
  /** Bound on one probe (ms). */
  probeTimeout?: number
  /** PEM CA certificates trusted for https upstreams instead of the system's (--upstream-ca). */
  ca?: readonly string[]
}

/** Told when an upstream goes down or comes back (log, metric). */
export type HealthListener = (url: string, up: boolean, why: string) => void

/** One upstream's passive and active health. */
interface UpstreamState {
  url: string
  pool: Pool
  fails: number
  down: boolean
  probe: NodeJS.Timeout | undefined
}

export interface UpstreamResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Readable
  /** Which upstream answered (base URL). */
  upstream: string
}

/** What the single-flight needs from an upstream; tests may pass any object with this shape. */
/** An interim (1xx) answer the upstream sent before its final one (103 Early Hints). */
export type InterimListener = (status: number, headers: Record<string, string | string[]>) => void

export interface Upstream {
  fetch(
    path: string,
    headers: Record<string, string>,
    method?: 'GET' | 'HEAD',
    onInterim?: InterimListener,
  ): Promise<UpstreamResponse>
  close(): Promise<void>
  /** Each upstream's health now, and a listener for its changes (an UpstreamClient has both). */
  health?(): { url: string; up: boolean }[]
  watchHealth?(listener: HealthListener): void
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])
/** A pooled connection the peer closed before answering: worth one retry on a fresh one. */
const CLOSED_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
/** Answers that count against an upstream's health (the server, not the object, is failing). */
const FAILING_STATUSES = new Set([502, 503, 504])

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
  private readonly states: UpstreamState[]
  private readonly maxFails: number
  private readonly probeInterval: number
  private readonly probePath: string
  private readonly probeTimeout: number
  private closed = false
  private readonly listeners: HealthListener[] = []

  constructor(private readonly opts: UpstreamOptions) {
    this.maxFails = opts.maxFails ?? 1
    this.probeInterval = opts.probeInterval ?? 1000
    this.probePath = opts.probePath ?? '/healthz'
    this.probeTimeout = opts.probeTimeout ?? 2000
    this.states = opts.urls.map((url) => ({
      url,
      pool: new Pool(url, {
        connections: opts.connections,
        connectTimeout: opts.connectTimeout,
        headersTimeout: opts.headersTimeout,
        bodyTimeout: opts.bodyTimeout,
        keepAliveTimeout: 30_000,
        pipelining: 1,
        ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
        // https upstreams are verified (undici's default), against these CAs when given.
        ...(opts.ca ? { connect: { ca: [...opts.ca] } } : {}),
      }),
      fails: 0,
      down: false,
      probe: undefined,
    }))
  }

  /** Each upstream and whether it is up now (for /status and tests). */
  health(): { url: string; up: boolean }[] {
    return this.states.map((s) => ({ url: s.url, up: !s.down }))
  }

  watchHealth(listener: HealthListener): void {
    this.listeners.push(listener)
  }

  async fetch(
    path: string,
    headers: Record<string, string>,
    method: 'GET' | 'HEAD' = 'GET',
    onInterim?: InterimListener,
  ): Promise<UpstreamResponse> {
    let lastError: CdnError | undefined
    const live = this.states.filter((s) => !s.down)
    for (let i = 0; i < live.length; i++) {
      const state = live[i]!
      const last = i === live.length - 1
      try {
        const res = await this.request(state, path, method, headers, onInterim)
        if (FAILING_STATUSES.has(res.statusCode)) this.failed(state, `answered ${res.statusCode}`)
        else this.succeeded(state)
        if (res.statusCode >= 500 && !last) {
          res.body.destroy()
          lastError = new CdnError('CDN_ERR_UPSTREAM', `upstream answered ${res.statusCode}`)
          continue
        }
        return { status: res.statusCode, headers: res.headers, body: res.body, upstream: state.url }
      } catch (err) {
        lastError = upstreamError(err, state.url)
        this.failed(state, (err as { code?: string })?.code ?? 'error')
      }
    }
    if (live.length === 0)
      throw new CdnError(
        'CDN_ERR_UPSTREAM_UNAVAILABLE',
        'every upstream is down; retrying in the background',
        {
          details: { retryAfter: Math.max(1, Math.ceil(this.probeInterval / 1000)) },
        },
      )
    throw lastError ?? new CdnError('CDN_ERR_UPSTREAM', 'no upstream configured')
  }

  /** One request; a GET or HEAD on a pooled connection the peer had closed is retried once. */
  private async request(
    state: UpstreamState,
    path: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    onInterim: InterimListener | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const send = () =>
      state.pool.request({
        path,
        method,
        headers: { 'user-agent': 'cdn-edge', ...headers },
        ...(onInterim ? { onInfo: (i) => onInterim(i.statusCode, i.headers) } : {}),
      })
    try {
      return await send()
    } catch (err) {
      if (!CLOSED_CODES.has((err as { code?: string })?.code ?? '')) throw err
      return await send()
    }
  }

  private succeeded(state: UpstreamState): void {
    state.fails = 0
  }

  private failed(state: UpstreamState, why: string): void {
    if (this.maxFails === 0 || state.down || this.closed) return
    if (++state.fails < this.maxFails) return
    state.down = true
    for (const l of this.listeners) l(state.url, false, why)
    this.scheduleProbe(state)
  }

  private scheduleProbe(state: UpstreamState): void {
    state.probe = setTimeout(() => void this.probe(state), this.probeInterval)
    state.probe.unref()
  }

  /** The background request that finds out when a down upstream is back. */
  private async probe(state: UpstreamState): Promise<void> {
    state.probe = undefined
    if (this.closed) return
    let up = false
    let why = 'probe failed'
    try {
      const res = await state.pool.request({
        path: this.probePath,
        method: 'GET',
        headers: { 'user-agent': 'cdn-edge-probe' },
        headersTimeout: this.probeTimeout,
        bodyTimeout: this.probeTimeout,
      })
      res.body.resume()
      up = res.statusCode < 500
      why = `probe answered ${res.statusCode}`
    } catch (err) {
      why = `probe ${(err as { code?: string })?.code ?? 'failed'}`
    }
    if (this.closed) return
    if (!up) return this.scheduleProbe(state)
    state.down = false
    state.fails = 0
    for (const l of this.listeners) l(state.url, true, why)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const s of this.states) if (s.probe) clearTimeout(s.probe)
    await Promise.all(this.states.map(({ pool }) => pool.close().catch(() => pool.destroy())))
  }
}
