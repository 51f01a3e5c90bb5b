/**
 * The ladder as ffprobe sees it: renditions and resolutions, measured bitrates near their
 * targets, keyframes aligned at every segment boundary, a master built from the real streams.
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { TitleEntry } from '../../origin/store/content-store.js'
import { DEFAULT_LADDER } from '../../src/hls/ladder.js'
import { parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist.js'
import { keyframeTimes, probe } from '../helpers/media.js'
import { ingestedStore } from '../helpers/origin.js'

const store = await ingestedStore(t, { titles: [{ id: 'ladder', seconds: 10, width: 854, height: 480 }] })
const titleDir = join(store, 'titles', 'ladder')
const entry = JSON.parse(await readFile(join(titleDir, 'title.json'), 'utf8')) as TitleEntry
const version = entry.versions[0]!
const vdir = join(titleDir, version.id)

t.test('renditions: every rung up to the source, none above, at the asked resolution', async (t) => {
  t.same(
    version.renditions.map((r) => r.name),
    ['480p', '360p', '240p'],
    'no 720p or 1080p from a 480p source',
  )
  for (const r of version.renditions) {
    const p = await probe(join(vdir, r.name, 'index.m3u8'))
    const v = p.streams.find((s) => s.type === 'video')!
    t.equal(v.height, r.height, `${r.name} height`)
    t.equal(v.width, Math.round((854 * r.height) / 480 / 2) * 2, `${r.name} width keeps 16:9`)
    t.equal(v.codec, 'h264')
    t.equal(p.streams.find((s) => s.type === 'audio')?.codec, 'aac')
  }
})

t.test('measured bitrates are near the authoring-spec targets', async (t) => {
  for (const r of version.renditions) {
    const rung = DEFAULT_LADDER.find((x) => x.name === r.name)!
    const target = rung.videoBitrate + rung.audioBitrate
    const ratio = r.averageBandwidth / target
    // ABR with a 1.1x VBV cap: generous below (easy content), tight above.
    t.ok(
      ratio > 0.5 && ratio < 1.25,
      `${r.name}: ${Math.round(r.averageBandwidth / 1000)}k vs ${target / 1000}k`,
    )
    t.ok(r.bandwidth >= r.averageBandwidth, `${r.name}: peak >= average`)
    const p = await probe(join(vdir, r.name, 'index.m3u8'))
    const files = parseMediaPlaylist(await readFile(join(vdir, r.name, 'index.m3u8'), 'utf8')).segments
    t.equal(files.length, r.segments)
    t.ok(Math.abs(p.durationSec - 10) < 0.5, `${r.name} lasts the source's 10 s (${p.durationSec})`)
  }
})

t.test('BANDWIDTH is the peak of RFC 8216: a short last segment does not count alone', async (t) => {
  // 8.2 s in 4 s segments: the last lasts 0.2 s and starts with a keyframe.
  const root = await ingestedStore(t, { titles: [{ id: 'tail', seconds: 8.2, width: 640, height: 360 }] })
  const dir = join(root, 'titles', 'tail')
  const tail = (JSON.parse(await readFile(join(dir, 'title.json'), 'utf8')) as TitleEntry).versions[0]!
  const m = parseMasterPlaylist(await readFile(join(dir, tail.id, 'master.m3u8'), 'utf8'))
  for (const r of tail.renditions) {
    const rdir = join(dir, tail.id, r.name)
    const media = parseMediaPlaylist(await readFile(join(rdir, 'index.m3u8'), 'utf8'))
    const bits = await Promise.all(media.segments.map(async (s) => (await stat(join(rdir, s.uri))).size * 8))
    const last = media.segments.at(-1)!.duration
    t.ok(last < media.targetDuration / 2, `${r.name}: the last segment (${last} s) is no run of its own`)
    // §4.1: the highest bit rate of consecutive segments lasting 0.5 to 1.5 target durations.
    let peak = 0
    for (let i = 0; i < bits.length; i++)
      for (let j = i, b = 0, d = 0; j < bits.length; j++) {
        b += bits[j]!
        d += media.segments[j]!.duration
        if (d >= media.targetDuration / 2 && d <= media.targetDuration * 1.5) peak = Math.max(peak, b / d)
      }
    const v = m.variants.find((x) => x.uri === `${tail.id}/${r.name}/index.m3u8`)!
    t.equal(v.bandwidth, Math.round(peak), `${r.name}: BANDWIDTH ${v.bandwidth}, peak ${Math.round(peak)}`)
  }
})

t.test('keyframes are aligned: identical segment boundaries in every rendition', async (t) => {
  const boundaries: number[][] = []
  for (const r of version.renditions) {
    const media = parseMediaPlaylist(await readFile(join(vdir, r.name, 'index.m3u8'), 'utf8'))
    let at = 0
    boundaries.push(
      media.segments.map((s) => {
        const start = at
        at += s.duration
        return Math.round(start * 1000) / 1000
      }),
    )
    const keys = await keyframeTimes(join(vdir, r.name, 'index.m3u8'))
    const first = keys[0]!
    // Every segment starts on a keyframe (times relative to the first frame).
    for (const b of boundaries.at(-1)!) {
      t.ok(
        keys.some((k) => Math.abs(k - first - b) < 0.02),
        `${r.name}: keyframe at segment boundary ${b}s`,
      )
    }
    t.equal(keys.length, media.segments.length, `${r.name}: one keyframe per segment, no scene cuts`)
  }
  for (const b of boundaries.slice(1)) t.same(b, boundaries[0], 'same boundaries as the top rendition')
  t.same(boundaries[0], [0, 4, 8], '4 s segments')
})

t.test('master playlist: written by us from the real segments', async (t) => {
  const m = parseMasterPlaylist(await readFile(join(vdir, 'master.m3u8'), 'utf8'))
  t.ok(m.independentSegments)
  t.equal(m.variants.length, 3)
  for (const v of m.variants) {
    const r = version.renditions.find((x) => v.uri === `${version.id}/${x.name}/index.m3u8`)!
    t.ok(r, `variant ${v.uri} is a rendition`)
    t.equal(v.bandwidth, r.bandwidth)
    t.equal(v.averageBandwidth, r.averageBandwidth)
    t.match(v.codecs, /^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/)
    t.same(v.resolution, { width: r.width, height: r.height })
    t.equal(v.frameRate, 30)
  }
  const bws = m.variants.map((v) => v.bandwidth)
  t.same(
    bws,
    [...bws].sort((a, b) => b - a),
    'highest first',
  )
  const media = parseMediaPlaylist(await readFile(join(vdir, '480p', 'index.m3u8'), 'utf8'))
  t.equal(media.playlistType, 'VOD')
  t.ok(media.endList)
  t.equal(media.targetDuration, 4)
  t.equal(media.mapUri, 'init.mp4')
})
