/**
 * Sources are published as a player shows them: a phone's portrait clip (landscape pixels and a
 * quarter turn in its display matrix) and an anamorphic one (non-square pixels) come out with
 * square pixels at the displayed aspect, and the master's RESOLUTION says so.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import t from 'tap'
import { anamorphicSource, fixtureFfmpeg, rotatedSource } from '../../fixtures/media.js'
import { ingest } from '../../origin/transcode/ingest.js'
import { ladderArgs } from '../../origin/transcode/ladder-args.js'
import { chooseLadder, renditionSize, sourceLines } from '../../src/hls/ladder.js'
import { parseMasterPlaylist } from '../../src/hls/playlist.js'
import { probe } from '../helpers/media.js'
import { tempDir } from '../helpers/origin.js'

async function published(t: Test, source: string, title: string) {
  const root = join(await tempDir(t), 'store')
  const { version } = await ingest(source, { title, store: root, ffmpeg: fixtureFfmpeg() })
  const dir = join(root, 'titles', title, version.id)
  const master = parseMasterPlaylist(await readFile(join(dir, 'master.m3u8'), 'utf8'))
  const streams = await Promise.all(
    version.renditions.map(async (r) => {
      const p = await probe(join(dir, r.name, 'index.m3u8'))
      return p.streams.find((s) => s.type === 'video')!
    }),
  )
  return { version, master, streams }
}

t.test('sizes: the rung is the displayed short side, the long side keeps the aspect', async (t) => {
  t.same(renditionSize(854, 480, 360), { width: 640, height: 360 }, 'landscape')
  t.same(renditionSize(360, 640, 360), { width: 360, height: 640 }, 'portrait: the rung is its width')
  t.same(renditionSize((720 * 32) / 27, 480, 480), { width: 854, height: 480 }, 'anamorphic 16:9')
  t.equal(sourceLines(360, 640), 360)
  t.equal(sourceLines((720 * 32) / 27, 480), 480)
  const plan = { sourceWidth: 240, sourceHeight: 426, fps: 30, hasAudio: false, segmentSeconds: 2 }
  const args = ladderArgs({ ...plan, rungs: chooseLadder(240), format: 'fmp4' }, '/staging')
  t.match(args.complexFilter, /scale=240:426,setsar=1/, 'scaled to the portrait size, square pixels')
})

t.test('a portrait phone clip is published portrait, not squashed into landscape', async (t) => {
  const source = await rotatedSource({ seconds: 2, width: 426, height: 240 }, 90)
  const src = (await probe(source)).streams.find((s) => s.type === 'video')!
  t.equal(Math.abs(src.rotation ?? 0), 90, 'the source is coded landscape and turned for display')
  t.same([src.width, src.height], [426, 240])
  const { version, master, streams } = await published(t, source, 'phone')
  t.same(
    version.renditions.map((r) => [r.name, r.width, r.height]),
    [['240p', 240, 426]],
  )
  t.same(master.variants[0]?.resolution, { width: 240, height: 426 }, 'RESOLUTION is portrait')
  t.same([streams[0]?.width, streams[0]?.height], [240, 426])
  t.equal(streams[0]?.sampleAspectRatio, undefined, 'square pixels')
  t.equal(streams[0]?.rotation, undefined, 'no turn left for a player to apply again')
})

t.test('an anamorphic source is published with square pixels at its displayed aspect', async (t) => {
  // 360x240 pixels 32:27 as wide as tall: a 16:9 picture (426.7x240 displayed).
  const source = await anamorphicSource({ seconds: 2, width: 360, height: 240 }, '32/27')
  const src = (await probe(source)).streams.find((s) => s.type === 'video')!
  t.equal(src.sampleAspectRatio, 32 / 27, 'the source has non-square pixels')
  const { version, master, streams } = await published(t, source, 'dvd')
  t.same(
    version.renditions.map((r) => [r.name, r.width, r.height]),
    [['240p', 426, 240]],
  )
  t.same(master.variants[0]?.resolution, { width: 426, height: 240 }, 'RESOLUTION is 16:9')
  t.same([streams[0]?.width, streams[0]?.height], [426, 240])
  t.equal(streams[0]?.sampleAspectRatio, undefined, 'square pixels')
})
