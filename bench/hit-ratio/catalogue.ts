/**
 * The synthetic catalogue the generated traces play: titles with a release day, a length
 * (hour-long features and short episodes) and the origin's own bitrate ladder
 * (src/hls/ladder.ts: 1080p to 240p, Apple's authoring-spec rates), cut into fixed-length
 * segments. Every object's size is a pure function of its coordinates (rng.ts `hashNormal`),
 * so the catalogue also answers what an upstream would: a size for any path, and master and
 * media playlists (written by src/hls) for the prefill planner.
 */
import { DEFAULT_LADDER, type Rung } from '../../src/hls/ladder.js'
import { writeMasterPlaylist, writeMediaPlaylist } from '../../src/hls/playlist.js'
import { masterPath, mediaPath, parseVodPath, segmentName } from '../../src/http/paths.js'
import { hashNormal, lognormal, type Rng } from './rng.js'

export interface CatalogueParams {
  /** Titles available on day 0 (the back catalogue). */
  readonly titles: number
  /** New titles released at the start of each day after day 0. */
  readonly newTitlesPerDay: number
  readonly days: number
  /** Share of titles that are features; the rest are episodes. */
  readonly featureShare: number
  /** Length range of a feature and of an episode, minutes. */
  readonly featureMinutes: readonly [number, number]
  readonly episodeMinutes: readonly [number, number]
  readonly segmentSec: number
  /** Sigma of the log-normal spread of segment sizes around the rung's rate. */
  readonly sizeSigma: number
  /** Sigma of the log-normal spread of titles' intrinsic appeal. */
  readonly volumeSigma: number
}

export const VERSION = 'v1'
/** Index, init and media segments get file numbers 0, 1, 2.. inside a rendition. */
export const FILE_INDEX = 0
export const FILE_INIT = 1
const INIT_BYTES = 1100

export interface Title {
  readonly index: number
  readonly id: string
  readonly durationSec: number
  readonly segments: number
  /** Day of release (negative: in the back catalogue before the trace starts). */
  readonly releaseDay: number
  /** Intrinsic appeal (log-normal): the popularity of titles of one age is proportional to it. */
  readonly volume: number
}

export class Catalogue {
  readonly titles: Title[] = []
  readonly ladder: readonly Rung[] = DEFAULT_LADDER
  private readonly byId = new Map<string, Title>()
  private readonly mediaText = new Map<string, string>()

  constructor(
    readonly params: CatalogueParams,
    rng: Rng,
  ) {
    const total = params.titles + params.newTitlesPerDay * Math.max(0, params.days - 1)
    for (let i = 0; i < total; i++) {
      const feature = rng() < params.featureShare
      const [lo, hi] = feature ? params.featureMinutes : params.episodeMinutes
      const durationSec = Math.round((lo + (hi - lo) * rng()) * 60)
      const releaseDay =
        i < params.titles
          ? -Math.round(30 + 970 * rng())
          : 1 + Math.floor((i - params.titles) / params.newTitlesPerDay)
      const title: Title = {
        index: i,
        id: `t${String(i).padStart(5, '0')}`,
        durationSec,
        segments: Math.ceil(durationSec / params.segmentSec),
        releaseDay,
        volume: lognormal(rng, 1, params.volumeSigma),
      }
      this.titles.push(title)
      this.byId.set(title.id, title)
    }
  }

  title(id: string): Title | undefined {
    return this.byId.get(id)
  }

  /** Titles released on or before `day`. */
  available(day: number): Title[] {
    return this.titles.filter((t) => t.releaseDay <= day)
  }

  segmentSeconds(t: Title, seg: number): number {
    const last = t.durationSec - (t.segments - 1) * this.params.segmentSec
    return seg === t.segments - 1 ? last : this.params.segmentSec
  }

  /** Bytes of media segment `seg` (0-based) of rung `rung` of a title. */
  segmentBytes(t: Title, rung: number, seg: number): number {
    const r = this.ladder[rung]!
    const s = this.params.sizeSigma
    const mean = ((r.videoBitrate + r.audioBitrate) * this.segmentSeconds(t, seg)) / 8
    return Math.max(188, Math.round(mean * Math.exp(s * hashNormal(t.index, rung, seg) - (s * s) / 2)))
  }

