/**
 * One edge per cache directory. Two edges on one --cache-dir would evict each other's files
 * and delete each other's temp files at start; the second one to start is refused with
 * CDN_ERR_CACHE_DIR_LOCKED, naming the pid (and host) that holds the directory. The workers of
 * one edge (--workers) share the directory legitimately: the primary holds the lock, the workers
 * only read.
 *
 * The lock is the file `{cacheDir}/edge.lock`, holding the owner's pid, host name, process
 * start time and a random nonce. It is written to a temp file and hard-linked into place, so it
 * appears whole or not at all, and only one of two racing edges gets it (link fails on EEXIST).
 * A lock left behind by an edge that is gone is taken over:
 * - same host: the pid is not alive (gone, or a zombie its parent has not reaped yet), or is
 *   alive but started at another time (a reused pid), or is our own pid outside this process's
 *   own locks (a container restarted as pid 1);
 * - another host (a container with a new name on the same volume): its heartbeat stopped (the
 *   holder touches the file every HEARTBEAT_MS; one untouched for STALE_MS is stale).
 * A take-over renames the stale file aside and checks it was the one judged stale before
 * linking its own, so two edges taking over at once cannot both win.
 *
 * Why not proper-lockfile: its staleness is the heartbeat's age alone, so an edge restarted
 * right after a kill -9 would wait out the stale period, and it records no owner to name.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { CdnError } from '../../src/errors.js'

export const LOCK_FILE = 'edge.lock'
export const HEARTBEAT_MS = 10_000
export const STALE_MS = 60_000

interface Owner {
  pid: number
  host: string
  /** Process start time from /proc (clock ticks since boot), when the platform has it. */
  started: string | null
  nonce: string
}

/** Directories locked by this process (a second edge in one process is refused too). */
const held = new Set<string>()

export interface DirLock {
  release(): Promise<void>
}

/** `/proc/{pid}/stat`'s start time (field 22), or null where there is no /proc. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

/** `/proc/{pid}/stat`'s state (field 3), or null where there is no /proc. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null
  } catch {
    return null
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // A zombie (Z) or dying (X) process answers kill(0) until its parent reaps it, which may be
  // late (an init that reaps lazily) or never (a parent that does not wait): it holds nothing.
  const state = processState(pid)
  return state !== 'Z' && state !== 'X'
}

/** Why a lock's owner is gone, or undefined while it holds the lock. */
function staleness(owner: Owner, mtimeMs: number, nowMs: number, dir: string): string | undefined {
  if (owner.host !== hostname()) return nowMs - mtimeMs > STALE_MS ? 'heartbeat stopped' : undefined
  if (owner.pid === process.pid) return held.has(dir) ? undefined : 'own pid, earlier process'
  if (!alive(owner.pid)) return 'pid not alive'
  const started = processStart(owner.pid)
  if (owner.started !== null && started !== null && started !== owner.started) return 'pid reused'
  return undefined
}

async function readOwner(file: string): Promise<{ owner: Owner | undefined; mtimeMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)])
    let owner: Owner | undefined
    try {
      const o = JSON.parse(text) as Owner
      if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.nonce === 'string') owner = o
    } catch {
      // Not ours or damaged: judged by its age alone.
    }
    return { owner, mtimeMs: st.mtimeMs }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Takes the lock on `dir` (created if missing) or throws CDN_ERR_CACHE_DIR_LOCKED.
 * `onTakeOver` hears of a stale lock taken over (for the log).
 */
export async function lockDir(
  dirIn: string,
  now: () => number,
  onTakeOver?: (previous: { pid: number | undefined; host: string | undefined; reason: string }) => void,
): Promise<DirLock> {
  const dir = resolve(dirIn)
  await fsp.mkdir(dir, { recursive: true })
  const file = join(dir, LOCK_FILE)
  const me: Owner = {
    pid: process.pid,
    host: hostname(),
    started: processStart(process.pid),
    nonce: randomBytes(8).toString('hex'),
  }
  for (let attempt = 0; ; attempt++) {
    if (await link(file, me)) break
    const found = await readOwner(file)
    if (!found) continue
    const reason = found.owner
      ? staleness(found.owner, found.mtimeMs, now(), dir)
      : now() - found.mtimeMs > STALE_MS
        ? 'unreadable and old'
        : undefined
    if (reason === undefined || attempt >= 3) throw lockedError(dirIn, found.owner)
    if (await setAside(file, found.owner?.nonce))
      onTakeOver?.({ pid: found.owner?.pid, host: found.owner?.host, reason })
  }
  held.add(dir)
  const heartbeat = setInterval(() => {
    const t = new Date(now())
    fsp.utimes(file, t, t).catch(() => undefined)
  }, HEARTBEAT_MS)
  heartbeat.unref()
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      clearInterval(heartbeat)
      held.delete(dir)
      const found = await readOwner(file).catch(() => undefined)
      if (found?.owner?.nonce === me.nonce) await fsp.unlink(file).catch(() => undefined)
    },
  }
}

function lockedError(dir: string, owner: Owner | undefined): CdnError {
  const who = owner
    ? `pid ${owner.pid}${owner.host === hostname() ? '' : ` on host ${owner.host}`}`
    : 'another process'
  return new CdnError(
    'CDN_ERR_CACHE_DIR_LOCKED',
    `the cache directory ${dir} is in use by another edge (${who}); give each edge its own --cache-dir ` +
      `(a lock left by an edge that is gone is taken over by itself)`,
    { details: owner ? { pid: owner.pid, host: owner.host } : {} },
  )
}

/** Writes the owner to a temp file and links it into place; false when a lock is there. */
async function link(file: string, me: Owner): Promise<boolean> {
  const tmp = `${file}.${me.nonce}.new`
  await fsp.writeFile(tmp, JSON.stringify(me))
  try {
    await fsp.link(tmp, file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    await fsp.unlink(tmp).catch(() => undefined)
  }
}

/**
 * Moves a stale lock aside; true when the file moved was the one judged stale (same nonce). If
 * another edge replaced it in between, its lock is put back and false returned.
 */
async function setAside(file: string, nonce: string | undefined): Promise<boolean> {
  const aside = `${file}.${randomBytes(8).toString('hex')}.stale`
  try {
    await fsp.rename(file, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
  const moved = await readOwner(aside)
  if (moved?.owner?.nonce !== nonce) {
    await fsp.link(aside, file).catch(() => undefined)
    await fsp.unlink(aside).catch(() => undefined)
    return false
  }
  await fsp.unlink(aside)
  return true
}
