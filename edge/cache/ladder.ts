/**
 * Ladder-aware eviction (`--disk-low-rendition`): which disk records are the bottom of a
 * title's bitrate ladder. Low renditions start sessions (hls.js starts on the master's first
 * variant) and rescue stalls (a player falls back to them), and they are small; under pressure
 * the disk index (disk-index.ts) evicts the top renditions of cold titles first, and a low
 * record only once it has been idle `LOW_AGE_FACTOR` times as long as the oldest high one.
 * The cache key names title and rendition (src/http/paths.ts:
 * `/vod/{title}/{version}/{rendition}/{file}`).
 */
import { parseVodPath } from '../../src/http/paths.js'

/** A low record is evicted before the oldest high one only when idle this many times as long. */
export const LOW_AGE_FACTOR = 4

/**
 * Whether the object at `key` is low in its ladder: a rendition of at most `maxHeight` lines
 * (`480p`), or a master or media playlist or an init segment of any rendition (small, and every
 * session of the rendition needs them). False for anything else, and always when `maxHeight`
 * is 0 (ladder-aware eviction off).
 */
export function isLowRung(key: string, maxHeight: number): boolean {
  if (maxHeight <= 0) return false
  const q = key.indexOf('?')
  const vp = parseVodPath(q === -1 ? key : key.slice(0, q))
  if (!vp) return false
  if (vp.kind === 'master') return true
  if (vp.file === 'index.m3u8' || vp.file === 'init.mp4') return true
  return Number.parseInt(vp.rendition, 10) <= maxHeight
}
