/**
 * Purge generations: what lets a tier refuse to store what a purge has dropped. A purge (of a
 * key or of a title) takes the next number of a counter and stamps its key or title with it;
 * an operation that may put an object into a tier (a disk read promoting into memory, a
 * write's commit, a metadata refresh) takes a ticket (the counter) before its first await and
 * stores only if no purge of its key or title was stamped after it. So a purge is never undone
 * by something that started before it, and never refuses something that started after it.
 *
 * Bounded: stamps are kept for the last MAX_STAMPS purges; an older one is folded into a floor,
 * and a ticket below the floor counts as purged (a rare extra miss, never a purge undone).
 */
import { primaryOf } from './variants.js'

/** Key and title purge stamps kept (each map); older ones fold into the floor. */
const MAX_STAMPS = 10_000

export class PurgeGenerations {
  private epoch = 0
  private floor = 0
  private readonly keys = new Map<string, number>()
  private readonly titles = new Map<string, number>()

  /** Taken before an operation's first await, checked with `purgedSince` before it stores. */
  ticket(): number {
    return this.epoch
  }

  purgeKey(key: string): void {
    this.stamp(this.keys, key)
  }

  purgeTitle(title: string): void {
    this.stamp(this.titles, title)
  }

  /** Was `key` (of `title`) purged after `ticket` was taken? */
  purgedSince(ticket: number, key: string, title: string | undefined): boolean {
    if (ticket === this.epoch) return false
    if (ticket < this.floor) return true
    if ((this.keys.get(key) ?? 0) > ticket) return true
    // A variant goes with its URL (variants.ts).
    const url = primaryOf(key)
    if (url !== key && (this.keys.get(url) ?? 0) > ticket) return true
    return title !== undefined && (this.titles.get(title) ?? 0) > ticket
  }

  private stamp(map: Map<string, number>, name: string): void {
    this.epoch++
    // Re-inserted so the map stays oldest-stamp first.
    map.delete(name)
    map.set(name, this.epoch)
    if (map.size <= MAX_STAMPS) return
    const [oldest, stamp] = map.entries().next().value as [string, number]
    map.delete(oldest)
    this.floor = Math.max(this.floor, stamp)
  }
}
