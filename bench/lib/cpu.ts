/**
 * Server CPU time from /proc: utime+stime of a process and all its descendants (nginx's workers
 * are children of its master), so "CPU per request" is (after - before) / requests. Linux only;
 * elsewhere the figures are reported as unavailable rather than guessed.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** USER_HZ. Linux fixes it at 100 on every architecture the kernel exposes to userspace. */
const CLOCK_TICKS = 100

interface Stat {
  readonly pid: number
  readonly ppid: number
  /** utime + stime in ticks. */
  readonly ticks: number
}

function readStat(pid: number, file = `/proc/${pid}/stat`): Stat | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined // exited between listing and reading
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  return { pid, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) }
}

export function cpuAvailable(): boolean {
  return readStat(process.pid) !== undefined
}

/**
 * CPU seconds used so far by one process (every thread) and by its main thread alone (the
 * thread whose id is the pid: a node's event loop; libuv's pool threads are the rest). NaN when
 * the process is gone or /proc is missing.
 */
export function processCpuSeconds(pid: number): { process: number; main: number } {
  const all = readStat(pid)
  const main = readStat(pid, `/proc/${pid}/task/${pid}/stat`)
  return {
    process: all ? all.ticks / CLOCK_TICKS : Number.NaN,
    main: main ? main.ticks / CLOCK_TICKS : Number.NaN,
  }
}

/** CPU seconds used so far by `root` and every live descendant. */
export function treeCpuSeconds(root: number): number {
  const all: Stat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (s) all.push(s)
  }
  const children = new Map<number, Stat[]>()
  for (const s of all) {
    const list = children.get(s.ppid)
    if (list) list.push(s)
    else children.set(s.ppid, [s])
  }
  const rootStat = all.find((s) => s.pid === root)
  if (!rootStat) return Number.NaN
  let ticks = 0
  const stack = [rootStat]
  // Bounded: each pid is visited once, and /proc lists a finite set.
  const seen = new Set<number>()
  while (stack.length) {
    const s = stack.pop()!
    if (seen.has(s.pid)) continue
    seen.add(s.pid)
    ticks += s.ticks
    for (const c of children.get(s.pid) ?? []) stack.push(c)
  }
  return ticks / CLOCK_TICKS
}

/** Busy CPU seconds of the whole machine so far (all cores), from the first line of /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
    return busy / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/**
 * CPU seconds of this process plus its reaped children (fields 14-17: utime, stime, cutime,
 * cstime): the load generator's share, whether it ran in-process (autocannon) or as a child (wrk).
 */
export function selfAndChildrenCpuSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'utf8')
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / CLOCK_TICKS
}

/**
 * Waits (at most `maxWaitMs`) until the machine looks quiet: the busy share of all cores over a
 * `windowMs` window is below `threshold`. Call it between runs, while the servers under test are
 * idle, so a run does not start in the middle of someone else's burst. Returns the last share seen.
 */
export async function waitForQuiet(threshold: number, maxWaitMs: number, windowMs = 500): Promise<number> {
  const cores = availableParallelism()
  const deadline = performance.now() + maxWaitMs
  let share = Number.NaN
  do {
    const b0 = machineBusySeconds()
    await sleep(windowMs)
    share = (machineBusySeconds() - b0) / ((windowMs / 1000) * cores)
    if (!(share >= threshold)) return share
  } while (performance.now() < deadline)
  return share
}
