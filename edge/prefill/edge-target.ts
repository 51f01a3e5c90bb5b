/**
 * PrefillTarget on a real edge: every fetch goes through the edge's single-flight fill path
 * (a prefill and a viewer never fetch one object twice), sizes come from the held entry or an
 * upstream HEAD, and protection is the disk tier's protected share. wiring.ts builds the port
 * from the edge's internals; this file depends only on the port.
 */
import { CdnError } from '../../src/errors.js'
import type { ProtectedShare } from '../cache/protected-share.js'
import type { FillResult } from '../upstream/fill.js'
import type { FillOptions, PrefillTarget } from './target.js'

export interface EdgeFillPort {
  /** The cache key of a request path (the edge's key rules). */
  keyOf(path: string): string
  /** The edge's fill path: single-flight, stored as viewers' misses are; `pace` holds the body's chunks. */
  fill(path: string, opts: { protect: boolean; pace?: (bytes: number) => number }): Promise<FillResult>
  /** Whether the key is held and fresh. */
  holds(key: string): boolean
  /** Body length of a held object. */
  heldBytes(key: string): number | undefined
  /** Body of a held object (verified), or undefined. */
  readHeld(key: string): Promise<Buffer | undefined>
  /** An upstream HEAD: status and Content-Length. */
  head(path: string): Promise<{ status: number; length: number | undefined }>
  readonly protection: ProtectedShare
  /** Tells `fn` of each title whose purge begins; the answer stops telling it. */
  onPurge?(fn: (title: string) => void): () => void
  /** Tells `fn` of each key the fill path commits (a viewer's miss or a fill); the answer stops it. */
  onStored?(fn: (key: string) => void): () => void
}

function statusError(path: string, status: number): CdnError {
  const details = { path, status }
  if (status >= 500) return new CdnError('CDN_ERR_UPSTREAM', `upstream ${status} for ${path}`, { details })
  if (status === 404 || status === 410)
    return new CdnError('CDN_ERR_UPSTREAM_NOT_FOUND', `upstream ${status} for ${path}`, { details })
  return new CdnError('CDN_ERR_UPSTREAM_REFUSED', `upstream ${status} for ${path}`, { details })
}

export class EdgePrefillTarget implements PrefillTarget {
  readonly protectedShare: ProtectedShare
  /** A fill's body is read at the pace the job asks (single-flight.ts). */
  readonly paces = true

  constructor(private readonly port: EdgeFillPort) {
    this.protectedShare = port.protection
  }

  has(path: string): boolean {
    return this.port.holds(this.port.keyOf(path))
  }

  async size(path: string): Promise<number | undefined> {
    const key = this.port.keyOf(path)
    const held = this.port.holds(key) ? this.port.heldBytes(key) : undefined
    if (held !== undefined) return held
    const { status, length } = await this.port.head(path)
    if (status !== 200) throw statusError(path, status)
    return length
  }

  async fill(path: string, options: FillOptions = {}): Promise<FillResult> {
    const key = this.port.keyOf(path)
    const r = await this.port.fill(path, {
      protect: options.protect !== undefined,
      ...(options.pace ? { pace: options.pace } : {}),
    })
    if (r.status !== 200) throw statusError(path, r.status)
    if (!r.stored)
      throw new CdnError(
        'CDN_ERR_UPSTREAM',
        `upstream answer for ${path} is not cacheable (or too large to hold)`,
        {
          details: { path },
          status: 502,
        },
      )
    const bytes = r.how === 'held' ? (this.port.heldBytes(key) ?? 0) : r.bytes
    if (options.protect) this.port.protection.protectKey(key, options.protect)
    return { ...r, bytes }
  }

  async fetchText(path: string, options: FillOptions = {}): Promise<string> {
    await this.fill(path, options)
    const body = await this.port.readHeld(this.port.keyOf(path))
    if (!body)
      throw new CdnError('CDN_ERR_UPSTREAM', `${path} was evicted before it could be read`, {
        details: { path },
      })
    return body.toString('utf8')
  }
}
