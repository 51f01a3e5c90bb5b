/**
 * The one module that drives ffmpeg and ffprobe. Everything else asks it for "run this
 * encode" or "probe that file", so fluent-ffmpeg can be swapped without touching callers.
 *
 * Binaries come from explicit paths (FFMPEG_PATH / FFPROBE_PATH, read by src/config and
 * passed in) or from PATH; a missing one is a CdnError naming the install command.
 *
 * Every ffprobe run is bounded (probeTimeoutMs, --probe-timeout): a source whose read never
 * ends (a FIFO nobody writes, a stalled network mount) would otherwise hold a POST /jobs
 * request or a job, and the process, forever.
 */
import { execFile, type ExecFileException } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { basename, delimiter, isAbsolute, join } from 'node:path'
import ffmpeg from 'fluent-ffmpeg'
import { DEFAULT_PROBE_TIMEOUT_MS } from '../../src/config/ffmpeg-options.js'
import { CdnError } from '../../src/errors.js'

export { DEFAULT_PROBE_TIMEOUT_MS }

export interface FfmpegOptions {
  /** Explicit ffmpeg binary (FFMPEG_PATH); otherwise looked up on PATH. */
  ffmpegPath?: string | undefined
  /** Explicit ffprobe binary (FFPROBE_PATH); otherwise looked up on PATH. */
  ffprobePath?: string | undefined
  /** The PATH to search, passed in (only src/config reads the environment). */
  searchPath?: string | undefined
  /**
   * Time limit of one ffprobe run (probe, packets), ms; DEFAULT_PROBE_TIMEOUT_MS by default.
   * Past it ffprobe is killed (SIGKILL) and the call fails with CDN_ERR_PROBE_TIMEOUT.
   */
  probeTimeoutMs?: number | undefined
}

export interface ProbedStream {
  index: number
  type: 'video' | 'audio' | 'other'
  codec: string
  profile?: string
  level?: number
  width?: number
  height?: number
  /** Frames per second from r_frame_rate. */
  fps?: number
  /** Pixel (sample) aspect ratio, width over height, when the stream states one other than 1. */
  sampleAspectRatio?: number
  /** Degrees the picture is turned for display: the display matrix, else the `rotate` tag. */
  rotation?: number
  bitRate?: number
  channels?: number
  sampleRate?: number
}

export interface ProbeResult {
  durationSec: number
  sizeBytes: number
  bitRate: number
  formatName: string
  streams: ProbedStream[]
}

export interface PacketInfo {
  ptsSec: number
  sizeBytes: number
  keyframe: boolean
}

export interface EncodeSpec {
  /** Input files or lavfi graphs, each with optional input options (e.g. ['-f', 'lavfi']). */
  inputs: { path: string; options?: string[] }[]
  complexFilter?: string
  /** Output options, already in ffmpeg's argv form. */
  outputOptions: string[]
  output: string
  /**
   * `-xerror`: stop at an input's first decode error or corrupt packet instead of concealing
   * it (ffmpeg would otherwise finish and exit 0 with damaged or missing pictures).
   */
  exitOnInputError?: boolean
  /** Expected output duration, for progress fractions. */
  durationSec: number
  onProgress?: (fraction: number) => void
  signal?: AbortSignal
}

const INSTALL_HINT =
  'install it with `apt-get install ffmpeg` (Debian/Ubuntu; `brew install ffmpeg` on macOS), or set FFMPEG_PATH and FFPROBE_PATH'

