import t from 'tap'
import { avc1FromInit, avc1FromProfile, mp4aFromProfile } from '../../../src/hls/codecs.js'
import { chooseLadder, scaledWidth, unknownRungs } from '../../../src/hls/ladder.js'
import {
  measureBandwidth,
  parseMasterPlaylist,
  parseMediaPlaylist,
  startupVariant,
  targetDurationOf,
  writeMasterPlaylist,
  writeMediaPlaylist,
} from '../../../src/hls/playlist.js'

t.test('the ladder never upscales and keeps the aspect ratio', async (t) => {
  t.same(
    chooseLadder(1080).map((r) => r.name),
    ['1080p', '720p', '480p', '360p', '240p'],
  )
  t.same(
    chooseLadder(720).map((r) => r.name),
    ['720p', '480p', '360p', '240p'],
  )
  t.same(
    chooseLadder(500, ['720p', '240p']).map((r) => r.name),
    ['240p'],
  )
  t.same(
    chooseLadder(180).map((r) => r.name),
    ['180p'],
    'tiny source: one rendition at its own height',
  )
  t.equal(scaledWidth(1920, 1080, 480), 854)
  t.equal(scaledWidth(854, 480, 360), 640)
  t.equal(scaledWidth(1920, 1080, 240), 426)
  t.same(unknownRungs(['720p', '4k']), ['4k'])
})

t.test('codec strings', async (t) => {
  t.equal(avc1FromProfile('High', 31), 'avc1.64001f')
  t.equal(avc1FromProfile('Constrained Baseline', 30), 'avc1.42c01e')
  t.equal(avc1FromProfile('Main', 40), 'avc1.4d0028')
  const init = Buffer.concat([Buffer.from('....avcC'), Buffer.from([1, 0x64, 0x00, 0x1f, 0xff])])
  t.equal(avc1FromInit(init), 'avc1.64001f')
  t.equal(avc1FromInit(Buffer.from('no box here')), undefined)
  t.equal(mp4aFromProfile('LC'), 'mp4a.40.2')
  t.equal(mp4aFromProfile('HE-AAC'), 'mp4a.40.5')
})

t.test('media playlists round-trip through m3u8-parser', async (t) => {
  const segments = [
    { uri: 'seg-00001.m4s', duration: 4 },
    { uri: 'seg-00002.m4s', duration: 4.5 },
    { uri: 'seg-00003.m4s', duration: 1.2 },
  ]
  const text = writeMediaPlaylist({ segments, mapUri: 'init.mp4', mediaSequence: 1 })
  const p = parseMediaPlaylist(text)
  t.same(
    p.segments,
    segments.map((s) => ({ ...s, map: { uri: 'init.mp4' } })),
  )
  t.equal(p.mapUri, 'init.mp4')
  t.equal(p.playlistType, 'VOD')
  t.ok(p.endList)
  t.equal(p.targetDuration, 5, 'rounded maximum (4.5 → 5)')
  t.equal(targetDurationOf([{ uri: 'a', duration: 4.4 }]), 4)
  t.throws(() => parseMediaPlaylist('not a playlist'), { code: 'CDN_ERR_PLAYLIST' })
})

