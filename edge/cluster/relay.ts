/**
 * A worker passes what it does not answer itself (admin, prefill, /status, /metrics, relayed
 * methods) to its primary over the primary's unix socket, and the answer back, verbatim: the
 * method, target, headers and body go through, hop-by-hop headers do not (nor a body the
 * worker's server already read and dropped: see `relay`). The primary's answer (its status,
 * headers and JSON errors) is what the client sees, early answers included (see `relayedBody`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream'
import { Pool } from 'undici'
import { CdnError } from '../../src/errors.js'
import { sendJsonError } from '../../src/http/errors.js'
import { withoutHopByHop } from '../../src/http/hop-by-hop.js'

/** What goes through: end-to-end headers; undici sets the Host of its own connection. */
function endToEnd(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  return withoutHopByHop(headers, ['host'])
}

export class Relay {
  private readonly pool: Pool

  constructor(
    socketPath: string,
    connectTimeout: number,
    /** The largest body any route of the primary reads (see `relayedBody`). */
    private readonly maxBody: number,
  ) {
    this.pool = new Pool('http://localhost', { socketPath, connections: 16, connectTimeout })
  }

  /** `fields`: the request's fields as the edge forwards them (a relayed method), else its end-to-end ones. */
  relay(req: IncomingMessage, res: ServerResponse, fields?: Record<string, string>): void {
    const announced =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    // A body the worker's server already read and dropped (a method the primary refuses without
    // reading it) is not announced to the primary either.
    const hasBody = announced && !req.readableEnded
    const headers = fields ? { ...fields } : endToEnd(req.headers)
    if (announced && !hasBody) delete headers['content-length']
    this.pool
      .request({
        path: req.url ?? '/',
        method: req.method as 'GET',
        headers,
        ...(hasBody ? { body: relayedBody(req, this.maxBody) } : {}),
      })
      .then(({ statusCode, headers, body }) => {
        res.writeHead(statusCode, endToEnd(headers))
        pipeline(body, res, () => undefined)
      })
      .catch((cause: unknown) => {
        if (res.headersSent) return res.destroy()
        const err = new CdnError('CDN_ERR_UPSTREAM', 'the edge primary did not answer', { cause })
        sendJsonError(res, err, {}, req.method === 'HEAD')
      })
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/**
 * The body as the primary is sent it. Every route of the primary that reads a body refuses one
 * over `max` bytes, answering at once and closing: a declared length over it before reading a
 * byte, a chunked body once past it (fastify's bodyLimit, prefill's JSON parser, pass-through's
 * bound). Writing the rest into the closed socket failed the relayed request before undici read
 * the answer already there, and the client got a 502 for the primary's 413. So no more is sent
 * than the primary reads before it answers: one byte of a declared length over the bound (the
 * headers go out with the first byte), `max + 1` bytes of a chunked body. The rest stays unread
 * in the worker, whose server drops it once the answer is sent.
 */
function relayedBody(req: IncomingMessage, max: number): Readable {
  const declared = Number(req.headers['content-length'])
  return new Capped(req, Number.isFinite(declared) && declared > max ? 1 : max + 1)
}

/** Passes the first `limit` bytes of `source`, then stops reading it (and never ends). */
class Capped extends Transform {
  private left: number
  constructor(
    private readonly source: Readable,
    limit: number,
  ) {
    super()
    this.left = limit
    source.pipe(this)
    // A client gone before its body ended fails the relayed request (a pipe passes no errors).
    source.once('error', (err) => this.destroy(err))
    source.once('close', () => {
      if (!source.readableEnded && this.left > 0) this.destroy(new Error('the request body was cut short'))
    })
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length < this.left) {
      this.left -= chunk.length
      return done(null, chunk)
    }
    this.source.unpipe(this)
    done(null, chunk.subarray(0, this.left))
    this.left = 0
  }
}
