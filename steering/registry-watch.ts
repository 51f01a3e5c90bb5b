/**
 * Steering's view of the fleet registry in etcd (the contract in src/fleet-registry.ts): reads
 * every record under the prefix, then watches the prefix from the revision after that read, so
 * no change between the two is missed. Each change updates the records held (registry-records.ts)
 * and, once per burst (coalesced to one call per tick), hands the whole set to `onChange`, which
 * merges it with the fleet file and gives it to the health monitor (edges join and leave without
 * a restart). A record at the URL of a file edge or of another record is held back (steering's
 * fleet has one edge per URL: url-claims.ts) until that URL is free. A key that comes past
 * maxEdges is refused, and read back from etcd once a record leaves (full-refusals.ts): edges
 * never put their key again. While etcd is unreachable the last records stay as they are:
 * steering keeps answering from its last view, and the etcd3 client resumes the watch where it
 * stopped once a member answers again. A watch that stops delivering without an error is found
 * by a periodic check (watch-check.ts) and replaced by a full read.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import {
  cancelWithin,
  ETCD_CALL_TIMEOUT_MS,
  type EdgeRecord,
  etcdClient,
  within,
} from '../src/fleet-registry.js'
import { FullRefusals } from './full-refusals.js'
import type { EdgeConfig } from './registry.js'
import { type LeftOutReason, RegistryRecords } from './registry-records.js'
import { WatchCheck } from './watch-check.js'

export interface RegistryWatchOptions {
  readonly endpoints: readonly string[]
  readonly prefix: string
  /**
   * Most records held; past it a new edge is refused (and logged), never an unbounded map, and
   * taken in once one leaves.
   */
  readonly maxEdges: number
  /** How often the watch is checked against etcd (ms; default 30 s). */
  readonly checkIntervalMs?: number
  /**
   * The fleet file's edges: a record under one of their ids is the file's to decide (mergeFleet),
   * and none of their URLs is a record's.
   */
  readonly file?: readonly Pick<EdgeConfig, 'id' | 'url'>[]
  /**
   * Called once per burst of changes with the records as they stand (those held back at another
   * edge's URL left out) and the ids that changed (null after a full read: apply them all).
   */
  readonly onChange: (records: ReadonlyMap<string, EdgeRecord>, changed: ReadonlySet<string> | null) => void
  readonly log: {
    info(obj: Record<string, unknown>, msg: string): void
    warn(obj: Record<string, unknown>, msg: string): void
  }
}

const MAX_BACKOFF_MS = 5000
const CHECK_INTERVAL_MS = 30_000
/**
 * A watch etcd3 has not created, or cancelled, by then is given up with its client (`openWatch`,
 * `readAgain`): its stream may be one etcd3 no longer reads (`replaceDeaf`).
 */
const WATCH_STALL_MS = ETCD_CALL_TIMEOUT_MS

export class RegistryWatch {
  /** Replaced when a deaf watch is found (`renewClient`). */
  private client: Etcd3
  /** The records held, and the keys refused (registry-records.ts). */
  private readonly store: RegistryRecords
  private readonly full: FullRefusals
  private watcher: Watcher | null = null
  private stopped = false
  private pending = false
  /** Ids changed since the last onChange; null: a full read (everything may have changed). */
  private dirty: Set<string> | null = new Set()
  private retry: NodeJS.Timeout | null = null
  private failures = 0
  /** The full read under way, if any: one at a time, each opening one watch. */
  private reading: Promise<void> | null = null
  /** A full read was asked for while one was under way: it runs again once that one ends. */
  private again = false
  /** Finds a watch that stopped delivering (watch-check.ts). */
  readonly check: WatchCheck
  /**
   * The newest etcd revision whose changes under the prefix are all applied here: the full read's,
   * then each event's. The watch resumes after it, never past it (`holdRevision`).
   */
  private applied = 0n
  /** Watches found deaf and replaced (cdn_steering_registry_watch_stale_total). */
  staleWatches = 0
  /** Resolves once the first full read is applied. */
  readonly synced: Promise<void>
  private markSynced!: () => void

  constructor(private readonly options: RegistryWatchOptions) {
    this.client = etcdClient(options.endpoints)
    this.full = new FullRefusals({
      client: () => this.client,
      prefix: options.prefix,
      max: options.maxEdges,
      room: () => this.store.room(),
      apply: (kv) => this.readBack(kv),
      resync: () => void this.resync(),
      warn: (obj, msg) => options.log.warn(obj, msg),
    })
    this.store = new RegistryRecords(options, this.full)
    this.synced = new Promise((resolve) => (this.markSynced = resolve))
    this.check = new WatchCheck({
      client: () => this.client,
      prefix: options.prefix,
      intervalMs: options.checkIntervalMs ?? CHECK_INTERVAL_MS,
      watcher: () => (this.reading || this.stopped ? null : this.watcher),
      held: () => this.store.held(),
      deaf: (found) => void this.replaceDeaf(found),
    })
  }