t.test('master playlists carry every attribute and sort by bandwidth', async (t) => {
  const text = writeMasterPlaylist([
    {
      uri: 'v1/240p/index.m3u8',
      bandwidth: 250_000,
      averageBandwidth: 210_000,
      codecs: 'avc1.640015,mp4a.40.2',
      width: 426,
      height: 240,
      frameRate: 30,
    },
    {
      uri: 'v1/480p/index.m3u8',
      bandwidth: 1_300_000,
      averageBandwidth: 1_200_000,
      codecs: 'avc1.64001f,mp4a.40.2',
      width: 854,
      height: 480,
      frameRate: 29.97,
    },
  ])
  t.match(text, /#EXT-X-INDEPENDENT-SEGMENTS/)
  const m = parseMasterPlaylist(text)
  t.equal(m.variants[0]!.uri, 'v1/480p/index.m3u8')
  t.equal(m.variants[0]!.averageBandwidth, 1_200_000)
  t.equal(m.variants[0]!.frameRate, 29.97)
  t.same(m.variants[1]!.resolution, { width: 426, height: 240 })
  t.throws(() => parseMasterPlaylist('#EXTM3U\n'), { code: 'CDN_ERR_PLAYLIST' })
})

t.test('the startup variant is listed first, the others highest first', async (t) => {
  const rung = (name: string, height: number, bandwidth: number) => ({
    uri: `v1/${name}/index.m3u8`,
    bandwidth,
    averageBandwidth: Math.round(bandwidth * 0.9),
    codecs: 'avc1.64001f,mp4a.40.2',
    width: Math.round((height * 16) / 9),
    height,
    frameRate: 30,
  })
  const ladder = [
    rung('240p', 240, 260_000),
    rung('720p', 720, 3_400_000),
    rung('360p', 360, 480_000),
    rung('480p', 480, 1_300_000),
  ]
  const order = (opts?: { startupBitrate: number }) =>
    parseMasterPlaylist(writeMasterPlaylist(ladder, opts)).variants.map((v) => v.uri.split('/')[1])
  t.same(order(), ['480p', '720p', '360p', '240p'], 'default: the highest at most 2 Mbit/s, mid-ladder')
  t.same(order({ startupBitrate: 500_000 }), ['360p', '720p', '480p', '240p'])
  t.same(order({ startupBitrate: Infinity }), ['720p', '480p', '360p', '240p'], 'Infinity: highest first')
  t.same(order({ startupBitrate: 0 }), ['240p', '720p', '480p', '360p'], 'below every rung: the lowest')
  t.equal(startupVariant([], 1e6), undefined)
  const m = parseMasterPlaylist(writeMasterPlaylist(ladder))
  for (const v of m.variants) {
    t.ok(v.bandwidth > 0 && v.averageBandwidth! > 0 && v.codecs && v.resolution && v.frameRate, v.uri)
  }
})

t.test('bandwidth: peak segment bitrate and mean', async (t) => {
  const bw = measureBandwidth([
    { bytes: 500_000, duration: 4 },
    { bytes: 1_000_000, duration: 4 },
  ])
  t.equal(bw.peak, 2_000_000)
  t.equal(bw.average, 1_500_000)
})

t.test('bandwidth: the peak is over runs of 0.5 to 1.5 target durations (RFC 8216 §4.1)', async (t) => {
  // A 0.2 s last segment holding a keyframe: 9 kB in 0.2 s is 360 kb/s on its own, but it is no
  // run of its own (target 4 s: runs last 2 to 6 s); with the segment before it, 4.2 s.
  const tail = measureBandwidth([
    { bytes: 100_000, duration: 4 },
    { bytes: 105_000, duration: 4 },
    { bytes: 9_000, duration: 0.2 },
  ])
  t.equal(tail.peak, ((105_000 + 9_000) * 8) / 4.2)
  // Short segments (target 4: runs of 2 s and more) are taken together, never one by one.
  const short = measureBandwidth([
    { bytes: 10_000, duration: 1 },
    { bytes: 40_000, duration: 1 },
    { bytes: 10_000, duration: 1 },
    { bytes: 200_000, duration: 4 },
  ])
  t.equal(short.peak, 400_000, 'the 4 s segment')
  const burst = measureBandwidth([
    { bytes: 10_000, duration: 1 },
    { bytes: 240_000, duration: 1 },
    { bytes: 10_000, duration: 1 },
    { bytes: 200_000, duration: 4 },
  ])
  t.equal(burst.peak, ((10_000 + 240_000) * 8) / 2, 'two 1 s segments, the busy one in them')
  // A title shorter than half its target duration has no run: the mean.
  t.same(measureBandwidth([{ bytes: 1_000, duration: 0.4 }]), { peak: 20_000, average: 20_000 })
})

t.test('media playlists: byte ranges and EXT-X-MAP per segment, offsets filled in', async (t) => {
  const p = parseMediaPlaylist(
    [
      '#EXTM3U',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-MAP:URI="main.mp4",BYTERANGE="800@0"',
      '#EXTINF:4.0,',
      '#EXT-X-BYTERANGE:1000@800',
      'main.mp4',
      '#EXTINF:4.0,',
      '#EXT-X-BYTERANGE:1200',
      'main.mp4',
      '#EXT-X-ENDLIST',
      '',
    ].join('\n'),
  )
  t.same(p.segments[0], {
    uri: 'main.mp4',
    duration: 4,
    byteRange: { offset: 800, length: 1000 },
    map: { uri: 'main.mp4', byteRange: { offset: 0, length: 800 } },
  })
  t.same(p.segments[1]!.byteRange, { offset: 1800, length: 1200 }, 'offset follows the previous range')
  t.equal(p.mapUri, 'main.mp4')
})

t.test('playlists refuse what RFC 8216 requires, naming the playlist', async (t) => {
  const cases: Array<[() => unknown, RegExp]> = [
    [
      () => parseMediaPlaylist('#EXTM3U\n#EXTINF:,\ns.m4s\n', 'p.m3u8'),
      /^p\.m3u8: segment "s\.m4s" has no valid #EXTINF duration/,
    ],
    [
      () => parseMediaPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n', 'p.m3u8'),
      /^p\.m3u8: is a master playlist/,
    ],
    [
      () => parseMasterPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=2x2\na.m3u8\n', 'm.m3u8'),
      /^m\.m3u8: variant "a\.m3u8" has no BANDWIDTH/,
    ],
    [() => parseMasterPlaylist('#EXTM3U\n#EXTINF:4,\ns.m4s\n', 'm.m3u8'), /^m\.m3u8: is a media playlist/],
  ]
  for (const [fn, re] of cases) t.throws(fn, { code: 'CDN_ERR_PLAYLIST', message: re }, String(re))
})

t.test('master playlists list EXT-X-MEDIA renditions that have their own playlist', async (t) => {
  const m = parseMasterPlaylist(
    [
      '#EXTM3U',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio-en/index.m3u8"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="muxed",DEFAULT=NO',
      '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="sub",NAME="fr",URI="subs-fr/index.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO="aud",SUBTITLES="sub"',
      '720p/index.m3u8',
      '',
    ].join('\n'),
  )
  t.same(m.renditions, [
    { type: 'AUDIO', groupId: 'aud', name: 'en', uri: 'audio-en/index.m3u8' },
    { type: 'SUBTITLES', groupId: 'sub', name: 'fr', uri: 'subs-fr/index.m3u8' },
  ])
})
