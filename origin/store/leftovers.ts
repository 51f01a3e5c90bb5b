/**
 * What a crash (kill -9, a power cut) leaves in a store's work directories, removed when the
 * store opens. Several processes may work on one store at once (an origin, `cdn ingest --store`,
 * `cdn origin retire`), so nothing another live process owns is touched:
 *
 * - `staging/{label}-{random}.p{pid}-s{start}-h{host}`: a job's output, owned by the process
 *   named in it (src/fs/owner.ts: the pid rule, with the process start time against reused pids).
 *   Removed when that process is gone; kept when it lives or is on another host. A name without
 *   an owner (made by a release before this rule) is removed once older than LEGACY_AGE_MS.
 * - `sources/.{name}.tmp-{pid}-{random}.mp4`: a sample source being generated (src/fs/atomic.ts
 *   names it after its pid alone): removed when no process has that pid.
 * - `titles/{title}/.title.json.tmp-…`: a pointer write cut short. Pointer writes happen under
 *   the title's lock (content-store.ts), so while the sweep holds that lock every such file is a
 *   leftover; a title whose lock is held right now is skipped (a later start finishes it).
 *
 * An origin killed with SIGKILL leaves its ffmpeg running, reparented, encoding into its staging
 * (Node has no PR_SET_PDEATHSIG): the sweep kills an ffmpeg whose arguments name a leftover it
 * removes (src/fs/owner.ts, from /proc), so such an orphan runs until the next start at most.
 */
import type { Dirent } from 'node:fs'
import { lstat, readdir, rm } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { isTempPath } from '../../src/fs/atomic.js'
import { ifUnlocked } from '../../src/fs/file-lock.js'
import { killProcessesNaming, ownerGone, ownerOf, pidAlive } from '../../src/fs/owner.js'

/** Untagged staging older than this is an earlier release's leftover: no job lasts a day. */
export const LEGACY_AGE_MS = 24 * 3600_000

export interface Leftovers {
  /** Leftovers removed. */
  removed: number
  /** Work of another process, alive or on another host, left alone. */
  kept: number
  /** ffmpeg processes still writing a removed leftover (orphans of a killed process), killed. */
  orphansKilled: number
}

export const NO_LEFTOVERS: Leftovers = Object.freeze({ removed: 0, kept: 0, orphansKilled: 0 })

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** A sample source's temp file whose process is gone. */
function goneTemp(name: string): boolean {
  const pid = Number(/\.tmp-(\d+)-/.exec(name)?.[1])
  return isTempPath(name) && pid !== process.pid && !pidAlive(pid)
}

/** Sweeps `staging/` and `sources/` under `workDir` (the store root, or an object store's work dir). */
export async function sweepWorkDir(workDir: string, nowMs: number): Promise<Leftovers> {
  // The ffmpeg a killed process left encoding into its staging or a sample source: killed first,
  // then its files go. Judged by the path in its arguments, which may not exist yet (ffmpeg opens
  // its output once its inputs are probed).
  const orphansKilled = killProcessesNaming('ffmpeg', (arg) => {
    const [dir, name] = relative(resolve(workDir), resolve(arg)).split(sep)
    if (!name || dir?.startsWith('..')) return false
    if (dir === 'sources') return goneTemp(name)
    const owner = dir === 'staging' ? ownerOf(name) : undefined
    return owner !== undefined && ownerGone(owner)
  })
  const gone: string[] = []
  let kept = 0
  const staging = join(workDir, 'staging')
  for (const e of await entries(staging)) {
    const path = join(staging, e.name)
    const owner = ownerOf(e.name)
    if (owner ? ownerGone(owner) : nowMs - (await lstat(path)).mtimeMs > LEGACY_AGE_MS) gone.push(path)
    else kept++
  }
  const sources = join(workDir, 'sources')
  for (const e of await entries(sources)) {
    if (goneTemp(e.name)) gone.push(join(sources, e.name))
    else if (isTempPath(e.name)) kept++
  }
  for (const path of gone) await rm(path, { recursive: true, force: true })
  return { removed: gone.length, kept, orphansKilled }
}

/** Sweeps the pointer temp files of every title under `titlesDir`, each under its title's lock. */
export async function sweepTitles(titlesDir: string, pointerFile: string): Promise<Leftovers> {
  const out = { removed: 0, kept: 0, orphansKilled: 0 }
  for (const t of await entries(titlesDir)) {
    if (!t.isDirectory()) continue
    const dir = join(titlesDir, t.name)
    const temps = (await entries(dir)).filter((e) => isTempPath(e.name))
    if (!temps.length) continue
    const swept = await ifUnlocked(join(dir, pointerFile), async () => {
      // Read again under the lock: a writer may have finished between the scan and the lock.
      const now = (await entries(dir)).filter((e) => isTempPath(e.name))
      for (const e of now) await rm(join(dir, e.name), { force: true })
      return now.length
    })
    if (swept.ran) out.removed += swept.value
    else out.kept += temps.length
  }
  return out
}

export function addLeftovers(a: Leftovers, b: Leftovers): Leftovers {
  return {
    removed: a.removed + b.removed,
    kept: a.kept + b.kept,
    orphansKilled: a.orphansKilled + b.orphansKilled,
  }
}
