/**
 * Transcode benchmark: the realtime factor (source seconds per wall second) of the default
 * ladder done the way ingest does it (one ffmpeg: decode once, split, scale per rung) against
 * the same ladder as one ffmpeg per rendition (each decoding the source again), run one after
 * another and all at once. Same source, same encoder settings, same run.
 *
 *   npm run bench:transcode [-- --seconds 12 --rounds 1]
 *
 * Writes bench/results/transcode.json and bench/results/transcode.md.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fixtureFfmpeg, sampleSource } from '../../fixtures/media.js'
import type { Ffmpeg } from '../../origin/transcode/ffmpeg.js'
import { type LadderPlan, ladderArgs } from '../../origin/transcode/ladder-args.js'
import { systemClock } from '../../src/clock.js'
import { chooseLadder, type Rung } from '../../src/hls/ladder.js'
import { benchArgs, numberArg } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'

const USAGE = `Usage: npm run bench:transcode -- [flags]
  --seconds S    length of the 1080p source transcoded (default: 12)
  --rounds N     rounds of every way of transcoding (default: 1)
  -h, --help     print this and exit`
const values = benchArgs(USAGE, {
  options: { seconds: { type: 'string', default: '12' }, rounds: { type: 'string', default: '1' } },
})
const seconds = numberArg(values.seconds, '--seconds', 12, { min: 0 })
const rounds = Math.max(1, numberArg(values.rounds, '--rounds', 1, { integer: true }))
const SRC = { width: 1920, height: 1080, fps: 30 }

async function encode(ff: Ffmpeg, source: string, rungs: readonly Rung[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cdn-bench-transcode-'))
  try {
    const plan: LadderPlan = {
      rungs,
      sourceWidth: SRC.width,
      sourceHeight: SRC.height,
      fps: SRC.fps,
      hasAudio: true,
      segmentSeconds: 4,
      format: 'fmp4',
    }
    const a = ladderArgs(plan, dir)
    await ff.encode({
      inputs: [{ path: source }],
      complexFilter: a.complexFilter,
      outputOptions: a.outputOptions,
      output: a.output,
      durationSec: seconds,
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = systemClock.monotonic()
  await fn()
  return (systemClock.monotonic() - t0) / 1000
}

interface Row {
  mode: string
  processes: number
  wallSec: number
  realtime: number
}

async function main(): Promise<void> {
  const ff = fixtureFfmpeg()
  process.stdout.write(`bench:transcode: ${seconds} s ${SRC.width}x${SRC.height}@${SRC.fps} source\n`)
  const source = await sampleSource({ seconds, ...SRC })
  const ladder = chooseLadder(SRC.height)
  const modes: { mode: string; processes: number; run: () => Promise<unknown> }[] = [
    { mode: 'one process, whole ladder (ingest)', processes: 1, run: () => encode(ff, source, ladder) },
    {
      mode: 'one process per rendition, sequential',
      processes: ladder.length,
      run: async () => {
        for (const r of ladder) await encode(ff, source, [r])
      },
    },
    {
      mode: 'one process per rendition, all at once',
      processes: ladder.length,
      run: () => Promise.all(ladder.map((r) => encode(ff, source, [r]))),
    },
  ]
  const rows: Row[] = []
  for (const m of modes) {
    let best = Number.POSITIVE_INFINITY
    for (let i = 0; i < rounds; i++) best = Math.min(best, await timed(m.run))
    rows.push({ mode: m.mode, processes: m.processes, wallSec: best, realtime: seconds / best })
    process.stdout.write(`  ${m.mode}: ${best.toFixed(2)} s wall, ${(seconds / best).toFixed(2)}x realtime\n`)
  }
  const single = rows[0]!
  const doc = {
    bench: 'transcode',
    date: new Date(systemClock.now()).toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    source: { seconds, ...SRC },
    ladder: ladder.map((r) => ({ name: r.name, videoBitrate: r.videoBitrate, audioBitrate: r.audioBitrate })),
    preset: 'veryfast',
    rounds,
    rows,
    singleProcessFastest: rows.every((r) => r === single || r.wallSec > single.wallSec),
  }
  const md = [
    `Transcode: ${seconds} s ${SRC.width}x${SRC.height} ${SRC.fps} fps source, ladder ${ladder.map((r) => r.name).join('/')},`,
    `x264 veryfast, ${cpus().length} CPUs, best of ${rounds}. Realtime factor = source seconds per wall second.`,
    '',
    markdownTable(rows, [
      { header: 'mode', cell: (r) => r.mode },
      { header: 'ffmpeg processes', cell: (r) => String(r.processes), right: true },
      { header: 'wall s', cell: (r) => fmt(r.wallSec), right: true },
      { header: 'realtime factor', cell: (r) => `${fmt(r.realtime)}x`, right: true },
      { header: 'vs ingest', cell: (r) => `${fmt(single.wallSec / r.wallSec)}x`, right: true },
    ]),
  ].join('\n')
  const root = repoRoot(import.meta.url)
  writeResults(join(root, 'bench/results/transcode.json'), join(root, 'bench/results/transcode.md'), doc, md)
  process.stdout.write(`${md}\n`)
  if (!doc.singleProcessFastest)
    process.stdout.write('bench:transcode: WARNING: the single process was not the fastest\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:transcode: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
