/**
 * The content store on disk, and its catalogue. Layout under the store root:
 *
 *   titles/{title}/title.json                    catalogue entry: versions, current version
 *   titles/{title}/{version}/version.json        renditions, bitrates, duration, bytes
 *   titles/{title}/{version}/master.m3u8         this version's master (URIs {version}/...)
 *   titles/{title}/{version}/{rendition}/index.m3u8, init.mp4, seg-NNNNN.m4s|ts
 *   staging/                                     jobs in progress (same filesystem: rename)
 *   sources/                                     generated sample sources (the demo's)
 *
 * A version directory is fsynced whole, then renamed into place, and never changes after.
 * `title.json` is the single switch: it is written last and atomically (src/fs/atomic.ts), so
 * the master served for a title always names a complete version, even after a power cut. Every
 * reader goes to disk, so an origin sees what a separate `cdn ingest --store` process published.
 *
 * Several processes may write one directory at once (an origin, `cdn ingest --store`, `cdn
 * origin retire`): the pointer's compare-and-swap holds the title's lock file
 * (`titles/{title}/title.json.lock`, src/fs/file-lock.ts) from reading `title.json` to the
 * rename of the new one, and so does the move of a version into place (CasMode 'local'). A
 * store opening removes what crashed processes left in staging/ (leftovers.ts). This is the
 * local backend of the OriginStore contract (store.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises'
import { basename, join, resolve, sep } from 'node:path'
import type { Clock } from '../../src/clock.js'
import { systemClock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { fsyncTree, renameDurably, writeFileAtomicIf } from '../../src/fs/atomic.js'
import { type HeldLock, withFileLock } from '../../src/fs/file-lock.js'
import { ownedName } from '../../src/fs/owner.js'
import type { VodPath } from '../../src/http/paths.js'
import { assertTitle, TITLE_RE, VERSION_RE } from '../../src/http/paths.js'
import { KeyedQueue } from '../../src/keyed-queue.js'
import { addLeftovers, type Leftovers, NO_LEFTOVERS, sweepTitles, sweepWorkDir } from './leftovers.js'
import type { OriginStore, PointerRead, StoredObject } from './store.js'
import { swapWithRetry, withVersion } from './store.js'

export interface RenditionEntry {
  name: string
  width: number
  height: number
  frameRate: number
  codecs: string
  /** Peak segment bitrate, bits/s (the master's BANDWIDTH). */
  bandwidth: number
  /** Mean bitrate, bits/s (AVERAGE-BANDWIDTH). */
  averageBandwidth: number
  segments: number
  durationSec: number
  bytes: number
}

export interface VersionEntry {
  id: string
  createdAt: string
  format: 'fmp4' | 'ts'
  segmentSeconds: number
  durationSec: number
  bytes: number
  renditions: RenditionEntry[]
}

export interface TitleEntry {
  id: string
  current: string
  updatedAt: string
  versions: VersionEntry[]
  /** Versions taken out of the pointer by retire, still servable until deleted after the grace. */
  retired?: { id: string; retiredAt: string }[]
}

/** A version a /vod media path may name: listed, or retired and not yet deleted. */
export function namesVersion(entry: TitleEntry, version: string): boolean {
  return entry.versions.some((v) => v.id === version) || (entry.retired ?? []).some((r) => r.id === version)
}

/** The key (relative path) of the object behind a /vod path, given the title's pointer. */
export function objectKey(path: VodPath, entry: TitleEntry): string[] | undefined {
  const parts =
    path.kind === 'master' ? [entry.current, 'master.m3u8'] : [path.version, path.rendition, path.file]
  if (path.kind === 'media' && !namesVersion(entry, path.version)) return undefined
  if (!VERSION_RE.test(parts[0]!)) return undefined
  return parts
}

const POINTER = 'title.json'

function pointerToken(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('base64url')
}

export class ContentStore implements OriginStore {
  readonly kind = 'local'
  readonly casMode = 'local'
  readonly root: string
  leftovers: Leftovers = NO_LEFTOVERS
  /**
   * Per-title queue in this process, in front of the title's lock file: this process's swaps of
   * one title wait here rather than poll the lock one another holds.
   */
  private readonly locks = new KeyedQueue()
  private readonly clock: Clock

  constructor(root: string, opts: { clock?: Clock } = {}) {
    this.root = resolve(root)
    this.clock = opts.clock ?? systemClock
  }

  async init(): Promise<this> {
    await mkdir(join(this.root, 'titles'), { recursive: true })
    await mkdir(join(this.root, 'staging'), { recursive: true })
    this.leftovers = addLeftovers(
      await sweepWorkDir(this.root, this.clock.now()),
      await sweepTitles(join(this.root, 'titles'), POINTER),
    )
    return this
  }

  describe(): ReturnType<OriginStore['describe']> {
    // Shown by the unauthenticated /status: the directory's path stays on this host.
    return { kind: this.kind, location: '(local directory)', casMode: this.casMode }
  }

  async close(): Promise<void> {}

  titleDir(title: string): string {
    return join(this.root, 'titles', assertTitle(title))
  }

  sourcesDir(): string {
    return join(this.root, 'sources')
  }

