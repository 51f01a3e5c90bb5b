/**
 * The gate before publish: every playlist parses (m3u8-parser), is a complete VOD playlist,
 * every file it references exists and is non-empty, its duration adds up to the source's
 * within one segment, and all renditions cut at the same instants (aligned keyframes).
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CdnError } from '../../src/errors.js'
import { type MediaPlaylist, parseMediaPlaylist, targetDurationOf } from '../../src/hls/playlist.js'

/** Segment boundaries across renditions may differ by at most this much (audio/video rounding). */
const ALIGN_TOLERANCE_SEC = 0.1

function fail(message: string): never {
  throw new CdnError('CDN_ERR_VALIDATION', message)
}

async function nonEmpty(file: string, what: string): Promise<void> {
  const st = await stat(file).catch(() => undefined)
  if (!st?.isFile() || st.size === 0) fail(`${what} is missing or empty`)
}

export async function validateStaged(
  dir: string,
  renditions: readonly { name: string }[],
  sourceDurationSec: number,
  segmentSeconds: number,
): Promise<void> {
  if (!renditions.length) fail('no renditions were produced')
  const playlists: MediaPlaylist[] = []
  for (const r of renditions) {
    const rdir = join(dir, r.name)
    const what = `${r.name}/index.m3u8`
    let p: MediaPlaylist
    try {
      p = parseMediaPlaylist(await readFile(join(rdir, 'index.m3u8'), 'utf8'), what)
    } catch (err) {
      fail(`${what} does not parse: ${(err as Error).message}`)
    }
    if (p.playlistType !== 'VOD' || !p.endList) fail(`${what} is not a complete VOD playlist`)
    if (!p.segments.length) fail(`${what} has no segments`)
    if (p.targetDuration < targetDurationOf(p.segments)) fail(`${what} has a wrong EXT-X-TARGETDURATION`)
    if (p.mapUri) await nonEmpty(join(rdir, p.mapUri), `${r.name}/${p.mapUri}`)
    for (const s of p.segments) await nonEmpty(join(rdir, s.uri), `${r.name}/${s.uri}`)
    const total = p.segments.reduce((n, s) => n + s.duration, 0)
    if (Math.abs(total - sourceDurationSec) > segmentSeconds)
      fail(`${what} lasts ${total.toFixed(2)} s, the source ${sourceDurationSec.toFixed(2)} s`)
    playlists.push(p)
  }
  const [first, ...rest] = playlists
  rest.forEach((p, i) => {
    const name = renditions[i + 1]!.name
    if (p.segments.length !== first!.segments.length)
      fail(`${name} has ${p.segments.length} segments, ${renditions[0]!.name} has ${first!.segments.length}`)
    let a = 0
    let b = 0
    p.segments.forEach((s, k) => {
      a += s.duration
      b += first!.segments[k]!.duration
      if (Math.abs(a - b) > ALIGN_TOLERANCE_SEC) fail(`${name}: segment ${k + 1} ends at ${a} s, not ${b} s`)
    })
  })
}
