/**
 * An ingest: probe the source, choose the ladder, run ONE ffmpeg for every rendition into a
 * private staging directory, rewrite and validate what it produced, write our own master
 * playlist from the real segments, then publish atomically. On any failure the staging
 * directory is removed and nothing is published.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { type Clock, systemClock } from '../../src/clock.js'
import { CdnError, isCdnError } from '../../src/errors.js'
import { avc1FromInit, avc1FromProfile, mp4aFromProfile } from '../../src/hls/codecs.js'
import { chooseLadder, sourceLines, unknownRungs } from '../../src/hls/ladder.js'
import {
  measureBandwidth,
  parseMediaPlaylist,
  writeMasterPlaylist,
  writeMediaPlaylist,
} from '../../src/hls/playlist.js'
import { assertTitle } from '../../src/http/paths.js'
import {
  ContentStore,
  type RenditionEntry,
  type TitleEntry,
  type VersionEntry,
} from '../store/content-store.js'
import type { OriginStore } from '../store/store.js'
import { Ffmpeg, type ProbeResult } from './ffmpeg.js'
import { ladderArgs, type SegmentFormat } from './ladder-args.js'
import { validateStaged } from './validate.js'

export interface IngestOptions {
  title: string
  /** Store root directory, or an open store (local or S3). */
  store: string | OriginStore
  /** Rung names to keep (e.g. ['720p','360p']); default: the whole ladder the source allows. */
  ladder?: readonly string[] | undefined
  segmentSeconds?: number | undefined
  format?: SegmentFormat | undefined
  /** x264 preset (default veryfast). */
  preset?: string | undefined
  /** Bits/s: the master lists first the highest variant peaking at most this (default 2 Mbit/s). */
  startupBitrate?: number | undefined
  ffmpeg?: Ffmpeg
  clock?: Clock
  /** Fraction done, 0..1. */
  onProgress?: (fraction: number, phase: 'probe' | 'transcode' | 'validate' | 'publish') => void
  signal?: AbortSignal
}

export interface IngestResult {
  title: string
  version: VersionEntry
  entry: TitleEntry
}

export const DEFAULT_SEGMENT_SECONDS = 4

export function newVersionId(clock: Clock): string {
  const iso = new Date(clock.now())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `v${iso}-${randomBytes(2).toString('hex')}`
}

function checkOptions(o: IngestOptions): { segmentSeconds: number; format: SegmentFormat } {
  assertTitle(o.title)
  const segmentSeconds = o.segmentSeconds ?? DEFAULT_SEGMENT_SECONDS
  if (!(segmentSeconds >= 1 && segmentSeconds <= 30))
    throw new CdnError('CDN_ERR_BAD_REQUEST', 'segmentSeconds must be between 1 and 30')
  const format = o.format ?? 'fmp4'
  if (format !== 'fmp4' && format !== 'ts')
    throw new CdnError('CDN_ERR_BAD_REQUEST', 'format must be fmp4 or ts')
  if (o.startupBitrate !== undefined && !(o.startupBitrate >= 0))
    throw new CdnError('CDN_ERR_BAD_REQUEST', 'startupBitrate must be a number of bits/s, 0 or more')
  const unknown = unknownRungs(o.ladder ?? [])
  if (unknown.length) throw new CdnError('CDN_ERR_BAD_REQUEST', `unknown ladder rungs: ${unknown.join(', ')}`)
  return { segmentSeconds, format }
}

/** A turn by a quarter (90 or 270 degrees, as ffmpeg's autorotate rounds it) swaps the sides. */
function quarterTurn(rotation: number | undefined): boolean {
  const deg = (((rotation ?? 0) % 360) + 360) % 360
  return Math.abs(deg - 90) < 1 || Math.abs(deg - 270) < 1
}

/**
 * The source's video as a player shows it: the pixel aspect widens (or narrows) the coded
 * picture and a quarter turn (phones) swaps its sides. ffmpeg does both when it decodes
 * (autorotate) and scales, so the ladder is sized on these dimensions.
 */
