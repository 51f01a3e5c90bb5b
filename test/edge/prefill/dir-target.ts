/**
 * A real, small PrefillTarget for the job runner's tests: objects fetched over HTTP with an
 * undici Pool from a real origin and kept as files in a directory, so they survive a
 * "restart" (a new DirTarget on the same directory). It counts the upstream requests it makes.
 * The edge's own target (the tiered store behind single-flight) replaces it in edge tests.
 */
import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Pool } from 'undici'
import type { ProtectedShare, ProtectTag } from '../../../edge/cache/protected-share.js'
import type { FillOptions, PrefillTarget } from '../../../edge/prefill/target.js'
import type { FillResult } from '../../../edge/upstream/fill.js'
import { CdnError } from '../../../src/errors.js'
import { writeFileAtomic } from '../../../src/fs/atomic.js'

export class DirTarget implements PrefillTarget {
  upstreamRequests = 0
  readonly requestedPaths: string[] = []
  private readonly pool: Pool
  private readonly dir: string
  private readonly protectedObjects = new Map<string, { tag: ProtectTag; bytes: number }>()
  readonly protectedShare: ProtectedShare

  constructor(opts: { upstream: string; dir: string; capacityBytes: number }) {
    this.pool = new Pool(opts.upstream, { connections: 8 })
    this.dir = opts.dir
    const objects = this.protectedObjects
    this.protectedShare = {
      capacityBytes: opts.capacityBytes,
      usedBytes: () => [...objects.values()].reduce((s, o) => s + o.bytes, 0),
      titleBytes: (title: string) =>
        [...objects.values()].filter((o) => o.tag.title === title).reduce((s, o) => s + o.bytes, 0),
      titles: () => {
        const by = new Map<string, { title: string; rank: number; bytes: number }>()
        for (const o of objects.values()) {
          const e = by.get(o.tag.title) ?? { title: o.tag.title, rank: o.tag.rank, bytes: 0 }
          e.bytes += o.bytes
          by.set(o.tag.title, e)
        }
        return [...by.values()]
      },
      protectKey: (path, tag) => {
        if (!this.has(path)) return false
        objects.set(path, { tag, bytes: statSync(this.file(path)).size })
        return true
      },
      unprotectTitle: (title) => {
        for (const [path, o] of objects) if (o.tag.title === title) objects.delete(path)
      },
    }
  }

  close(): Promise<void> {
    return this.pool.close()
  }

  private file(path: string): string {
    return join(this.dir, createHash('sha256').update(path).digest('hex'))
  }

  has(path: string): boolean {
    return existsSync(this.file(path))
  }

  isProtected(path: string): boolean {
    return this.protectedObjects.has(path)
  }

  private async request(method: 'GET' | 'HEAD', path: string, signal?: AbortSignal) {
    this.upstreamRequests++
    this.requestedPaths.push(`${method} ${path}`)
    let res: Awaited<ReturnType<Pool['request']>>
    try {
      res = await this.pool.request({ method, path, ...(signal ? { signal } : {}) })
    } catch (err) {
      throw new CdnError('CDN_ERR_UPSTREAM', `upstream ${method} ${path} failed: ${(err as Error).message}`, {
        cause: err,
        details: { path },
      })
    }
    if (res.statusCode !== 200) {
      await res.body.dump()
      const status = res.statusCode
      const code =
        status >= 500
          ? 'CDN_ERR_UPSTREAM'
          : status === 404
            ? 'CDN_ERR_UPSTREAM_NOT_FOUND'
            : 'CDN_ERR_BAD_REQUEST'
      throw new CdnError(code, `upstream ${status} for ${path}`, { details: { path, status } })
    }
    return res
  }

  async size(path: string): Promise<number | undefined> {
    if (this.has(path)) return (await stat(this.file(path))).size
    const res = await this.request('HEAD', path)
    await res.body.dump()
    const n = Number(res.headers['content-length'])
    return Number.isFinite(n) ? n : undefined
  }

  async fill(path: string, options: FillOptions = {}): Promise<FillResult> {
    const file = this.file(path)
    let bytes: number
    let held = true
    if (this.has(path)) bytes = (await stat(file)).size
    else {
      const res = await this.request('GET', path, options.signal)
      const body = Buffer.from(await res.body.arrayBuffer())
      await writeFileAtomic(file, body)
      bytes = body.length
      held = false
    }
    if (options.protect) this.protectedObjects.set(path, { tag: options.protect, bytes })
    return { key: path, how: held ? 'held' : 'fetched', status: 200, bytes, stored: true }
  }

  async fetchText(path: string, options: FillOptions = {}): Promise<string> {
    await this.fill(path, options)
    return readFile(this.file(path), 'utf8')
  }
}
