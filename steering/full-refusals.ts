/**
 * Registry keys refused because the watch already held `maxEdges` records, taken in once there is
 * room (steering/registry-watch.ts). An edge keeps its key alive with a lease and never puts it
 * again, so a refused key must be read back from etcd: only the ids are kept (at most maxEdges,
 * each with the revision of its refused put), never a value.
 *
 * After every watch event that leaves room, the refused keys that fit (lowest revision first, then
 * key: the order a full read takes them in) are read in one range call, one read at a time (events
 * during a read ask for one more after it), retried with backoff while etcd fails. A key read back
 * is applied, through the watch's own put, only when etcd still holds the very put that was
 * refused: its id still refused, at that revision. A key the read finds deleted or put again has
 * that event on its way in the watch, which settles it (a delete forgets the id, a put is taken in
 * or refused again), so a read never brings back a deleted key, never puts an older value over a
 * newer one, and never runs ahead of the watch (whose older events would then roll it back).
 *
 * Past maxEdges refused ids the others are not tracked: when the ids tracked cannot fill the room,
 * the watch reads the whole prefix again (`resync`, as at start), which finds them all.
 */
import type { Etcd3, IKeyValue } from 'etcd3'

export interface FullRefusalsOptions {
  /** The watch's etcd client as it stands (a deaf watch replaces it: registry-watch.ts). */
  readonly client: () => Etcd3
  readonly prefix: string
  /** Most ids tracked: the watch's maxEdges. */
  readonly max: number
  /** How many more records the watch can hold now. */
  readonly room: () => number
  /** Applies a key read back, as the watch applies a put. */
  readonly apply: (kv: IKeyValue) => void
  /** Reads the whole prefix again and watches from there: refused ids were not tracked. */
  readonly resync: () => void
  readonly warn: (obj: Record<string, unknown>, msg: string) => void
}

const MAX_BACKOFF_MS = 5000

export class FullRefusals {
  /** Refused id → the etcd revision of its refused put. */
  private readonly ids = new Map<string, bigint>()
  /** An id was refused past `max`: only a full read finds it. */
  private untracked = false
  /** A read is queued, in flight or waiting to be retried (or a resync asked for). */
  private busy = false
  /** Something changed while busy: look again once the read is applied. */
  private again = false
  private failures = 0
  private retry: NodeJS.Timeout | null = null
  /** Bumped by clear(): a read begun before a full read is dropped. */
  private generation = 0
  private stopped = false

  constructor(private readonly options: FullRefusalsOptions) {}

  /** Ids refused as full now (at most max: at least that many). */
  get size(): number {
    return this.ids.size
  }

  /** Every refused id is tracked (none came past `max`). */
  get complete(): boolean {
    return !this.untracked
  }

  /** `id`'s put at revision `rev` is refused: no room. */
  refuse(id: string, rev: bigint): void {
    if (this.ids.has(id) || this.ids.size < this.options.max) this.ids.set(id, rev)
    else this.untracked = true
  }

  /** `id` is refused no more: taken in, deleted, or refused for another reason. */
  forget(id: string): void {
    this.ids.delete(id)
  }

  /** A full read starts again from etcd's state: nothing is refused, nothing read back. */
  clear(): void {
    this.ids.clear()
    this.untracked = false
    this.generation++
    this.busy = false
    this.again = false
    if (this.retry) clearTimeout(this.retry)
    this.retry = null
  }

  /** Called after every watch event: reads refused keys back when there is room for them. */
  check(): void {
    if (this.stopped || !this.wanted()) return
    if (this.busy) return void (this.again = true)
    this.busy = true
    // After the burst: one read for every event of an etcd response.
    setImmediate(() => void this.read())
  }

  stop(): void {
    this.stopped = true
    if (this.retry) clearTimeout(this.retry)
  }

  private wanted(): boolean {
    return this.options.room() > 0 && (this.ids.size > 0 || this.untracked)
  }

  private async read(): Promise<void> {
    const { prefix, room, apply, resync, warn } = this.options
    const client = this.options.client()
    const generation = this.generation
    this.again = false
    if (this.stopped || !this.wanted()) return void (this.busy = false)
    const free = room()
    // Stays busy: clear() (the full read applied) ends it.
    if (this.untracked && this.ids.size < free) return resync()
    const picked = [...this.ids]
      .sort(([a, x], [b, y]) => (x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0))
      .slice(0, free)
    const keys = picked.map(([id]) => Buffer.from(prefix + id)).sort(Buffer.compare)
    let kvs: IKeyValue[]
    try {
      const end = Buffer.concat([keys.at(-1)!, Buffer.from([0])])
      kvs = (await client.getAll().inRange({ start: keys[0]!, end }).exec()).kvs
    } catch (err) {
      if (this.stopped || generation !== this.generation) return
      warn(
        { event: 'registry-error', err: (err as Error).message },
        'fleet registry: refused keys not readable: retrying',
      )
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.failures++)
      this.retry = setTimeout(() => {
        this.retry = null
        void this.read()
      }, delay)
      this.retry.unref?.()
      return
    }
    if (this.stopped || generation !== this.generation) return
    this.failures = 0
    const byId = new Map(kvs.map((kv) => [kv.key.toString().slice(prefix.length), kv]))
    for (const [id] of picked) {
      if (room() <= 0) break
      const kv = byId.get(id)
      const rev = this.ids.get(id)
      if (kv && rev !== undefined && BigInt(kv.mod_revision) === rev) apply(kv)
    }
    this.busy = false
    if (this.again) this.check()
  }
}
