/**
 * Sample titles for the local demo (`--samples intro:20,feature:36`): for each one missing
 * from the catalogue, generate a synthetic source (cached in the store's sources/) and queue
 * an ordinary ingest job for it.
 */
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import { CdnError } from '../src/errors.js'
import { produceFileAtomic } from '../src/fs/atomic.js'
import { TITLE_RE } from '../src/http/paths.js'
import { type LocalFileJobSpec, SOURCE_FILE } from './app.js'
import type { OriginStore } from './store/store.js'
import type { Ffmpeg } from './transcode/ffmpeg.js'
import type { JobQueue } from './transcode/jobs.js'
import { generateSynthetic } from './transcode/synthetic.js'

export interface SampleTitle {
  title: string
  seconds: number
}

export function parseSamples(list: readonly string[]): SampleTitle[] {
  return list.map((item) => {
    const m = /^([^:]+):(\d+(?:\.\d+)?)$/.exec(item.trim())
    const seconds = m ? Number(m[2]) : Number.NaN
    if (!m || !TITLE_RE.test(m[1]!) || !(seconds >= 1 && seconds <= 3600))
      throw new CdnError('CDN_ERR_CONFIG', `--samples: "${item}" is not TITLE:SECONDS (1..3600 s)`)
    return { title: m[1]!, seconds }
  })
}

export function parseSize(s: string): { width: number; height: number } {
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(s)
  const width = Number(m?.[1])
  const height = Number(m?.[2])
  if (!m || width % 2 || height % 2)
    throw new CdnError('CDN_ERR_CONFIG', `--sample-size: "${s}" is not an even WxH`)
  return { width, height }
}

/**
 * Queues an ingest for each sample not yet in the catalogue; returns the job ids. An abort of
 * `signal` (the origin closing) kills a generation in progress: the returned promise then
 * rejects with CDN_ERR_CANCELLED, promptly, and no ffmpeg is left running.
 */
export async function ensureSamples(deps: {
  samples: readonly SampleTitle[]
  size: { width: number; height: number }
  store: OriginStore
  jobs: JobQueue
  ffmpeg: Ffmpeg
  signal?: AbortSignal
  /** Hears each source generation as it starts (for the log). */
  onGenerate?: (title: string) => void
}): Promise<string[]> {
  const ids: string[] = []
  for (const s of deps.samples) {
    if (deps.signal?.aborted) break
    if (await deps.store.readTitle(s.title)) continue
    const file = join(
      deps.store.sourcesDir(),
      `${s.title}-${deps.size.width}x${deps.size.height}-${s.seconds}s.mp4`,
    )
    if (!existsSync(file)) {
      const spec = { seconds: s.seconds, ...deps.size, fps: 30, label: s.title }
      deps.onGenerate?.(s.title)
      await produceFileAtomic(file, (tmp) =>
        generateSynthetic(deps.ffmpeg, spec, tmp, { signal: deps.signal }),
      )
    }
    // The job shows the file's name only: where the store keeps it stays on this host.
    const job: LocalFileJobSpec = { source: basename(file), title: s.title, [SOURCE_FILE]: file }
    ids.push(deps.jobs.submit(job).id)
  }
  return ids
}