function sourceVideo(probe: ProbeResult, source: string) {
  const video = probe.streams.find((s) => s.type === 'video' && s.width && s.height)
  if (!video || !(probe.durationSec > 0))
    throw new CdnError('CDN_ERR_BAD_SOURCE', `${basename(source)}: no video stream with a duration`, {
      internal: { source },
    })
  const wide = video.width! * (video.sampleAspectRatio ?? 1)
  const turned = quarterTurn(video.rotation)
  return {
    width: turned ? video.height! : wide,
    height: turned ? wide : video.height!,
    fps: video.fps && video.fps <= 120 ? video.fps : 30,
  }
}

/**
 * The source probed and the rungs to encode it with (chooseLadder): the requested ones that fit
 * it, or CDN_ERR_BAD_REQUEST naming those that would when none does. POST /jobs asks before it
 * answers, so such a request is refused at once (routes/jobs.ts); the job asks again when it
 * runs, a backstop for a file changed since. An unreadable source is CDN_ERR_BAD_SOURCE.
 */
export async function planLadder(ff: Ffmpeg, source: string, ladder: readonly string[] | undefined) {
  const probe = await ff.probe(source)
  const src = sourceVideo(probe, source)
  const rungs = chooseLadder(sourceLines(src.width, src.height), ladder)
  return { probe, src, rungs }
}

export async function ingest(source: string, o: IngestOptions): Promise<IngestResult> {
  const { segmentSeconds, format } = checkOptions(o)
  const clock = o.clock ?? systemClock
  const ff = o.ffmpeg ?? new Ffmpeg()
  const store = typeof o.store === 'string' ? await new ContentStore(o.store).init() : o.store
  const progress = o.onProgress ?? (() => {})

  progress(0, 'probe')
  if (!existsSync(source))
    throw new CdnError('CDN_ERR_BAD_SOURCE', `source not found: ${basename(source)}`, {
      internal: { source },
    })
  const { probe, src, rungs } = await planLadder(ff, source, o.ladder)
  const hasAudio = probe.streams.some((s) => s.type === 'audio')
  const versionId = newVersionId(clock)
  const staging = await store.createStaging(`${o.title}-${versionId}`)
  try {
    const plan = { rungs, sourceWidth: src.width, sourceHeight: src.height, fps: src.fps, hasAudio }
    const args = ladderArgs({ ...plan, segmentSeconds, format, preset: o.preset }, staging)
    await ff
      .encode({
        inputs: [{ path: source }],
        exitOnInputError: true,
        complexFilter: args.complexFilter,
        outputOptions: args.outputOptions,
        output: args.output,
        durationSec: probe.durationSec,
        onProgress: (f) => progress(f * 0.95, 'transcode'),
        ...(o.signal ? { signal: o.signal } : {}),
      })
      .catch(async (err: unknown) => {
        throw await blameSource(ff, source, hasAudio, err, o.signal)
      })
    progress(0.95, 'validate')
    const renditions: RenditionEntry[] = []
    for (const [i, r] of args.renditions.entries()) {
      renditions.push(await finishRendition(ff, join(staging, r.name), r.name, i, format, hasAudio))
    }
    await validateStaged(staging, renditions, probe.durationSec, segmentSeconds)
    const version: VersionEntry = {
      id: versionId,
      createdAt: new Date(clock.now()).toISOString(),
      format,
      segmentSeconds,
      durationSec: Math.max(...renditions.map((r) => r.durationSec)),
      bytes: renditions.reduce((n, r) => n + r.bytes, 0),
      renditions,
    }
    const master = masterOf(version, o.startupBitrate)
    await writeFile(join(staging, 'master.m3u8'), master)
    await writeFile(join(staging, 'version.json'), `${JSON.stringify(version, null, 2)}\n`)
    progress(0.99, 'publish')
    const entry = await store.publish(o.title, staging, version, new Date(clock.now()))
    progress(1, 'publish')
    return { title: o.title, version, entry }
  } finally {
    // After a successful publish the directory has been renamed away; this only cleans failures.
    await rm(staging, { recursive: true, force: true })
  }
}

