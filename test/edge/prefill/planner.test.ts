import t from 'tap'
import { decide } from '../../../edge/prefill/fit.js'
import { keepRendition, type TitlePlan } from '../../../edge/prefill/planner.js'
import { readMaster, readMedia, resolveUri } from '../../../edge/prefill/playlists.js'
import { parseWindow } from '../../../edge/prefill/window.js'

const MASTER = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="v1/audio-en/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2",AUDIO="aud"
v1/1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"
v1/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"
v1/360p/index.m3u8
`

t.test('readMaster lists variants and audio renditions as paths on this host', async (t) => {
  const v = readMaster(MASTER, '/vod/a/master.m3u8')
  t.same(
    v.map((x) => [x.name, x.path, x.height, x.kind]),
    [
      ['1080p', '/vod/a/v1/1080p/index.m3u8', 1080, 'video'],
      ['720p', '/vod/a/v1/720p/index.m3u8', 720, 'video'],
      ['360p', '/vod/a/v1/360p/index.m3u8', 360, 'video'],
      ['audio:en', '/vod/a/v1/audio-en/index.m3u8', undefined, 'audio'],
    ],
  )
})

t.test('the renditions filter keeps "up to 720p", named ones, and always audio', async (t) => {
  const v = readMaster(MASTER, '/vod/a/master.m3u8')
  const names = (f: Parameters<typeof keepRendition>[1]) =>
    v.filter((x) => keepRendition(x, f)).map((x) => x.name)
  t.same(names({ maxHeight: 720 }), ['720p', '360p', 'audio:en'])
  t.same(names({ names: ['1080p'] }), ['1080p', 'audio:en'])
  t.same(names(undefined), ['1080p', '720p', '360p', 'audio:en'])
  t.same(names({ maxHeight: 100 }), ['audio:en'])
})

t.test('readMaster refuses what cannot be filled', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['not a playlist', /no #EXTM3U/],
    ['#EXTM3U\n#EXT-X-VERSION:7\n', /no #EXT-X-STREAM-INF/],
    ['#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://evil.example/x.m3u8\n', /another host/],
    ['#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\ngarbage\n', /no BANDWIDTH/],
    ['#EXTM3U\n#EXTINF:4,\nseg.m4s\n#EXT-X-ENDLIST\n', /is a media playlist/],
  ]
  for (const [text, re] of cases)
    t.throws(
      () => readMaster(text, '/vod/a/master.m3u8'),
      { code: 'CDN_ERR_PLAYLIST', message: re },
      String(re),
    )
})

t.test('readMedia lists init and media segments, with sizes from byte ranges', async (t) => {
  const text = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="main.mp4",BYTERANGE="800@0"
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000@800
main.mp4
#EXTINF:4.0,
#EXT-X-BYTERANGE:1200
main.mp4
#EXTINF:2.5,
seg-00003.m4s
#EXT-X-ENDLIST
`
  const l = readMedia(text, '/vod/a/v1/720p/index.m3u8')
  t.equal(l.durationSec, 10.5)
  t.same(l.objects, [
    { path: '/vod/a/v1/720p/main.mp4', kind: 'init', rangeBytes: 3000 },
    { path: '/vod/a/v1/720p/seg-00003.m4s', kind: 'segment', rangeBytes: undefined },
  ])
})

t.test('readMedia refuses unfinished or broken media playlists', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-ENDLIST\n', /no segments/],
    ['#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\ns1.m4s\n', /no #EXT-X-ENDLIST/],
    ['#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n', /is a master playlist/],
    ['#EXTM3U\n#EXTINF:4,\n../../../../etc/passwd\n#EXT-X-ENDLIST\n', /^(?!)/],
  ]
  for (const [text, re] of cases.slice(0, 3))
    t.throws(() => readMedia(text, '/vod/a/v1/720p/index.m3u8'), { code: 'CDN_ERR_PLAYLIST', message: re })
  // Dot segments resolve like a browser would; the path stays on this host and the edge's
  // own path checks decide whether it is servable.
  t.same(readMedia(cases[3]![0], '/vod/a/v1/720p/index.m3u8').objects[0]!.path, '/etc/passwd')
  t.equal(resolveUri('seg.m4s?x=1', '/vod/a/v1/720p/index.m3u8'), '/vod/a/v1/720p/seg.m4s?x=1')
  t.throws(() => resolveUri('//evil.example/seg.m4s', '/vod/a/master.m3u8'), { code: 'CDN_ERR_PLAYLIST' })
})

