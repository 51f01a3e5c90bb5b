/**
 * The benchmark's content: the demo's feature title (a synthetic 1280x720, 40 s source through
 * the origin's own ingest: 720p, 480p, 360p and 240p, 4 s segments), ingested once into
 * .cache/bench/startup/store, then published twice with two masters that differ only in their
 * order: `top-first` (the highest rendition first, as masters were written before),
 * `startup-first` (what ingest writes now: the startup variant first) and `low-first`. All come from
 * the same writer (origin/transcode/ingest.ts masterOf), so the order is the only difference.
 */
import { existsSync } from 'node:fs'
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fixtureFfmpeg, sampleSource } from '../../fixtures/media.js'
import type { TitleEntry, VersionEntry } from '../../origin/store/content-store.js'
import { ingest, masterOf } from '../../origin/transcode/ingest.js'
import { DEFAULT_STARTUP_BITRATE } from '../../src/hls/playlist.js'

/**
 * Master orders compared: before (top rendition first), after (the default startup bitrate),
 * and, for the trade-off, `--startup-bitrate 600000` (a lower start: sooner, but a softer
 * picture until hls.js switches up).
 */
export const ORDERS = {
  'top-first': Number.POSITIVE_INFINITY,
  'startup-first': DEFAULT_STARTUP_BITRATE,
  'low-first': 600_000,
} as const
export type Order = keyof typeof ORDERS

export interface Content {
  store: string
  version: VersionEntry
  titles: Record<Order, string>
}

export async function prepareContent(cacheDir: string, log: (s: string) => void): Promise<Content> {
  const store = join(cacheDir, 'store')
  const feature = join(store, 'titles', 'feature', 'title.json')
  if (!existsSync(feature)) {
    log('ingesting the feature title once (1280x720, 40 s; a minute or two)')
    await rm(store, { recursive: true, force: true })
    const source = await sampleSource({ seconds: 40, width: 1280, height: 720, fps: 30 })
    await ingest(source, { title: 'feature', store, ffmpeg: fixtureFfmpeg() })
  }
  const entry = JSON.parse(await readFile(feature, 'utf8')) as TitleEntry
  const version = JSON.parse(
    await readFile(join(store, 'titles', 'feature', entry.current, 'version.json'), 'utf8'),
  ) as VersionEntry
  const titles = {} as Record<Order, string>
  for (const [order, bitrate] of Object.entries(ORDERS) as [Order, number][]) {
    const id = `feature-${order}`
    const dir = join(store, 'titles', id)
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    await cp(join(store, 'titles', 'feature', entry.current), join(dir, entry.current), { recursive: true })
    await writeFile(join(dir, entry.current, 'master.m3u8'), masterOf(version, bitrate))
    await writeFile(join(dir, 'title.json'), `${JSON.stringify({ ...entry, id }, null, 2)}\n`)
    titles[order] = id
  }
  return { store, version, titles }
}
