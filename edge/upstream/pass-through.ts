/**
 * Uncached relay for the methods an operator lists in --pass-through (e.g. POST for a
 * player's analytics beacon behind the same hostname). The request goes to the first
 * configured upstream only (never a URL the client names), with the client's end-to-end
 * fields as forward.ts relays them (Via, X-Forwarded-For), its body streamed through undici; the answer is streamed back with hop-by-hop headers dropped and X-Cache: BYPASS.
 * Nothing is stored; a successful answer invalidates the stored responses it names (RFC 9111
 * §4.4: the caller, edge/routes/content.ts). The answer moves at the client's pace:
 * the upstream is read only while the client has less than a window queued (one window per
 * relay, reserved in the in-flight budget).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Pool } from 'undici'
import { type Readable, Transform, type TransformCallback } from 'node:stream'
import { CdnError } from '../../src/errors.js'
import { type CacheStatus, upstreamChain, withChain } from '../cache/cache-status.js'
import { endToEndHeaders, setCookieLines } from '../cache/entry.js'
import { CLIENT_WINDOW_BYTES, type InflightBudget } from '../inflight-budget.js'
import { upstreamError } from './client.js'
import type { ForwardPolicy } from './forward.js'

export interface PassThroughOptions {
  upstream: string
  connectTimeout: number
  headersTimeout: number
  bodyTimeout: number
  maxBodySize: number
  budget: InflightBudget
  /** Longest wait for the in-flight budget before a 503. */
  budgetWait: number
  /** PEM CAs trusted for an https upstream instead of the system's. */
  ca?: string[]
  /** The request's fields as relayed: the client's own (conditionals and ranges too), Via, X-Forwarded-For. */
  forward: ForwardPolicy
  /** This edge's Cache-Status member (`fwd=bypass`), appended to the upstream's; none on a cluster primary. */
  cacheStatus: CacheStatus | undefined
}

export class PassThrough {
  private readonly pool: Pool

  constructor(private readonly opts: PassThroughOptions) {
    this.pool = new Pool(opts.upstream, {
      connections: 16,
      connectTimeout: opts.connectTimeout,
      headersTimeout: opts.headersTimeout,
      bodyTimeout: opts.bodyTimeout,
      ...(opts.ca ? { connect: { ca: opts.ca } } : {}),
    })
  }

  /**
   * Relays `req` and answers `res`; rejects with a CdnError before any byte is sent. `onAnswer`
   * sees the upstream's status and headers before the client does (invalidation: a client that
   * has the answer must not then be served what it invalidated). Resolves once the answer is sent.
   */
  async relay(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    onAnswer?: (status: number, headers: Record<string, string>) => Promise<void>,
  ): Promise<void> {
    const { headers } = this.opts.forward.forRequest(req, 'relay')
    // Relayed bodies are small (beacons, forms): a declared length over the bound is refused;
    // an undeclared (chunked) body is cut off by the same bound as it streams.
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > this.opts.maxBodySize)
      throw new CdnError('CDN_ERR_BODY_TOO_LARGE', `request body over ${this.opts.maxBodySize} bytes`)
    if (req.headers['content-length'] !== undefined) headers['content-length'] = String(declared)
    const hold = await this.opts.budget.acquire(CLIENT_WINDOW_BYTES, this.opts.budgetWait)
    res.once('close', hold.release)
    const body = req.pipe(new Bounded(this.opts.maxBodySize))
    let answer: Awaited<ReturnType<Pool['request']>>
    try {
      answer = await this.pool.request({
        path,
        method: req.method as 'POST',
        headers,
        body,
      })
    } catch (err) {
      throw upstreamError(err, this.opts.upstream)
    }
    const out = endToEndHeaders(answer.headers)
    out['x-cache'] = 'BYPASS'
    const cacheStatus = withChain(upstreamChain(out['cache-status']), this.opts.cacheStatus?.bypass)
    if (cacheStatus === undefined) delete out['cache-status']
    else out['cache-status'] = cacheStatus
    if (onAnswer) await onAnswer(answer.statusCode, out)
    const cookies = out['set-cookie']
    res.writeHead(
      answer.statusCode,
      cookies === undefined ? out : { ...out, 'set-cookie': setCookieLines(cookies) },
    )
    await this.forward(answer.body, res)
  }

  /** Copies the answer to the client, reading the upstream only while the client keeps up. */
  private async forward(from: Readable, res: ServerResponse): Promise<void> {
    const gone = new Promise<void>((resolve) => res.once('close', resolve))
    try {
      for await (const chunk of from) {
        if (res.destroyed) break
        if (res.write(chunk) || res.writableLength <= CLIENT_WINDOW_BYTES) continue
        this.opts.budget.stalled()
        await Promise.race([new Promise((resolve) => res.once('drain', resolve)), gone])
      }
    } catch {
      // The upstream failed half-way: the client sees a short body (its Content-Length says so).
      res.destroy()
      return
    }
    if (res.destroyed) from.destroy()
    else res.end()
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** Passes bytes through until `limit`, then fails the stream. */
class Bounded extends Transform {
  private seen = 0
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) done(new CdnError('CDN_ERR_BODY_TOO_LARGE', 'request body too large'))
    else done(null, chunk)
  }
}