function plan(title: string, rank: number, bytesTotal: number, bytesHeld = 0, error?: string): TitlePlan {
  return {
    title,
    rank,
    renditions: [],
    objects: [{ path: `/vod/${title}/x`, bytes: bytesTotal, kind: 'segment' }],
    bytesTotal,
    bytesHeld,
    estimatedObjects: 0,
    ...(error ? { error: { code: 'CDN_ERR_UNKNOWN_TITLE', message: error } } : {}),
  }
}

const NOON = Date.UTC(2026, 2, 10, 12)

t.test(
  'decide fits titles into the protected share in rank order, with a reason for each left out',
  async (t) => {
    const p = decide({
      titles: [
        plan('c', 2, 300),
        plan('a', 0, 600),
        plan('b', 1, 500),
        plan('d', 3, 100),
        plan('e', 4, 5, 0, 'unknown title e'),
      ],
      capacityBytes: 1000,
      protectedTitles: [],
      maxBytesPerSecond: undefined,
      window: undefined,
      nowMs: NOON,
    })
    t.same(
      p.titles.map((x) => [x.plan.title, x.decision]),
      [
        ['a', 'fill'],
        ['b', 'left-out'],
        ['c', 'fill'],
        ['d', 'fill'],
        ['e', 'error'],
      ],
    )
    t.match(
      p.titles[1]!.reason,
      /needs 500 B; 400 B of the protected share \(1\.00 kB\) left after 1 higher-ranked title$/,
    )
    t.equal(p.titles[4]!.reason, 'unknown title e')
    t.equal(p.bytesTotal, 1000)
    t.equal(p.objectsTotal, 3)
    t.same(p.protectedShare, { capacityBytes: 1000, usedBytesBefore: 0, usedBytesAfter: 1000 })
  },
)

t.test('decide releases earlier prefills lowest rank first, only as far as needed', async (t) => {
  const p = decide({
    titles: [plan('new', 0, 500, 100)],
    capacityBytes: 1000,
    protectedTitles: [
      { title: 'top', rank: 0, bytes: 300 },
      { title: 'mid', rank: 5, bytes: 200 },
      { title: 'low', rank: 9, bytes: 200 },
      { title: 'new', rank: 3, bytes: 100 },
    ],
    maxBytesPerSecond: 100,
    window: undefined,
    nowMs: NOON,
  })
  t.same(
    p.unprotect.map((u) => u.title),
    ['low'],
  )
  t.equal(p.protectedShare.usedBytesAfter, 1000)
  t.equal(p.bytesToFetch, 400, 'held bytes are not fetched again')
  t.equal(p.timing.seconds, 4)
})

t.test('decide releases a protected title that the new ranking leaves out', async (t) => {
  const p = decide({
    titles: [plan('first', 0, 800), plan('second', 1, 500)],
    capacityBytes: 1000,
    protectedTitles: [
      { title: 'second', rank: 0, bytes: 500 },
      { title: 'other', rank: 2, bytes: 100 },
    ],
    maxBytesPerSecond: undefined,
    window: undefined,
    nowMs: NOON,
  })
  t.same(
    p.titles.map((x) => x.decision),
    ['fill', 'left-out'],
  )
  t.same(
    p.unprotect.map((u) => u.title),
    ['second'],
    'the left-out title is released; the others still fit',
  )
  t.equal(p.protectedShare.usedBytesAfter, 900)
})

t.test('decide: a title larger than the whole share, and the time at the cap vs the window', async (t) => {
  const w = parseWindow('02:00-06:00', 'UTC')
  const p = decide({
    titles: [plan('huge', 0, 5000), plan('ok', 1, 900)],
    capacityBytes: 1000,
    protectedTitles: [],
    maxBytesPerSecond: 0.05,
    window: w,
    nowMs: NOON,
  })
  t.match(p.titles[0]!.reason, /more than the whole protected share/)
  t.equal(p.timing.seconds, 18_000)
  t.match(p.timing.window, {
    spec: '02:00-06:00',
    lengthSec: 14_400,
    open: false,
    opensInSec: 14 * 3600,
    fits: false,
  })
  const fast = decide({
    titles: [plan('ok', 0, 900)],
    capacityBytes: 1000,
    protectedTitles: [],
    maxBytesPerSecond: 1,
    window: w,
    nowMs: NOON,
  })
  t.equal(fast.timing.window?.fits, true)
})
