/**
 * The prefill benchmark's content: one title ingested once by the origin's own pipeline, then
 * copied under several ids into a fresh store so the edge sees distinct titles. The source is
 * the peer benchmark's cached ingest (.cache/bench/store, title `bench`: 120 s of 720p in 3 s
 * segments) when it is there, so no second ingest competes for the CPU; otherwise (or with
 * --own-content) a `--seconds` long 720p ladder (720p, 480p, 360p, 240p, 4 s segments) cached
 * under .cache/bench/prefill-store-Ns.
 */
import { existsSync } from 'node:fs'
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const SOURCE_TITLE = 'source'
const PEERS_TITLE = 'bench'

export interface BenchContent {
  readonly store: string
  readonly titles: readonly string[]
  /** The players' title: its 720p media segments (paths), already in the store. */
  readonly playerPaths: readonly string[]
  /** Bytes of one title (all renditions, playlists included). */
  readonly titleBytes: number
  /** Where the title came from, for the report. */
  readonly source: string
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, { withFileTypes: true }))
    n += e.isDirectory() ? await dirBytes(join(dir, e.name)) : (await stat(join(dir, e.name))).size
  return n
}

async function ensureSource(
  root: string,
  seconds: number,
  own: boolean,
  log: (l: string) => void,
): Promise<{ store: string; title: string; source: string }> {
  const peers = join(root, '.cache/bench/store')
  if (!own && existsSync(join(peers, 'titles', PEERS_TITLE, 'title.json')))
    return {
      store: peers,
      title: PEERS_TITLE,
      source: "the peer benchmark's ingest (120 s, 720p only, 3 s segments)",
    }
  const cached = join(root, '.cache/bench', `prefill-store-${seconds}s`)
  const source = `own ingest (${seconds} s, 720p/480p/360p/240p, 4 s segments)`
  if (existsSync(join(cached, 'titles', SOURCE_TITLE, 'title.json')))
    return { store: cached, title: SOURCE_TITLE, source }
  log(`ingesting a ${seconds} s 720p title into ${cached} (once; cached for later runs)`)
  const { sampleSource } = await import('../../fixtures/media.js')
  const { ingest } = await import('../../origin/transcode/ingest.js')
  const sourceFile = await sampleSource({ seconds, width: 1280, height: 720 })
  await rm(cached, { recursive: true, force: true })
  await ingest(sourceFile, { title: SOURCE_TITLE, store: cached, segmentSeconds: 4 })
  return { store: cached, title: SOURCE_TITLE, source }
}

export async function prepareContent(
  root: string,
  work: string,
  o: { titles: number; seconds: number; ownContent: boolean; log: (l: string) => void },
): Promise<BenchContent> {
  const from = await ensureSource(root, o.seconds, o.ownContent, o.log)
  const store = join(work, 'store')
  await mkdir(join(store, 'titles'), { recursive: true })
  const ids = [...Array.from({ length: o.titles }, (_, i) => `fill-${i}`), 'player']
  for (const id of ids) {
    const to = join(store, 'titles', id)
    await cp(join(from.store, 'titles', from.title), to, { recursive: true })
    const entry = JSON.parse(await readFile(join(to, 'title.json'), 'utf8')) as {
      id: string
      current: string
    }
    entry.id = id
    await writeFile(join(to, 'title.json'), `${JSON.stringify(entry, null, 2)}\n`)
  }
  const entry = JSON.parse(await readFile(join(store, 'titles', 'player', 'title.json'), 'utf8')) as {
    current: string
  }
  const dir = join(store, 'titles', 'player', entry.current, '720p')
  o.log(`content: ${ids.length} copies of ${from.source}`)
  const playerPaths = (await readdir(dir))
    .filter((n) => n.startsWith('seg-'))
    .sort()
    .map((n) => `/vod/player/${entry.current}/720p/${n}`)
  return {
    store,
    titles: ids.filter((id) => id !== 'player'),
    playerPaths,
    titleBytes: await dirBytes(join(store, 'titles', 'fill-0')),
    source: from.source,
  }
}
