/** Media checks for tests, all through origin/transcode/ffmpeg.ts (the one ffmpeg module). */
import { fixtureFfmpeg } from '../../fixtures/media.js'
import type { PacketInfo, ProbeResult } from '../../origin/transcode/ffmpeg.js'

export { corruptSource, sampleSource } from '../../fixtures/media.js'

export function probe(file: string): Promise<ProbeResult> {
  return fixtureFfmpeg().probe(file)
}

/** Video packets of a file or local playlist: timestamps, sizes, keyframe flags. */
export function videoPackets(file: string): Promise<PacketInfo[]> {
  return fixtureFfmpeg().packets(file, 'v:0')
}

/** Presentation times (s) of the video keyframes, rounded to milliseconds. */
export async function keyframeTimes(file: string): Promise<number[]> {
  const packets = await videoPackets(file)
  return packets
    .filter((p) => p.keyframe)
    .map((p) => Math.round(p.ptsSec * 1000) / 1000)
    .sort((a, b) => a - b)
}

/** Decodes every stream of `input` (file or URL) as a player would; rejects on any error. */
export function decodeAll(input: string, maps?: string[]): Promise<string> {
  return fixtureFfmpeg().decode(input, maps ? { maps } : {})
}