  /** Records as they stand, by id order (the same set gives the same list on every instance). */
  get current(): EdgeRecord[] {
    return this.store.current
  }

  /** Registry keys refused as they stand, by reason (registry-records.ts). For steering's metrics. */
  get leftOut(): Record<LeftOutReason, number> {
    return this.store.leftOut
  }

  start(): void {
    void this.sync()
    this.check.start()
  }

  /**
   * Reads the whole prefix and watches it from there. One read at a time: a read asked for while
   * one is under way (a SIGHUP's setFile, a resync, a lost watch) runs once that one ends, and
   * the watch the first opened is cancelled unused, so no watcher is left attached to the client.
   * A failed read is retried with a growing delay; a read asked for meanwhile replaces the retry.
   */
  private sync(): Promise<void> {
    if (this.reading) {
      this.again = true
      return this.reading
    }
    if (this.retry) clearTimeout(this.retry)
    this.retry = null
    const run = async (): Promise<void> => {
      let ok: boolean
      do {
        this.again = false
        ok = await this.read()
      } while (this.again && !this.stopped)
      this.reading = null
      if (ok || this.stopped) return
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.failures++)
      this.retry = setTimeout(() => {
        this.retry = null
        void this.sync()
      }, delay)
      this.retry.unref?.()
    }
    this.reading = run()
    return this.reading
  }

  /** One full read and its watch; false when etcd did not answer (logged). */
  private async read(): Promise<boolean> {
    if (this.stopped) return true
    const { prefix, log } = this.options
    try {
      const res = await this.client.getAll().prefix(prefix).exec()
      this.store.clear()
      this.dirty = null
      // In the order they were written, as the watch would have seen them: of two records at one
      // URL the first keeps it, here as on every instance.
      const kvs = [...res.kvs].sort(
        (a, b) => compareRevisions(a.mod_revision, b.mod_revision) || Buffer.compare(a.key, b.key),
      )
      for (const kv of kvs) this.store.put(kv)
      const applied = BigInt(res.header.revision)
      const from = (applied + 1n).toString()
      const watcher = await this.openWatch(from)
      // Stopped, or another read was asked for meanwhile (it starts once this returns).
      if (this.stopped || this.again) {
        // Bounded, as in readAgain: a stream stalled since "created" never answers the cancel.
        if (!(await cancelWithin(watcher, WATCH_STALL_MS)) && !this.stopped) this.renewClient()
        return true
      }
      this.watcher = watcher
      this.applied = applied
      this.holdRevision(watcher)
      // A watcher cancelled for a full read (resync) may still deliver an event: it is dropped.
      watcher.on('put', (kv) => {
        if (this.watcher !== watcher) return
        this.appliedUpTo(kv)
        for (const id of this.store.put(kv)) this.changed(id)
        this.full.check()
      })
      watcher.on('delete', (kv) => {
        if (this.watcher !== watcher) return
        this.appliedUpTo(kv)
        for (const c of this.store.deleted(kv.key.toString().slice(prefix.length))) this.changed(c)
        this.full.check()
      })
      // etcd cancels a watch it cannot resume (its revision compacted while steering was cut off
      // from every member): the watcher is dead, so the prefix is read again and watched from there.
      watcher.on('error', (err) => {
        if (this.watcher !== watcher) return
        this.watcher = null
        log.warn(
          { event: 'registry-watch-lost', err: err.message },
          'fleet registry watch cancelled: reading it all again',
        )
        void this.sync()
      })
      watcher.on('disconnected', (err) =>
        log.warn(
          { event: 'registry-disconnected', err: err.message },
          'fleet registry unreachable: keeping the last view',
        ),
      )
      watcher.on('connected', () => {
        if (this.watcher === watcher) this.holdRevision(watcher)
        log.info({ event: 'registry-connected' }, 'fleet registry watch connected')
      })
      this.failures = 0
      log.info({ event: 'registry-synced', edges: this.store.taken.size }, 'fleet registry read')
      this.changed()
      this.markSynced()
      return true
    } catch (err) {
      if (this.stopped) return true
      log.warn(
        { event: 'registry-error', err: (err as Error).message },
        'fleet registry not readable: retrying',
      )
      return false
    }
  }

  /** An event of the watch is applied: every change up to its revision is. */
  private appliedUpTo(kv: IKeyValue): void {
    const rev = BigInt(kv.mod_revision)
    if (rev > this.applied) this.applied = rev
  }

  /**
   * etcd3 1.1 moves a watcher's resume revision to etcd's current one as soon as etcd answers
   * "created" (its own 'connected' listener), before etcd has sent the changes the watcher
   * missed meanwhile: a stream that breaks again before they come resumed past them, and they
   * were never delivered (no error; the watch went on with later changes). Put back after every
   * "created": the watch resumes after the last change applied here. Later answers move it on
   * as etcd3 does (each carries every change up to its revision).
   */
  private holdRevision(watcher: Watcher): void {
    const next = this.applied + 1n
    const request = watcher.request as { start_revision?: string | number }
    if (request.start_revision === undefined || BigInt(request.start_revision) > next)
      request.start_revision = next.toString()
  }

  /** A key refused as full, read back now there is room: applied as the watch's put. */
  private readBack(kv: IKeyValue): void {
    const key = kv.key.toString()
    this.options.log.info({ event: 'registry-room', key }, `fleet registry: ${key} read back: there is room`)
    for (const id of this.store.put(kv)) this.changed(id)
  }

  /**
   * The fleet file was read again (SIGHUP): its ids and URLs hold from a full read, made now (the
   * records it held back, or that held back a newcomer, are weighed again).
   */
  async setFile(file: readonly Pick<EdgeConfig, 'id' | 'url'>[]): Promise<void> {
    this.store.setFile(file)
    await this.readAgain()
  }

  /**
   * The watch missed a change (watch-check.ts): read again on a new client. The old one's stream
   * may be one etcd3 no longer reads: one exception in its stream handler (a response for a
   * watch it no longer lists) and grpc-js is never asked for the next message, with no error
   * and its pings still answered. Every watch of that client is then deaf, a cancel waits for an
   * answer never read, and a new watch on it is never created.
   */
  private replaceDeaf(found: Record<string, unknown>): Promise<void> {
    this.staleWatches++
    this.options.log.warn(
      { event: 'registry-watch-stale', ...found },
      'fleet registry watch missed a change: reading it all again',
    )
    this.watcher = null
    this.renewClient()
    return this.sync()
  }

  /** Closes the client (its watch stream too: src/fleet-registry.ts) for a new one. */
  private renewClient(): void {
    const old = this.client
    this.client = etcdClient(this.options.endpoints)
    old.close()
  }

  /**
   * Watches the prefix from revision `from`. A create etcd3 does not answer in time (its stream
   * stalled, as above, or every member unreachable) fails the read, which is retried on a new
   * client.
   */
  private async openWatch(from: string): Promise<Watcher> {
    const pending = this.client.watch().prefix(this.options.prefix).startRevision(from).create()
    try {
      const watcher = await within(pending, WATCH_STALL_MS)
      if (watcher) return watcher
      throw new Error('watch not created in time')
    } catch (err) {
      if (!this.stopped) this.renewClient()
      pending.then((w) => w.cancel()).catch(() => undefined)
      throw err
    }
  }

  /** More keys were refused as full than are tracked. */
  private resync(): Promise<void> {
    this.options.log.info(
      { event: 'registry-resync', maxEdges: this.options.maxEdges },
      `fleet registry: over ${this.options.maxEdges} keys refused as full: reading it all again`,
    )
    return this.readAgain()
  }

  /**
   * Drops the watch (its late events too) and reads the whole prefix again, watching from there.
   * A cancel etcd3 does not answer in time gives up the client (`replaceDeaf`).
   */
  private async readAgain(): Promise<void> {
    const watcher = this.watcher
    this.watcher = null
    if (watcher && !(await cancelWithin(watcher, WATCH_STALL_MS)) && !this.stopped) this.renewClient()
    await this.sync()
  }

  /** One onChange per burst of events, with the ids they touched. */
  private changed(id?: string): void {
    if (id !== undefined) this.dirty?.add(id)
    if (this.pending) return
    this.pending = true
    setImmediate(() => {
      this.pending = false
      const changed = this.dirty
      this.dirty = new Set()
      if (!this.stopped) this.options.onChange(this.store.taken, changed)
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.full.stop()
    if (this.retry) clearTimeout(this.retry)
    this.check.stop()
    // Bounded: a stalled stream never answers the cancel, and close() cancels the stream anyway.
    if (this.watcher) await cancelWithin(this.watcher, WATCH_STALL_MS)
    this.client.close()
  }
}

function compareRevisions(a: string, b: string): number {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}
