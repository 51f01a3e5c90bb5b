/**
 * How many bytes the disk tier may hold: its effective size. It is --disk-size, except when the
 * filesystem holds less:
 *
 * - at start, --disk-size is checked against statfs (free space plus what the cache already
 *   holds, minus a margin) and clamped, with a warning;
 * - a write that fails with ENOSPC, EDQUOT or EIO lowers it to the bytes the cache holds now
 *   minus the margin; the index evicts down to it at once, so the next writes find room and the
 *   tier keeps caching (least recently used objects make way, as they would at --disk-size);
 * - while lowered, statfs is checked again after a successful write and on a timer (at most
 *   every RECHECK_MS), and the size is raised back toward --disk-size as space returns.
 *
 * Each change is logged (pino through the app's logger, rate-limited: at most one line per
 * LOG_EVERY_MS per direction, with the count since; the errno code and the role of the file,
 * never its path) and exported as `cdn_edge_disk_effective_bytes`. A failure of a write that
 * began before the last lowering does not lower again: it was still racing for the space the
 * lowering has just freed.
 */
import { promises as fsp } from 'node:fs'
import type { DiskRole } from './disk-errors.js'

/** Errno codes that mean the filesystem holds less than the tier thought. */
export const FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EIO'])
/** Room left below what the filesystem can give: at least this much... */
const MARGIN_MIN_BYTES = 1024 * 1024
/** ...or this share of the bytes held, whichever is larger. */
const MARGIN_SHARE = 0.02
/** How often, at most, statfs is checked while the size is lowered. */
export const RECHECK_MS = 10_000
const LOG_EVERY_MS = 10_000

export interface SpaceLogger {
  warn(obj: Record<string, unknown>, msg: string): void
  info(obj: Record<string, unknown>, msg: string): void
}

/** What the filesystem under the cache directory says (statfs), in bytes. */
export interface Space {
  capacity: number
  free: number
}

export interface DiskCapacityOptions {
  dir: string
  /** --disk-size. */
  configured: number
  /** Bytes the cache holds now. */
  held(): number
  /** Applies a new effective size (the index evicts down to it). */
  apply(bytes: number): void
  monotonic(): number
  /** statfs of the cache directory (injected by tests that need a filesystem of a given size). */
  statfs?: (dir: string) => Promise<Space>
}

export async function statSpace(dir: string): Promise<Space> {
  const s = await fsp.statfs(dir)
  return { capacity: s.blocks * s.bsize, free: s.bavail * s.bsize }
}

export function marginFor(held: number): number {
  return Math.max(MARGIN_MIN_BYTES, Math.floor(held * MARGIN_SHARE))
}

export class DiskCapacity {
  effective: number
  /** Times the size was lowered by a full filesystem, and raised back. */
  lowered = 0
  raised = 0
  /** Bumped at each lowering: a write remembers the epoch it began in. */
  epoch = 0
  private log: SpaceLogger | undefined
  private readonly pending: Array<{ level: 'warn' | 'info'; obj: Record<string, unknown>; msg: string }> = []
  private readonly lastLog = {
    clamped: Number.NEGATIVE_INFINITY,
    lowered: Number.NEGATIVE_INFINITY,
    raised: Number.NEGATIVE_INFINITY,
  }
  private readonly since = { clamped: 0, lowered: 0, raised: 0 }
  private lastCheck = Number.NEGATIVE_INFINITY
  private checking: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly statfs: (dir: string) => Promise<Space>

  constructor(private readonly opts: DiskCapacityOptions) {
    this.effective = opts.configured
    this.statfs = opts.statfs ?? statSpace
  }

  get reduced(): boolean {
    return this.effective < this.opts.configured
  }

  /** Starts logging (lines from before, e.g. the start-up clamp, are written now). */
  attach(log: SpaceLogger): void {
    this.log = log
    for (const p of this.pending.splice(0)) log[p.level](p.obj, p.msg)
  }

