/**
 * Is the registry watch still following etcd? A watch can stop delivering without an error (the
 * etcd3 client has had such bugs: microsoft/etcd3 issues 72 and 78), and steering would then stay
 * on an old fleet for ever. Every interval one small range read gets the newest key under the
 * prefix and how many keys there are. The watch is behind when etcd holds a put it has not
 * delivered (the newest key's revision at or past the watch's next one) or another number of keys
 * than are held (a delete not delivered; compared only when every key is counted). Behind at two
 * checks in a row with nothing delivered between them, it is deaf: `deaf` is called, once. A
 * change still on its way at one check has arrived by the next, so a live watch is never taken
 * for a deaf one. A check that etcd does not answer proves nothing.
 */
import type { Etcd3, Watcher } from 'etcd3'

export interface WatchCheckOptions {
  /** The watch's etcd client as it stands. */
  readonly client: () => Etcd3
  readonly prefix: string
  readonly intervalMs: number
  /** The watch to check now; null while there is none (a full read under way). */
  readonly watcher: () => Watcher | null
  /** How many keys under the prefix the watch has accounted for; undefined: not all are counted. */
  readonly held: () => number | undefined
  /** The watch now is deaf: what etcd holds, and what was held. */
  readonly deaf: (found: { revision: string; keys: number; held?: number }) => void
}

export class WatchCheck {
  private timer: NodeJS.Timeout | null = null
  private checking = false
  /** The watch was behind at the last check: its watcher and its next revision then. */
  private behind: { watcher: Watcher; next: bigint } | null = null
  /** Checks that etcd answered. */
  checks = 0

  constructor(private readonly options: WatchCheckOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.intervalMs)
    this.timer.unref?.()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private async check(): Promise<void> {
    const { prefix } = this.options
    const watcher = this.options.watcher()
    if (!watcher || this.checking) return
    this.checking = true
    try {
      const res = await this.options.client().getAll().prefix(prefix).sort('Mod', 'Descend').limit(1).exec()
      if (this.options.watcher() !== watcher || !this.timer) return
      this.checks++
      const next = BigInt(watcher.lastRevision() ?? 0)
      const newest = res.kvs[0] ? BigInt(res.kvs[0].mod_revision) : 0n
      const keys = Number(res.count)
      const held = this.options.held()
      if (newest < next && (held === undefined || keys === held)) {
        this.behind = null
        return
      }
      if (this.behind?.watcher !== watcher || this.behind.next !== next) {
        this.behind = { watcher, next }
        return
      }
      this.behind = null
      this.options.deaf({
        revision: newest.toString(),
        keys,
        ...(held === undefined ? {} : { held }),
      })
    } catch {
      // etcd unreachable: the watch's own reconnection is at work; the next check looks again.
    } finally {
      this.checking = false
    }
  }
}
