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
 * the master served for a title always names a complete version, even after a power cut. Every reader goes to disk, so an origin sees what a
 * separate `cdn ingest --store` process published.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { CdnError } from '../../src/errors.js'
import { fsyncTree, renameDurably, writeFileAtomic } from '../../src/fs/atomic.js'
import type { VodPath } from '../../src/http/paths.js'
import { assertTitle, TITLE_RE, VERSION_RE } from '../../src/http/paths.js'

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
}

export class ContentStore {
  readonly root: string
  /** Per-title publish chain: two jobs for one title never interleave their catalogue writes. */
  private readonly publishing = new Map<string, Promise<unknown>>()

  constructor(root: string) {
    this.root = resolve(root)
  }

  async init(): Promise<this> {
    await mkdir(join(this.root, 'titles'), { recursive: true })
    await mkdir(join(this.root, 'staging'), { recursive: true })
    return this
  }

  titleDir(title: string): string {
    return join(this.root, 'titles', assertTitle(title))
  }

  sourcesDir(): string {
    return join(this.root, 'sources')
  }

  /** A fresh private staging directory for one job. */
  async createStaging(label: string): Promise<string> {
    const dir = join(this.root, 'staging', `${label}-${randomBytes(4).toString('hex')}`)
    await mkdir(dir, { recursive: true })
    return dir
  }

  async readTitle(title: string): Promise<TitleEntry | undefined> {
    if (!TITLE_RE.test(title)) return undefined
    try {
      return JSON.parse(await readFile(join(this.titleDir(title), 'title.json'), 'utf8')) as TitleEntry
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new CdnError('CDN_ERR_DISK', `catalogue entry for ${title} is unreadable`, { cause: err })
    }
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

  /**
   * Moves a validated staging directory into place as `version` of `title`, then switches
   * the catalogue entry to it. The previous versions stay on disk and servable.
   */
  publish(title: string, staged: string, version: VersionEntry, now: Date): Promise<TitleEntry> {
    assertTitle(title)
    const prev = this.publishing.get(title) ?? Promise.resolve()
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        const target = join(this.titleDir(title), version.id)
        if (existsSync(target)) throw new CdnError('CDN_ERR_CONFLICT', `version ${version.id} already exists`)
        await mkdir(this.titleDir(title), { recursive: true })
        await fsyncTree(staged)
        await renameDurably(staged, target)
        const old = await this.readTitle(title)
        const entry: TitleEntry = {
          id: title,
          current: version.id,
          updatedAt: now.toISOString(),
          versions: [...(old?.versions ?? []).filter((v) => v.id !== version.id), version],
        }
        await writeFileAtomic(join(this.titleDir(title), 'title.json'), `${JSON.stringify(entry, null, 2)}\n`)
        return entry
      })
    this.publishing.set(title, next)
    const clear = () => {
      if (this.publishing.get(title) === next) this.publishing.delete(title)
    }
    next.then(clear, clear)
    return next
  }

  /**
   * The file behind a parsed /vod path, or undefined. For the master, that is the current
   * version's master.m3u8 (so the switch is exactly the catalogue write).
   */
  async resolve(path: VodPath): Promise<{ file: string; entry: TitleEntry } | undefined> {
    const entry = await this.readTitle(path.title)
    if (!entry) return undefined
    const parts =
      path.kind === 'master' ? [entry.current, 'master.m3u8'] : [path.version, path.rendition, path.file]
    if (path.kind === 'media' && !entry.versions.some((v) => v.id === path.version)) return undefined
    if (!VERSION_RE.test(parts[0]!)) return undefined
    const file = join(this.titleDir(path.title), ...parts)
    // Belt and braces: the patterns already exclude separators and dots.
    if (!file.startsWith(this.titleDir(path.title) + sep)) return undefined
    return { file, entry }
  }
}