function resolveBinary(name: 'ffmpeg' | 'ffprobe', explicit: string | undefined, searchPath: string): string {
  const usable = (p: string) => {
    try {
      accessSync(p, constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  if (explicit) {
    if (isAbsolute(explicit) ? usable(explicit) : true) return explicit
    throw new CdnError('CDN_ERR_FFMPEG_MISSING', `${name} not found at ${explicit}: ${INSTALL_HINT}`)
  }
  for (const dir of searchPath.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name)
    if (usable(candidate)) return candidate
  }
  throw new CdnError('CDN_ERR_FFMPEG_MISSING', `${name} was not found on PATH: ${INSTALL_HINT}`)
}

/** The last meaningful lines of ffmpeg's stderr: its reason for failing. */
export function ffmpegReason(stderr: string, lines = 4): string {
  const kept = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(
      (l) =>
        l &&
        !/^(frame=|size=|video:|\[libx264 @|Press \[q\]|lib\w+\s+\d|configuration:|built with|ff(mpeg|probe) (version|exited)|Copyright)/.test(
          l,
        ),
    )
  // Messages reach job views: file paths (sources, the store) are cut to their last part, and
  // the process's memory addresses in ffmpeg's context tags ([mov,mp4,... @ 0x55d0...]) go.
  const text = kept
    .slice(-lines)
    .join(' | ')
    .replace(/(?<=^|[\s'"(])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'"|:]+)+[/\\]([^\s/\\'"|:]+)/g, '$1')
    .replace(/ @ 0x[0-9a-fA-F]+\]/g, ']')
  return text || 'ffmpeg failed without a message'
}

function timemarkSeconds(mark: string): number {
  const m = /^(-?)(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(mark)
  if (!m) return Number(mark) || 0
  return Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])
}

/** The fields of `ffprobe -print_format json -show_format -show_streams` that probe() maps. */
interface FfprobeJson {
  format?: { duration?: string; size?: string; bit_rate?: string; format_name?: string }
  streams?: {
    index: number
    codec_type?: string
    codec_name?: string
    profile?: string | number
    level?: number
    width?: number
    height?: number
    r_frame_rate?: string
    sample_aspect_ratio?: string
    bit_rate?: string
    channels?: number
    sample_rate?: string
    tags?: Record<string, string>
    side_data_list?: { rotation?: number | string }[]
  }[]
}

function parseRate(rate: string | undefined, separator = '/'): number | undefined {
  if (!rate) return undefined
  const [n, d] = rate.split(separator).map(Number)
  if (!n || !d) return undefined
  return n / d
}

/** ffprobe's `rotation` (display matrix side data), or the `rotate` tag older muxers wrote. */
function parseRotation(side: unknown, tag: unknown): number | undefined {
  for (const v of [side, tag]) {
    const n = typeof v === 'number' || typeof v === 'string' ? Number(v) : NaN
    if (v !== '' && Number.isFinite(n)) return n
  }
  return undefined
}

export class Ffmpeg {
  readonly ffmpegPath: string
  readonly ffprobePath: string
  /** Time limit of one ffprobe run, ms. */
  readonly probeTimeoutMs: number

  constructor(o: FfmpegOptions = {}) {
    const searchPath = o.searchPath ?? '/usr/local/bin:/usr/bin:/bin'
    this.ffmpegPath = resolveBinary('ffmpeg', o.ffmpegPath, searchPath)
    this.ffprobePath = resolveBinary('ffprobe', o.ffprobePath, searchPath)
    const timeout = o.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new CdnError('CDN_ERR_CONFIG', `probe timeout must be a positive number of ms, not ${timeout}`)
    this.probeTimeoutMs = timeout
  }

  /**
   * Streams and duration of a media file (or a playlist). Fails with CDN_ERR_BAD_SOURCE, or
   * CDN_ERR_PROBE_TIMEOUT when ffprobe has not finished within probeTimeoutMs.
   */
  async probe(file: string): Promise<ProbeResult> {
    const args = ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams']
    const stdout = await this.ffprobe(args, file, 'cannot read source', 2)
    let data: FfprobeJson
    try {
      data = JSON.parse(stdout) as FfprobeJson
    } catch (err) {
      throw new CdnError('CDN_ERR_BAD_SOURCE', 'cannot read source: ffprobe printed no JSON', { cause: err })
    }
    // The same mapping as when fluent-ffmpeg ran ffprobe (its default output, parsed flat): the
    // JSON writer leaves out the fields that one printed as "unknown" or "N/A", and nests the
    // display matrix's rotation in side_data_list where the flat parse put it on the stream.
    const streams: ProbedStream[] = (data.streams ?? []).map((s) => {
      const type = s.codec_type === 'video' || s.codec_type === 'audio' ? s.codec_type : 'other'
      const out: ProbedStream = { index: s.index, type, codec: s.codec_name ?? 'unknown' }
      out.profile = s.profile === undefined ? 'unknown' : String(s.profile)
      if (typeof s.level === 'number' && s.level > 0) out.level = s.level
      if (s.width) out.width = s.width
      if (s.height) out.height = s.height
      const fps = parseRate(s.r_frame_rate)
      if (type === 'video' && fps) out.fps = fps
      const sar = parseRate(s.sample_aspect_ratio, ':')
      if (type === 'video' && sar && sar !== 1) out.sampleAspectRatio = sar
      const side = s.side_data_list?.findLast((d) => d.rotation !== undefined)?.rotation
      const rotation = parseRotation(side, s.tags?.rotate)
      if (type === 'video' && rotation) out.rotation = rotation
      if (s.bit_rate && Number(s.bit_rate)) out.bitRate = Number(s.bit_rate)
      if (s.channels) out.channels = s.channels
      if (s.sample_rate) out.sampleRate = Number(s.sample_rate)
      return out
    })
    return {
      durationSec: Number(data.format?.duration) || 0,
      sizeBytes: Number(data.format?.size) || 0,
      bitRate: Number(data.format?.bit_rate) || 0,
      formatName: data.format?.format_name ?? '',
      streams,
    }
  }

  /**
   * Packets of one stream (`v:0`, `a:0`): timestamps, sizes, keyframe flags. Fails like probe():
   * CDN_ERR_BAD_SOURCE, or CDN_ERR_PROBE_TIMEOUT past probeTimeoutMs.
   */
  async packets(file: string, stream = 'v:0'): Promise<PacketInfo[]> {
    const args = ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=pts_time,size,flags']
    args.push('-of', 'csv=p=0')
    const stdout = await this.ffprobe(args, file, 'ffprobe failed', 4)
    const out: PacketInfo[] = []
    for (const line of stdout.split('\n')) {
      const [pts, size, flags] = line.trim().split(',')
      if (pts === undefined || size === undefined || pts === 'N/A') continue
      out.push({ ptsSec: Number(pts), sizeBytes: Number(size), keyframe: (flags ?? '').includes('K') })
    }
    return out
  }

  /**
   * One ffprobe run on `file`, its stdout. Past probeTimeoutMs execFile kills it with SIGKILL
   * (which it can neither catch nor ignore) and reaps it before the callback, which rejects with
   * CDN_ERR_PROBE_TIMEOUT: nothing is left running. Any other failure is
   * CDN_ERR_BAD_SOURCE, `prefix` and ffprobe's last `lines` stderr lines.
   */
  private ffprobe(args: string[], file: string, prefix: string, lines: number): Promise<string> {
    const timeout = this.probeTimeoutMs
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.ffprobePath,
        [...args, file],
        { maxBuffer: 64 * 1024 * 1024, timeout, killSignal: 'SIGKILL' },
        (err: ExecFileException | null, stdout, stderr) => {
          if (!err) resolve(stdout)
          // `killed` is set only when execFile killed it itself, and that is the timeout here
          // (an overflow of maxBuffer fails with ERR_CHILD_PROCESS_STDIO_MAXBUFFER instead).
          else if (err.killed)
            reject(
              new CdnError(
                'CDN_ERR_PROBE_TIMEOUT',
                `cannot read source ${basename(file)}: ffprobe timed out after ${timeout / 1000} s`,
                { cause: err, internal: { file, pid: child.pid, timeoutMs: timeout } },
              ),
            )
          else {
            const reason = stderr.trim()
              ? ffmpegReason(stderr, lines)
              : `no message from ffprobe (exit ${err.code ?? err.signal})`
            reject(new CdnError('CDN_ERR_BAD_SOURCE', `${prefix}: ${reason}`, { cause: err }))
          }
        },
      )
    })
  }

  /** Runs one ffmpeg process; rejects with CDN_ERR_TRANSCODE carrying ffmpeg's last stderr lines. */
  encode(spec: EncodeSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      if (spec.signal?.aborted) {
        reject(new CdnError('CDN_ERR_CANCELLED', 'transcode cancelled'))
        return
      }
      const cmd = ffmpeg().setFfmpegPath(this.ffmpegPath)
      for (const [i, input] of spec.inputs.entries()) {
        cmd.input(input.path)
        // A global option (ffmpeg takes it wherever it stands): given once, with the first input.
        if (i === 0 && spec.exitOnInputError) cmd.inputOptions('-xerror')
        // Spread, never an array: fluent-ffmpeg splits array items on a single space.
        if (input.options?.length) cmd.inputOptions(...input.options)
      }
      if (spec.complexFilter) cmd.complexFilter(spec.complexFilter)
      cmd.outputOptions(...spec.outputOptions).output(spec.output)
      const onAbort = () => cmd.kill('SIGKILL')
      spec.signal?.addEventListener('abort', onAbort, { once: true })
      // fluent-ffmpeg checks ffmpeg's capabilities before it spawns the encode, and kill() does
      // nothing until then: an abort in that gap kills the encode as it starts.
      cmd.on('start', () => {
        if (spec.signal?.aborted) cmd.kill('SIGKILL')
      })
      const finish = (err?: Error) => {
        spec.signal?.removeEventListener('abort', onAbort)
        if (err) reject(err)
        else resolve()
      }
      cmd.on('progress', (p: { timemark: string }) => {
        if (!spec.onProgress || spec.durationSec <= 0) return
        spec.onProgress(Math.max(0, Math.min(1, timemarkSeconds(p.timemark) / spec.durationSec)))
      })
      cmd.on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
        if (spec.signal?.aborted) finish(new CdnError('CDN_ERR_CANCELLED', 'transcode cancelled'))
        else
          finish(
            new CdnError('CDN_ERR_TRANSCODE', `ffmpeg failed: ${ffmpegReason(stderr || err.message)}`, {
              cause: err,
            }),
          )
      })
      cmd.on('end', () => finish())
      cmd.run()
    })
  }

  /**
   * Decodes every stream of `input` (a file or an http:// playlist) to nowhere, as a player
   * would; rejects with ffmpeg's reason on the first error. Returns what ffmpeg reported.
   */
  async decode(input: string, opts: { maps?: string[]; signal?: AbortSignal } = {}): Promise<string> {
    const run = await this.decodeRun(input, opts)
    if (run.failed) throw new CdnError('CDN_ERR_TRANSCODE', `decode failed: ${ffmpegReason(run.stderr)}`)
    return run.stderr
  }

  /**
   * Why `input` does not decode (the streams in `maps`), in ffmpeg's words, or undefined when it
   * decodes without an error. Rejects only when cancelled.
   */
  async decodeFailure(
    input: string,
    opts: { maps?: string[]; signal?: AbortSignal } = {},
  ): Promise<string | undefined> {
    const run = await this.decodeRun(input, opts)
    if (opts.signal?.aborted) throw new CdnError('CDN_ERR_CANCELLED', 'transcode cancelled')
    return run.failed ? ffmpegReason(run.stderr) : undefined
  }

  /** One `-xerror` decode to the null muxer: whether ffmpeg failed, and its stderr (errors only). */
  private decodeRun(
    input: string,
    opts: { maps?: string[]; signal?: AbortSignal },
  ): Promise<{ failed: boolean; stderr: string }> {
    return new Promise((resolve) => {
      if (opts.signal?.aborted) {
        resolve({ failed: true, stderr: 'cancelled' })
        return
      }
      const cmd = ffmpeg(input).setFfmpegPath(this.ffmpegPath).inputOptions('-v', 'error', '-xerror')
      const maps = (opts.maps ?? ['0']).flatMap((m) => ['-map', m])
      cmd.outputOptions(...maps, '-f', 'null').output('-')
      const onAbort = () => cmd.kill('SIGKILL')
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      cmd.on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
        opts.signal?.removeEventListener('abort', onAbort)
        resolve({ failed: true, stderr: stderr || err.message })
      })
      cmd.on('end', (_stdout: string | null, stderr: string | null) => {
        opts.signal?.removeEventListener('abort', onAbort)
        resolve({ failed: false, stderr: stderr ?? '' })
      })
      cmd.run()
    })
  }
}
