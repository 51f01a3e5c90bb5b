/**
 * A worker passes what it does not answer itself (admin, prefill, /status, /metrics, relayed
 * methods) to its primary over the primary's unix socket, and the answer back, verbatim: the
 * method, target, headers and body go through, hop-by-hop headers do not (nor a body the
 * worker's server already read and dropped: see `relay`). The primary's answer (its status,
 * headers and JSON errors) is what the client sees.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream'
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

  constructor(socketPath: string, connectTimeout: number) {
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
        ...(hasBody ? { body: req } : {}),
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
