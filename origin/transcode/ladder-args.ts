/**
 * ffmpeg's argv for a whole ladder in one process: decode once, `split` the video, scale per
 * rung, encode every rung with keyframes forced at each segment boundary (fixed GOP, no
 * scene-cut keyframes), and let the hls muxer cut every rendition at the same instants.
 * Pure: tested as data, run by ingest.ts through ffmpeg.ts.
 */
import { BUFSIZE_SECONDS, MAXRATE_FACTOR, renditionSize, type Rung } from '../../src/hls/ladder.js'

export type SegmentFormat = 'fmp4' | 'ts'

export interface LadderPlan {
  rungs: readonly Rung[]
  /**
   * The source as displayed: its pixel aspect applied to the width, sides swapped by a quarter
   * turn (ffmpeg rotates the decoded frames itself, before the filter graph).
   */
  sourceWidth: number
  sourceHeight: number
  fps: number
  hasAudio: boolean
  segmentSeconds: number
  format: SegmentFormat
  /** x264 preset; `veryfast` is the default trade-off for a live-ish ingest box. */
  preset?: string
}

export interface LadderArgs {
  complexFilter: string
  outputOptions: string[]
  /** Output pattern for the media playlists (`%v` is the rendition name). */
  output: string
  /** Rendition name and the size it is scaled to (square pixels). */
  renditions: { name: string; width: number; height: number; rung: Rung }[]
}

export function segmentExtension(format: SegmentFormat): 'm4s' | 'ts' {
  return format === 'ts' ? 'ts' : 'm4s'
}

export function ladderArgs(plan: LadderPlan, dir: string): LadderArgs {
  const n = plan.rungs.length
  const renditions = plan.rungs.map((rung) => ({
    name: rung.name,
    ...renditionSize(plan.sourceWidth, plan.sourceHeight, rung.height),
    rung,
  }))
  const splits = renditions.map((_, i) => `[s${i}]`).join('')
  const scales = renditions.map((r, i) => `[s${i}]scale=${r.width}:${r.height},setsar=1[v${i}]`)
  const complexFilter = `[0:v:0]split=${n}${splits};${scales.join(';')}`

  const gop = Math.max(1, Math.round(plan.fps * plan.segmentSeconds))
  const o: string[] = []
  for (let i = 0; i < n; i++) o.push('-map', `[v${i}]`)
  if (plan.hasAudio) for (let i = 0; i < n; i++) o.push('-map', '0:a:0')
  o.push('-c:v', 'libx264', '-preset', plan.preset ?? 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p')
  o.push('-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0')
  o.push('-force_key_frames', `expr:gte(t,n_forced*${plan.segmentSeconds})`)
  renditions.forEach((r, i) => {
    const b = r.rung.videoBitrate
    o.push(`-b:v:${i}`, String(b), `-maxrate:v:${i}`, String(Math.round(b * MAXRATE_FACTOR)))
    o.push(`-bufsize:v:${i}`, String(Math.round(b * BUFSIZE_SECONDS)))
  })
  if (plan.hasAudio) {
    o.push('-c:a', 'aac', '-ac', '2', '-ar', '48000')
    for (const [i, r] of renditions.entries()) o.push(`-b:a:${i}`, String(r.rung.audioBitrate))
  }
  const ext = segmentExtension(plan.format)
  o.push('-f', 'hls', '-hls_time', String(plan.segmentSeconds), '-hls_playlist_type', 'vod')
  o.push('-hls_list_size', '0', '-hls_flags', 'independent_segments', '-start_number', '1')
  o.push('-hls_segment_type', plan.format === 'ts' ? 'mpegts' : 'fmp4')
  if (plan.format === 'fmp4') o.push('-hls_fmp4_init_filename', 'init.mp4')
  o.push('-hls_segment_filename', `${dir}/%v/seg-%05d.${ext}`)
  const map = renditions.map((r, i) => `v:${i}${plan.hasAudio ? `,a:${i}` : ''},name:${r.name}`)
  o.push('-var_stream_map', map.join(' '))
  return { complexFilter, outputOptions: o, output: `${dir}/%v/index.m3u8`, renditions }
}
