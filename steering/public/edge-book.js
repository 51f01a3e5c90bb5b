/**
 * The player's view of the edges for one title: steering's ranked list, which one is in use,
 * and which failed recently. Failing over takes the next edge in the list that has not
 * failed; when the list runs out it asks steering again (which by then may know the edge is
 * down) and, as a last resort, forgets old failures and starts over.
 */
const FAILED_FOR_MS = 30_000

export class EdgeBook {
  constructor({ steer, onChange }) {
    this.steer = steer
    this.onChange = onChange
    this.ranked = []
    this.current = null
    this.failed = new Map()
    this.pending = null
  }

  async start() {
    this.ranked = await this.steer()
    this.current = this.ranked[0] ?? null
    if (!this.current) throw new Error('steering returned no edge')
    this.onChange({ kind: 'steer', to: this.current, ranked: this.ranked })
    return this.current
  }

  originOf(url) {
    try {
      return new URL(url, location.href).origin
    } catch {
      return ''
    }
  }

  /** The edge (from the ranked list) a URL points at, if any. */
  edgeOf(url) {
    const o = this.originOf(url)
    return this.ranked.find((e) => this.originOf(e.url) === o) ?? null
  }

  /** Sends every request meant for one of our edges to the edge in use. */
  rewrite(url) {
    if (!this.current) return url
    const from = this.edgeOf(url)
    if (!from || from === this.current) return url
    const u = new URL(url, location.href)
    const to = new URL(this.current.url)
    u.protocol = to.protocol
    u.host = to.host
    return u.href
  }

  isFailed(edge, now = Date.now()) {
    const at = this.failed.get(edge.id)
    return at !== undefined && now - at < FAILED_FOR_MS
  }

  /** Moves to the next edge after `failedUrl` failed. Resolves true when there is one to try. */
  failover(failedUrl, why) {
    const bad = this.edgeOf(failedUrl)
    // Another request already moved us on: just retry on the current edge.
    if (bad && this.current && bad.id !== this.current.id) return Promise.resolve(true)
    if (this.pending) return this.pending
    this.pending = this.next(bad, why).finally(() => {
      this.pending = null
    })
    return this.pending
  }

  async next(bad, why) {
    const from = this.current
    if (bad) this.failed.set(bad.id, Date.now())
    let to = this.ranked.find((e) => !this.isFailed(e))
    if (!to) {
      try {
        this.ranked = await this.steer()
      } catch {
        // Steering unreachable: keep the list we have.
      }
      to = this.ranked.find((e) => !this.isFailed(e))
    }
    if (!to) {
      this.failed.clear()
      to = this.ranked.find((e) => e.id !== bad?.id) ?? null
    }
    if (!to) return false
    this.current = to
    this.onChange({ kind: 'failover', from, to, why, ranked: this.ranked })
    return true
  }
}