  /** At start, once the cache's bytes are known: clamps --disk-size to what the filesystem can give. */
  async clamp(onError: (err: unknown) => void): Promise<void> {
    let space: Space
    try {
      space = await this.statfs(this.opts.dir)
    } catch (err) {
      onError(err)
      return
    }
    const held = this.opts.held()
    const fits = Math.max(0, Math.min(space.capacity, held + space.free) - marginFor(held))
    if (fits >= this.opts.configured) return
    this.set(fits)
    this.write(
      'clamped',
      'warn',
      {
        configuredBytes: this.opts.configured,
        effectiveBytes: fits,
        filesystemBytes: space.capacity,
        freeBytes: space.free,
        heldBytes: held,
      },
      '--disk-size is more than the filesystem under --cache-dir can hold: the disk tier is clamped',
    )
  }

  /**
   * A write failed with `err`. A full filesystem (FULL_CODES) lowers the effective size to the
   * bytes held minus the margin, unless the write began before the last lowering (`epoch`).
   */
  failed(err: unknown, role: DiskRole, epoch: number): void {
    const code = (err as NodeJS.ErrnoException | undefined)?.code
    if (code === undefined || !FULL_CODES.has(code) || epoch < this.epoch) return
    const held = this.opts.held()
    const to = Math.max(0, Math.min(this.effective, held - marginFor(held)))
    this.epoch++
    this.lowered++
    this.set(to)
    this.write(
      'lowered',
      'warn',
      { code, role, effectiveBytes: to, configuredBytes: this.opts.configured },
      'disk tier write failed for lack of space: its effective size is lowered to what the filesystem holds, and it evicts to stay under it',
    )
  }

  /** A write succeeded: while lowered, statfs is checked again (at most every RECHECK_MS). */
  wrote(): void {
    if (this.reduced && this.opts.monotonic() - this.lastCheck >= RECHECK_MS) void this.recheck()
  }

  /** Checks statfs and raises the effective size toward --disk-size as far as space has returned. */
  recheck(): Promise<void> {
    this.checking ??= this.raise().finally(() => {
      this.checking = undefined
    })
    return this.checking
  }

  private async raise(): Promise<void> {
    this.lastCheck = this.opts.monotonic()
    let space: Space
    try {
      space = await this.statfs(this.opts.dir)
    } catch {
      // The next check tries again; a filesystem that cannot be stat'ed keeps the size it has.
      return
    }
    const held = this.opts.held()
    const fits = Math.max(
      0,
      Math.min(this.opts.configured, space.capacity, held + space.free - marginFor(held)),
    )
    if (fits <= this.effective) return
    this.raised++
    this.set(fits)
    this.write(
      'raised',
      'info',
      { effectiveBytes: fits, configuredBytes: this.opts.configured, freeBytes: space.free },
      fits === this.opts.configured
        ? 'disk tier space returned: back to --disk-size'
        : 'disk tier space returned: effective size raised',
    )
  }

  private set(bytes: number): void {
    this.effective = bytes
    this.opts.apply(bytes)
    if (this.reduced && !this.timer) {
      this.timer = setInterval(() => void this.recheck(), RECHECK_MS)
      this.timer.unref()
    } else if (!this.reduced) this.stop()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Logs a change, at most one line per kind every LOG_EVERY_MS (with how many since the last). */
  private write(
    kind: 'clamped' | 'lowered' | 'raised',
    level: 'warn' | 'info',
    obj: Record<string, unknown>,
    msg: string,
  ): void {
    this.since[kind]++
    const now = this.opts.monotonic()
    if (now - this.lastLog[kind] < LOG_EVERY_MS) return
    const line = { ...obj, count: this.since[kind] }
    this.lastLog[kind] = now
    this.since[kind] = 0
    if (this.log) this.log[level](line, msg)
    else if (this.pending.length < 8) this.pending.push({ level, obj: line, msg })
  }
}
