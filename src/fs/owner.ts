/**
 * Work directories named after the process that makes them, so that a process starting on the
 * same directory tells a crashed process's leftovers from another live process's work in
 * progress (an origin and a `cdn ingest --store` share one store). The owner is written into
 * the name as `.p{pid}-s{start}-h{host}`: the pid, the process's start time (so a reused pid is
 * not taken for the owner) and a hash of the host name (a container on a shared volume has a
 * pid space of its own: its pids say nothing here).
 *
 * The rule (`ownerGone`): an owner on this host is gone when its pid is not alive, or is alive
 * but started at another time (a reused pid, or this process's own pid after a restart, as
 * pid 1 in a container). An owner on another host is never judged gone: its pids cannot be
 * checked from here.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'

export interface Owner {
  pid: number
  /** Start time from /proc (clock ticks since boot); '0' where the platform has none. */
  start: string
  /** First 8 hex digits of the host name's SHA-256. */
  host: string
}

const TAG_RE = /\.p(\d+)-s(\d+)-h([0-9a-f]{8})$/

/** `/proc/{pid}/stat`'s start time (field 22), or null where there is no /proc or no such pid. */
export function processStart(pid: number): string | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch (err) {
    if (['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return null
    throw err
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
}

/** True when a process with this pid exists (as any user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function hostHash(): string {
  return createHash('sha256').update(hostname()).digest('hex').slice(0, 8)
}

let self: Owner | undefined
/** This process, as an owner. */
export function thisOwner(): Owner {
  self ??= { pid: process.pid, start: processStart(process.pid) ?? '0', host: hostHash() }
  return self
}

/** `name` with this process's owner tag appended. */
export function ownedName(name: string): string {
  const o = thisOwner()
  return `${name}.p${o.pid}-s${o.start}-h${o.host}`
}

/** The owner tagged in a name made by `ownedName`, or undefined for a name without a tag. */
export function ownerOf(name: string): Owner | undefined {
  const m = TAG_RE.exec(name)
  return m ? { pid: Number(m[1]), start: m[2]!, host: m[3]! } : undefined
}

/** True when the owner is known to be gone (see the rule above); false while it may be alive. */
export function ownerGone(owner: Owner): boolean {
  const me = thisOwner()
  if (owner.host !== me.host) return false
  if (owner.pid === me.pid) return owner.start !== me.start
  if (!pidAlive(owner.pid)) return true
  const start = processStart(owner.pid)
  return owner.start !== '0' && start !== null && start !== owner.start
}

/**
 * Kills (SIGKILL) the processes running `command` one of whose arguments `orphaned` accepts: the
 * helpers a gone owner left running on its work (an origin killed with SIGKILL leaves its ffmpeg
 * encoding: Node has no PR_SET_PDEATHSIG). Read from /proc, so Linux only (and this pid
 * namespace only); elsewhere none are found. Returns how many were killed.
 */
export function killProcessesNaming(command: string, orphaned: (arg: string) => boolean): number {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  let killed = 0
  for (const pid of pids) {
    if (procFile(pid, 'comm')?.trim() !== command) continue
    if (!(procFile(pid, 'cmdline') ?? '').split('\0').some(orphaned)) continue
    try {
      process.kill(Number(pid), 'SIGKILL')
      killed++
    } catch (err) {
      // ESRCH: it ended meanwhile.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
  }
  return killed
}

/** A /proc/{pid} file, or undefined when the process is gone (or not ours to read). */
function procFile(pid: string, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${name}`, 'utf8')
  } catch (err) {
    if (['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined
    throw err
  }
}
