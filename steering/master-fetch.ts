/**
 * Steering's one fetch of media metadata: a title's master playlist from one candidate edge,
 * for the content-steering master (routes.ts). One deadline covers the whole exchange, from
 * connecting to the last byte: undici's own timeouts bound each wait (the headers, the gap
 * between two chunks), so an edge trickling a byte now and then would otherwise hold the
 * request, and the player, for ever. The body is bounded as it is read, with or without a
 * Content-Length.
 */
import { type Dispatcher, request } from 'undici'
import { CdnError } from '../src/errors.js'
import { readBounded } from '../src/http/bounded-body.js'

export interface MasterFetch {
  readonly dispatcher: Dispatcher
  /** ms from the request's start to its last byte. */
  readonly deadlineMs: number
  readonly maxBytes: number
}

/**
 * The master at `url`, as text. Throws CdnError: CDN_ERR_UPSTREAM_TIMEOUT past the deadline,
 * CDN_ERR_NOT_FOUND for a 404, CDN_ERR_PLAYLIST when larger than `maxBytes`, CDN_ERR_UPSTREAM
 * for any other status or a failed connection. `edge` names the edge in messages.
 */
export async function fetchMaster(url: string, edge: string, o: MasterFetch): Promise<string> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), o.deadlineMs)
  try {
    const res = await request(url, {
      dispatcher: o.dispatcher,
      signal: ac.signal,
      headers: { 'user-agent': 'cdn-steering' },
    })
    // dump(): reads a short body to its end (the connection is kept), destroys a long one.
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new CdnError(
        res.statusCode === 404 ? 'CDN_ERR_NOT_FOUND' : 'CDN_ERR_UPSTREAM',
        `edge ${edge} answered ${res.statusCode} for its master`,
      )
    }
    const tooLarge = () => new CdnError('CDN_ERR_PLAYLIST', `edge ${edge}: master playlist too large`)
    if (Number(res.headers['content-length'] ?? 0) > o.maxBytes) {
      await res.body.dump()
      throw tooLarge()
    }
    const bytes = await readBounded(res.body, o.maxBytes)
    if (!bytes) throw tooLarge()
    return bytes.toString('utf8')
  } catch (err) {
    if (err instanceof CdnError) throw err
    if (ac.signal.aborted)
      throw new CdnError(
        'CDN_ERR_UPSTREAM_TIMEOUT',
        `edge ${edge} sent no whole master within ${o.deadlineMs} ms`,
        {
          cause: err,
        },
      )
    throw new CdnError('CDN_ERR_UPSTREAM', `edge ${edge}: ${(err as { code?: string }).code ?? 'error'}`, {
      cause: err,
    })
  } finally {
    clearTimeout(timer)
  }
}