  /** Bytes of file number `file` (FILE_INDEX, FILE_INIT, then segments) of a rendition. */
  fileBytes(t: Title, rung: number, file: number): number {
    if (file === FILE_INDEX) return Buffer.byteLength(this.mediaPlaylist(t, rung))
    if (file === FILE_INIT) return INIT_BYTES
    return this.segmentBytes(t, rung, file - 2)
  }

  filePath(t: Title, rung: number, file: number): string {
    const name =
      file === FILE_INDEX ? 'index.m3u8' : file === FILE_INIT ? 'init.mp4' : segmentName(file - 1, 'm4s')
    return mediaPath(t.id, VERSION, this.ladder[rung]!.name, name)
  }

  /** Every byte of a title (all renditions). */
  titleBytes(t: Title): number {
    let n = 0
    for (let r = 0; r < this.ladder.length; r++) n += this.renditionBytes(t, r)
    return n
  }

  renditionBytes(t: Title, rung: number): number {
    let n = this.fileBytes(t, rung, FILE_INDEX) + INIT_BYTES
    for (let s = 0; s < t.segments; s++) n += this.segmentBytes(t, rung, s)
    return n
  }

  /** Bytes of every title released by the end of the trace. */
  totalBytes(): number {
    return this.titles.reduce((s, t) => s + this.titleBytes(t), 0)
  }

  /** Every title has the whole ladder, so every master is the same text. */
  masterPlaylist(): string {
    return writeMasterPlaylist(
      this.ladder.map((r) => {
        const rate = r.videoBitrate + r.audioBitrate
        return {
          uri: `${VERSION}/${r.name}/index.m3u8`,
          bandwidth: Math.round(rate * 1.1),
          averageBandwidth: rate,
          codecs: 'avc1.640028,mp4a.40.2',
          width: Math.round((r.height * 16) / 9 / 2) * 2,
          height: r.height,
          frameRate: 30,
        }
      }),
    )
  }

  mediaPlaylist(t: Title, rung: number): string {
    const memo = `${t.index}/${rung}`
    let text = this.mediaText.get(memo)
    if (text === undefined) {
      const segments = []
      for (let s = 0; s < t.segments; s++)
        segments.push({ uri: segmentName(s + 1, 'm4s'), duration: this.segmentSeconds(t, s) })
      text = writeMediaPlaylist({ segments, mapUri: 'init.mp4' })
      // Bounded: the planner reads a few hundred titles a night.
      if (this.mediaText.size >= 4096) this.mediaText.clear()
      this.mediaText.set(memo, text)
    }
    return text
  }

  /** Where a path is in the catalogue, or undefined for a path it does not have. */
  locate(
    path: string,
  ): { title: Title; rung: number; file: number } | { title: Title; master: true } | undefined {
    const vp = parseVodPath(path)
    const title = vp && this.byId.get(vp.title)
    if (!vp || !title) return undefined
    if (vp.kind === 'master') return { title, master: true }
    const rung = this.ladder.findIndex((r) => r.name === vp.rendition)
    if (rung < 0 || vp.version !== VERSION) return undefined
    if (vp.file === 'index.m3u8') return { title, rung, file: FILE_INDEX }
    if (vp.file === 'init.mp4') return { title, rung, file: FILE_INIT }
    const seg = Number(/^seg-(\d+)\.m4s$/.exec(vp.file)?.[1] ?? Number.NaN)
    if (!(seg >= 1 && seg <= title.segments)) return undefined
    return { title, rung, file: seg + 1 }
  }

  /** The bytes an upstream would send for a path, or undefined (404). */
  sizeOf(path: string): number | undefined {
    const at = this.locate(path)
    if (!at) return undefined
    if ('master' in at) return Buffer.byteLength(this.masterPlaylist())
    return this.fileBytes(at.title, at.rung, at.file)
  }

  /** A playlist's text, or undefined when the path is not a playlist of this catalogue. */
  playlistText(path: string): string | undefined {
    const at = this.locate(path)
    if (!at) return undefined
    if ('master' in at) return this.masterPlaylist()
    return at.file === FILE_INDEX ? this.mediaPlaylist(at.title, at.rung) : undefined
  }

  masterPathOf(t: Title): string {
    return masterPath(t.id)
  }
}
