/**
 * How the disk tier's index outlives a restart (disk-store.ts): rebuilt at open from the index
 * snapshot and a scan of what it does not vouch for (disk-rebuild.ts), and the snapshot rewritten
 * every SNAPSHOT_EVERY_MS while the index changes, and on close (disk-snapshot.ts).
 */
import type { Clock } from '../../src/clock.js'
import type { DiskIndex } from './disk-index.js'
import { rebuild, type RebuildTarget } from './disk-rebuild.js'
import { removeCutSnapshots, writeSnapshot } from './disk-snapshot.js'
import type { EntryOptions } from './entry.js'

/** How often the index snapshot is rewritten while the index changes (and on close). */
const SNAPSHOT_EVERY_MS = 5 * 60_000

export class IndexPersistence {
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> | undefined
  /** index.changes when the last snapshot was taken. */
  private snapshotAt = 0
  /** Buckets the start-up took from the snapshot and scanned (-1: no snapshot, all scanned). */
  restored = { trusted: 0, scanned: -1 }
  /**
   * Resolves once the buckets the snapshot did not vouch for are scanned: the tier serves from
   * open on, and until then a key of such a bucket is a miss (disk-rebuild.ts).
   */
  validated: Promise<void> = Promise.resolve()
  private validating = false

  constructor(
    private readonly dir: string,
    private readonly index: DiskIndex,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Rebuilds the index from the snapshot and a scan (disk-rebuild.ts). */
  async rebuild(opts: EntryOptions & { scanBeforeReady?: number }, target: RebuildTarget): Promise<void> {
    await removeCutSnapshots(this.dir, this.onError)
    const rebuilt = await rebuild(this.dir, opts, target, this.onError)
    this.restored = rebuilt.restored
    this.snapshotAt = this.index.changes
    if (!rebuilt.validated) return
    // Until the scan completes no snapshot is written (see `snapshot`).
    this.validating = true
    this.validated = rebuilt.validated.then((done) => {
      this.validating = !done
    })
  }

  /** Rewrites the snapshot every SNAPSHOT_EVERY_MS while the index changes. */
  start(): void {
    this.timer = setInterval(() => void this.snapshotIfChanged(), SNAPSHOT_EVERY_MS)
    this.timer.unref()
  }

  /** Stops the timer; true if it ran (the tier was opened with a size: close writes a snapshot). */
  stop(): boolean {
    clearInterval(this.timer)
    return this.timer !== undefined
  }

  /**
   * Writes the index snapshot (see disk-snapshot.ts); one at a time. Not while the start-up's
   * scan runs (buckets not scanned yet would be recorded as holding nothing): the snapshot the
   * start used stays, and is validated again at the next start as it was at this one.
   */
  snapshot(): Promise<void> {
    if (this.validating) return Promise.resolve()
    this.writing ??= writeSnapshot(
      this.dir,
      () => this.index.records(),
      () => this.clock.now(),
      this.onError,
    ).finally(() => {
      this.writing = undefined
    })
    return this.writing
  }

  private async snapshotIfChanged(): Promise<void> {
    if (this.index.changes === this.snapshotAt) return
    this.snapshotAt = this.index.changes
    await this.snapshot()
  }
}
