/**
 * bench:compress: how much the edge's encoding of playlists saves (edge/cache/compress.ts), on
 * media playlists as the origin writes them (src/hls/playlist.ts writeMediaPlaylist, fMP4 with
 * EXT-X-MAP, the origin's segment names), for a two-hour title at 4 s and 6 s segments (the
 * origin forces keyframes, so durations are exact; one row with irregular durations as an
 * encoder without forced keyframes writes them) and a ten-minute one: identity bytes, brotli and gzip bytes with the edge's own settings (its Encoder,
 * brotli quality 9 text mode, gzip level 6), the size ratios, and the time to encode both forms
 * once (median of ROUNDS, on the threadpool as the edge does). Writes bench/results/compress.json
 * and .md. Usage: npm run build && npm run bench:compress
 */
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Encoder } from '../../edge/cache/compress.js'
import { prng } from '../../fixtures/prng.js'
import { writeMediaPlaylist } from '../../src/hls/playlist.js'
import { benchArgs } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'

benchArgs(
  'Usage: npm run bench:compress -- [flags]\n  -h, --help    print this and exit (the bench takes no other flag)',
  {
    options: {},
  },
)

const ROUNDS = 21

interface Row {
  title: string
  segments: number
  identity: number
  br: number
  gzip: number
  brRatio: number
  gzipRatio: number
  encodeMs: number
}

/** `jitter`: each duration drawn within ±jitter s (a seeded PRNG), as an encoder without forced keyframes makes them. */
function playlist(seconds: number, segmentSeconds: number, jitter = 0): Buffer {
  const n = Math.ceil(seconds / segmentSeconds)
  const random = prng(7)
  return Buffer.from(
    writeMediaPlaylist({
      segments: Array.from({ length: n }, (_, i) => ({
        uri: `seg-${String(i + 1).padStart(5, '0')}.m4s`,
        duration:
          i === n - 1
            ? seconds - segmentSeconds * (n - 1)
            : segmentSeconds + Math.round((random() * 2 - 1) * jitter * 30) / 30,
      })),
      mapUri: 'init.mp4',
    }),
  )
}

async function measure(title: string, body: Buffer, segments: number): Promise<Row> {
  const encoder = new Encoder()
  const times: number[] = []
  let forms: Awaited<ReturnType<Encoder['encode']>>
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now()
    forms = await encoder.encode(body)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  const br = forms!.br?.length ?? body.length
  const gzip = forms!.gzip?.length ?? body.length
  return {
    title,
    segments,
    identity: body.length,
    br,
    gzip,
    brRatio: body.length / br,
    gzipRatio: body.length / gzip,
    encodeMs: times[Math.floor(ROUNDS / 2)]!,
  }
}

const cases: Array<[string, number, number, number]> = [
  ['2 h, 4 s segments', 7200, 4, 0],
  ['2 h, 4 s segments, durations ±0.5 s (frame-rounded)', 7200, 4, 0.5],
  ['2 h, 6 s segments', 7200, 6, 0],
  ['10 min, 4 s segments', 600, 4, 0],
]
const rows: Row[] = []
for (const [title, seconds, seg, jitter] of cases)
  rows.push(await measure(title, playlist(seconds, seg, jitter), Math.ceil(seconds / seg)))

const table = markdownTable(rows, [
  { header: 'media playlist', cell: (r) => r.title },
  { header: 'segments', cell: (r) => String(r.segments), right: true },
  { header: 'identity bytes', cell: (r) => fmt(r.identity), right: true },
  { header: 'brotli bytes', cell: (r) => fmt(r.br), right: true },
  { header: 'gzip bytes', cell: (r) => fmt(r.gzip), right: true },
  { header: 'brotli ratio', cell: (r) => `${fmt(r.brRatio)}x`, right: true },
  { header: 'gzip ratio', cell: (r) => `${fmt(r.gzipRatio)}x`, right: true },
  { header: 'encode both, ms (median)', cell: (r) => fmt(r.encodeMs), right: true },
])
const root = repoRoot(import.meta.url)
writeResults(
  join(root, 'bench/results/compress.json'),
  join(root, 'bench/results/compress.md'),
  {
    node: process.version,
    zlib: process.versions.zlib,
    brotli: process.versions.brotli,
    rounds: ROUNDS,
    rows,
  },
  `${table}\n\nnode ${process.version}, zlib ${process.versions.zlib}, brotli ${process.versions.brotli ?? '?'}; \`npm run build && npm run bench:compress\`\n`,
)
console.log(table)