/**
 * The encode stops at the source's first decode error (-xerror) rather than publishing
 * concealed pictures; a failed encode is the source's fault when the source alone does not
 * decode either: then the job fails with CDN_ERR_BAD_SOURCE and ffmpeg's reason. Decoding again
 * costs nothing on success and tells a corrupt source from an encoder or disk failure.
 */
async function blameSource(
  ff: Ffmpeg,
  source: string,
  hasAudio: boolean,
  err: unknown,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  if (!isCdnError(err) || err.code !== 'CDN_ERR_TRANSCODE') return err
  const maps = hasAudio ? ['0:v:0', '0:a:0'] : ['0:v:0']
  const reason = await ff.decodeFailure(source, { maps, ...(signal ? { signal } : {}) })
  if (reason === undefined) return err
  return new CdnError('CDN_ERR_BAD_SOURCE', `${basename(source)} is corrupt: ${reason}`, {
    cause: err,
    internal: { source },
  })
}

/** A version's master playlist, its startup variant first (see writeMasterPlaylist). */
export function masterOf(version: VersionEntry, startupBitrate?: number): string {
  return writeMasterPlaylist(
    version.renditions.map((r) => ({
      uri: `${version.id}/${r.name}/index.m3u8`,
      bandwidth: r.bandwidth,
      averageBandwidth: r.averageBandwidth,
      codecs: r.codecs,
      width: r.width,
      height: r.height,
      frameRate: r.frameRate,
    })),
    startupBitrate === undefined ? {} : { startupBitrate },
  )
}

/**
 * Normalises one rendition ffmpeg wrote (init_N.mp4 → init.mp4, our own media playlist)
 * and measures it: sizes and durations of the real segments, codecs of the real streams.
 */
async function finishRendition(
  ff: Ffmpeg,
  dir: string,
  name: string,
  index: number,
  format: SegmentFormat,
  hasAudio: boolean,
): Promise<RenditionEntry> {
  const playlistFile = join(dir, 'index.m3u8')
  if (!existsSync(playlistFile))
    throw new CdnError('CDN_ERR_VALIDATION', `rendition ${name}: ffmpeg wrote no playlist`)
  const parsed = parseMediaPlaylist(await readFile(playlistFile, 'utf8'), `${name}/index.m3u8`)
  let mapUri: string | undefined
  if (format === 'fmp4') {
    // ffmpeg 5.1 suffixes the init segment per variant (init_0.mp4); the contract says init.mp4.
    const written = parsed.mapUri ?? `init_${index}.mp4`
    if (written !== 'init.mp4') await rename(join(dir, written), join(dir, 'init.mp4'))
    mapUri = 'init.mp4'
  }
  await writeFile(playlistFile, writeMediaPlaylist({ segments: parsed.segments, mapUri, mediaSequence: 1 }))

  const sizes = await Promise.all(parsed.segments.map((s) => stat(join(dir, s.uri)).then((st) => st.size)))
  const bw = measureBandwidth(parsed.segments.map((s, i) => ({ bytes: sizes[i]!, duration: s.duration })))
  const probe = await ff.probe(playlistFile)
  const video = probe.streams.find((s) => s.type === 'video')
  const audio = probe.streams.find((s) => s.type === 'audio')
  if (!video?.width || !video.height) throw new CdnError('CDN_ERR_VALIDATION', `rendition ${name}: no video`)
  const avc =
    (mapUri && avc1FromInit(await readFile(join(dir, mapUri)))) || avc1FromProfile(video.profile, video.level)
  const codecs = hasAudio && audio ? `${avc},${mp4aFromProfile(audio.profile)}` : avc
  const initBytes = mapUri ? (await stat(join(dir, mapUri))).size : 0
  return {
    name,
    width: video.width,
    height: video.height,
    frameRate: video.fps ?? 30,
    codecs,
    bandwidth: Math.round(bw.peak),
    averageBandwidth: Math.round(bw.average),
    segments: parsed.segments.length,
    durationSec: Number(parsed.segments.reduce((n, s) => n + s.duration, 0).toFixed(3)),
    bytes: sizes.reduce((n, s) => n + s, initBytes),
  }
}