  /** A fresh private staging directory for one job, named after its owner (leftovers.ts). */
  async createStaging(label: string): Promise<string> {
    const dir = join(this.root, 'staging', ownedName(`${label}-${randomBytes(4).toString('hex')}`))
    await mkdir(dir, { recursive: true })
    return dir
  }

  async readPointer(title: string): Promise<PointerRead> {
    if (!TITLE_RE.test(title)) return { entry: undefined, token: undefined }
    let bytes: Buffer
    try {
      bytes = await readFile(join(this.titleDir(title), POINTER))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entry: undefined, token: undefined }
      throw new CdnError('CDN_ERR_DISK', `catalogue entry for ${title} is unreadable`, { cause: err })
    }
    try {
      return { entry: JSON.parse(bytes.toString('utf8')) as TitleEntry, token: pointerToken(bytes) }
    } catch (err) {
      throw new CdnError('CDN_ERR_DISK', `catalogue entry for ${title} is unreadable`, { cause: err })
    }
  }

  async readTitle(title: string): Promise<TitleEntry | undefined> {
    return (await this.readPointer(title)).entry
  }

  async listTitles(): Promise<TitleEntry[]> {
    let names: string[]
    try {
      names = await readdir(join(this.root, 'titles'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const entries = await Promise.all(names.filter((n) => TITLE_RE.test(n)).map((n) => this.readTitle(n)))
    return entries.filter((e): e is TitleEntry => e !== undefined).sort((a, b) => a.id.localeCompare(b.id))
  }

  swapPointer(title: string, expected: string | undefined, entry: TitleEntry): Promise<boolean> {
    return this.locked(title, async (held) => {
      if ((await this.readPointer(title)).token !== expected) return false
      // Not written if the lock was taken over meanwhile (this process stalled past its stale
      // time): a lost swap, which the caller reads again and retries.
      const file = join(this.titleDir(title), POINTER)
      return writeFileAtomicIf(file, `${JSON.stringify(entry, null, 2)}\n`, held.stillHeld)
    })
  }

  /**
   * Moves a validated staging directory into place as `version` of `title`, then switches
   * the catalogue entry to it. The previous versions stay on disk and servable.
   */
  async publish(title: string, staged: string, version: VersionEntry, now: Date): Promise<TitleEntry> {
    assertTitle(title)
    // The staged tree is this job's alone: made durable before the title is locked.
    await fsyncTree(staged)
    await this.locked(title, async () => {
      const target = join(this.titleDir(title), version.id)
      if (existsSync(target)) throw new CdnError('CDN_ERR_CONFLICT', `version ${version.id} already exists`)
      await renameDurably(staged, target)
    })
    try {
      return await swapWithRetry(this, title, (old) => withVersion(old, title, version, now))
    } catch (err) {
      // The switch failed (an unreadable title.json, a full disk, swaps lost): unless the pointer
      // names the version after all (written, then the fsync failed), nothing ever will, and its
      // bytes would stay in titles/ for good. Removed as a failed job's staging is.
      const named = await this.readPointer(title).then(
        (p) => p.entry !== undefined && namesVersion(p.entry, version.id),
        () => false,
      )
      if (!named) await rm(join(this.titleDir(title), version.id), { recursive: true, force: true })
      throw err
    }
  }

  async deleteVersion(title: string, version: string): Promise<void> {
    if (!VERSION_RE.test(version)) throw new CdnError('CDN_ERR_BAD_REQUEST', `not a version id: ${version}`)
    await rm(join(this.titleDir(title), version), { recursive: true, force: true })
  }

  /**
   * The file behind a parsed /vod path, or undefined. For the master, that is the current
   * version's master.m3u8 (so the switch is exactly the catalogue write).
   */
  async resolve(path: VodPath): Promise<{ file: string; entry: TitleEntry } | undefined> {
    const entry = await this.readTitle(path.title)
    if (!entry) return undefined
    const parts = objectKey(path, entry)
    if (!parts) return undefined
    const file = join(this.titleDir(path.title), ...parts)
    // Belt and braces: the patterns already exclude separators and dots.
    if (!file.startsWith(this.titleDir(path.title) + sep)) return undefined
    return { file, entry }
  }

  async open(path: VodPath): Promise<StoredObject | undefined> {
    const found = await this.resolve(path)
    if (!found) return undefined
    const st = await stat(found.file).catch(() => undefined)
    if (!st?.isFile()) return undefined
    const name = basename(found.file)
    if (path.kind === 'master') {
      // Small and switched atomically: its ETag is a hash of its bytes.
      const body = await readFile(found.file)
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
      return {
        size: body.length,
        etag,
        lastModified: st.mtime,
        name,
        read: async (s, e) => body.subarray(s, e + 1),
      }
    }
    // Immutable once published: size and mtime identify the bytes.
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`
    const file = found.file
    return {
      size: st.size,
      etag,
      lastModified: st.mtime,
      name,
      read: async (start, end) => createReadStream(file, { start, end }),
    }
  }

  /** Runs `fn` holding the title's lock, against this process and every other (file-lock.ts). */
  private locked<T>(title: string, fn: (held: HeldLock) => Promise<T>): Promise<T> {
    const dir = this.titleDir(title)
    return this.locks.run(title, async () => {
      await mkdir(dir, { recursive: true })
      return withFileLock(join(dir, POINTER), fn)
    })
  }
}
