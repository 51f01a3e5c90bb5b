/**
 * Disk errors are counted (for /metrics) and logged, at most one line per kind (errno code and
 * the role of the file: an object's body, a temp file being written, the index scan, a trailer
 * rewrite) every LOG_EVERY_MS, with how many of that kind happened since the last line. The
 * path is never logged (it names the cache layout), nor the error's message (which holds it).
 */

/** What the failing file was for. */
export type DiskRole = 'body' | 'temp' | 'index' | 'trailer'

export interface DiskErrorLogger {
  warn(obj: Record<string, unknown>, msg: string): void
}

const LOG_EVERY_MS = 10_000
/** Kinds tracked for rate limiting; past it, new kinds share one line per interval. */
const MAX_KINDS = 64

export class DiskErrorLog {
  private log: DiskErrorLogger | undefined
  private readonly kinds = new Map<string, { lastMs: number; since: number }>()

  constructor(private readonly monotonic: () => number) {}

  /** Starts logging (the logger exists once the app is built; errors before are in the first line). */
  attach(log: DiskErrorLogger): void {
    this.log = log
  }

  record(err: unknown, role: DiskRole): void {
    const e = err as NodeJS.ErrnoException | undefined
    const code = e?.code ?? 'EUNKNOWN'
    const id = this.kinds.size >= MAX_KINDS && !this.kinds.has(`${code}:${role}`) ? '*' : `${code}:${role}`
    let kind = this.kinds.get(id)
    if (!kind) {
      kind = { lastMs: Number.NEGATIVE_INFINITY, since: 0 }
      this.kinds.set(id, kind)
    }
    kind.since++
    const now = this.monotonic()
    if (!this.log || now - kind.lastMs < LOG_EVERY_MS) return
    this.log.warn(
      { code, role, ...(e?.syscall ? { syscall: e.syscall } : {}), count: kind.since },
      'disk error (the edge keeps serving; the object is dropped or not stored)',
    )
    kind.lastMs = now
    kind.since = 0
  }
}
