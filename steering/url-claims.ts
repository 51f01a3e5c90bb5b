/**
 * One edge per URL: which registered edge holds each base URL (already normalised:
 * `normalEdgeUrl`). Two ids at one URL are one box, which steering would count twice: two
 * Pathways of a content-steering master on one edge, titles spread over it twice, failover to the
 * box that just failed. The fleet file already refuses that; the registry's records are held to
 * it here, at every change.
 *
 * The fleet file's URLs are never a record's. Among records the first keeps a URL: the one that
 * took it at the lowest etcd revision (a put that keeps its URL keeps its place), so a full read
 * and the watch's events agree, and so do several steering instances. The others wait, and the
 * first of them takes the URL when its holder leaves or moves to another URL.
 */

/** Who holds a URL another id asked for: a fleet-file edge or a registered one. */
export interface Holder {
  readonly id: string
  readonly file: boolean
}

interface Claim {
  readonly url: string
  readonly rev: bigint
}

export class UrlClaims {
  private readonly fileUrls: ReadonlyMap<string, string>
  private readonly claims = new Map<string, Claim>()
  private readonly holders = new Map<string, string>()
  /** Ids refused a URL another record holds, by URL: they may take it later. */
  private readonly waiting = new Map<string, Set<string>>()

  /** `file`: the fleet file's edges, their URLs normalised. */
  constructor(file: readonly { readonly id: string; readonly url: string }[]) {
    this.fileUrls = new Map(file.map((e) => [e.url, e.id]))
  }

  /** Whether `id` holds the URL it claims (false when it claims none). */
  holds(id: string): boolean {
    const c = this.claims.get(id)
    return c !== undefined && this.holders.get(c.url) === id
  }

  /**
   * `id` claims `url` as of etcd revision `rev`. Returns who holds the URL instead (undefined when
   * `id` does) and the other ids that now hold a URL they did not (the first waiting for the URL
   * `id` left).
   */
  claim(id: string, url: string, rev: bigint): { holder: Holder | undefined; promoted: string[] } {
    const prev = this.claims.get(id)
    if (prev?.url === url) {
      const holder = this.holderOf(id, url)
      return { holder, promoted: [] }
    }
    const promoted = prev ? this.release(id, prev.url) : []
    this.claims.set(id, { url, rev })
    const holder = this.holderOf(id, url)
    if (!holder) this.holders.set(url, id)
    else if (!holder.file) this.wait(id, url)
    return { holder, promoted }
  }

  /** `id` claims no URL any more (gone, or not steered to); returns the ids it let in. */
  drop(id: string): string[] {
    const prev = this.claims.get(id)
    if (!prev) return []
    this.claims.delete(id)
    return this.release(id, prev.url)
  }

  clear(): void {
    this.claims.clear()
    this.holders.clear()
    this.waiting.clear()
  }

  private holderOf(id: string, url: string): Holder | undefined {
    const file = this.fileUrls.get(url)
    if (file !== undefined) return { id: file, file: true }
    const held = this.holders.get(url)
    return held === undefined || held === id ? undefined : { id: held, file: false }
  }

  private wait(id: string, url: string): void {
    let ids = this.waiting.get(url)
    if (!ids) this.waiting.set(url, (ids = new Set()))
    ids.add(id)
  }

  /** `id` leaves `url`: the first waiting for it (lowest revision, then id) takes it. */
  private release(id: string, url: string): string[] {
    const ids = this.waiting.get(url)
    ids?.delete(id)
    if (ids?.size === 0) this.waiting.delete(url)
    if (this.holders.get(url) !== id) return []
    this.holders.delete(url)
    let next: string | undefined
    let best: Claim | undefined
    for (const w of ids ?? []) {
      const c = this.claims.get(w)!
      if (!best || c.rev < best.rev || (c.rev === best.rev && w < next!)) [next, best] = [w, c]
    }
    if (next === undefined) return []
    ids!.delete(next)
    if (ids!.size === 0) this.waiting.delete(url)
    this.holders.set(url, next)
    return [next]
  }
}
