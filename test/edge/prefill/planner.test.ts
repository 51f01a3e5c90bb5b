import t from 'tap'
import { decide } from '../../../edge/prefill/fit.js'
import { keepRendition, type PlannedObject, type TitlePlan } from '../../../edge/prefill/planner.js'
import { DEFAULT_VIEWING, renditionShares, startupShares, survival } from '../../../edge/prefill/viewing.js'
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
    { path: '/vod/a/v1/720p/seg-00003.m4s', kind: 'segment', rangeBytes: undefined, startSec: 8 },
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

t.test('the viewing model: prefix survival and rendition shares', async (t) => {
  const m = DEFAULT_VIEWING
  t.equal(survival(m, 0, 3600), 1, 'every session reaches the start')
  t.ok(
    Math.abs(survival(m, 300, 3600) - (0.5 * Math.exp(-1) + 0.5)) < 1e-12,
    'early stoppers decay, the rest all watch 20%',
  )
  t.ok(Math.abs(survival(m, 1800, 3600) - (0.5 * Math.exp(-6) + (0.5 * 0.5) / 0.8)) < 1e-12, 'half way')
  t.ok(survival(m, 3600, 3600) < 1e-2, 'almost nobody reaches the end')
  t.ok(survival(m, 600, 3600) > survival(m, 1200, 3600), 'decreasing')
  const shares = renditionShares({ ...m, renditionShares: { '720p': 0.6 } }, ['1080p', '720p', '360p'])
  t.same(
    [...shares],
    [
      ['720p', 0.6],
      ['1080p', 0.2],
      ['360p', 0.2],
    ],
  )
  t.same(
    [...renditionShares(m, ['a', 'b'])],
    [
      ['a', 0.5],
      ['b', 0.5],
    ],
    'none named: even',
  )
})

/** A title of two renditions of `segments` 4 s segments each: 720p of 100 B, 360p of 40 B. */
function laddered(title: string, rank: number, segments: number, weight?: number): TitlePlan {
  const objects: PlannedObject[] = []
  for (const [name, bytes] of [
    ['720p', 100],
    ['360p', 40],
  ] as const) {
    objects.push({
      path: `/vod/${title}/v1/${name}/index.m3u8`,
      bytes: 10,
      kind: 'playlist',
      rendition: name,
    })
    for (let i = 0; i < segments; i++)
      objects.push({
        path: `/vod/${title}/v1/${name}/seg-${i}.m4s`,
        bytes,
        kind: 'segment',
        rendition: name,
        startSec: i * 4,
        ...(i === 0 && name === '720p' ? { held: true } : {}),
      })
  }
  return {
    title,
    rank,
    ...(weight === undefined ? {} : { weight }),
    renditions: [
      {
        name: '720p',
        height: 720,
        objects: segments + 1,
        bytes: 10 + 100 * segments,
        durationSec: 4 * segments,
      },
      {
        name: '360p',
        height: 360,
        objects: segments + 1,
        bytes: 10 + 40 * segments,
        durationSec: 4 * segments,
      },
    ],
    objects,
    bytesTotal: objects.reduce((s, o) => s + o.bytes, 0),
    bytesHeld: 100,
    estimatedObjects: 0,
  }
}

t.test('decide with a viewing model fits objects by expected requests, not whole titles', async (t) => {
  const viewing = {
    earlyStop: 0.5,
    earlyMeanSec: 8,
    minShare: 0.2,
    renditionShares: { '720p': 0.8, '360p': 0.2 },
  }
  const input = {
    titles: [laddered('a', 0, 10, 3), laddered('b', 1, 10, 1), laddered('c', 2, 10, 0)],
    capacityBytes: 700,
    protectedTitles: [],
    maxBytesPerSecond: undefined,
    window: undefined,
    nowMs: NOON,
  }
  const whole = decide(input)
  t.same(
    whole.titles.map((x) => x.decision),
    ['left-out', 'left-out', 'left-out'],
    'without the model, no whole title fits',
  )
  const p = decide({ ...input, viewing })
  t.same(
    p.titles.map((x) => x.decision),
    ['fill', 'fill', 'left-out'],
    'with it, the heads of the popular titles; a title of weight 0 is worth nothing',
  )
  t.match(p.titles[2]!.reason, /no object ranks within the protected share/)
  const a = p.titles[0]!.plan
  const paths = a.objects.map((o) => o.path)
  t.ok(
    paths.includes('/vod/a/v1/720p/index.m3u8') && paths.includes('/vod/a/v1/720p/seg-0.m4s'),
    'playlist and first segment',
  )
  t.notOk(paths.includes('/vod/a/v1/720p/seg-9.m4s'), 'not the tail')
  // Objects keep playlist order, and the title's totals are those of the objects kept.
  t.same(
    paths,
    [...paths].sort(
      (x, y) => a.objects.findIndex((o) => o.path === x) - a.objects.findIndex((o) => o.path === y),
    ),
  )
  t.equal(
    a.bytesTotal,
    a.objects.reduce((s, o) => s + o.bytes, 0),
  )
  t.equal(a.bytesHeld, 100, 'the held first segment')
  t.ok(p.bytesTotal <= 700, 'within the share')
  t.ok(p.bytesTotal > 600, 'the share used')
  // For the byte hit ratio an object is worth its expected requests: a's first 720p segment
  // (3 × 0.8) ranks above b's (1 × 0.8), and above a's 360p one (3 × 0.2).
  const b = p.titles[1]!.plan
  t.ok(b.objects.length < a.objects.length, 'fewer of the less popular title')
  const first360 = '/vod/a/v1/360p/seg-0.m4s'
  const a720 = a.objects.filter((o) => o.rendition === '720p' && o.kind === 'segment').length
  t.ok(a720 >= 5, `most of a's 720p head (${a720})`)
  // a's 360p head (3 × 0.2 = 0.6) outranks its 720p tail (3 × 0.8 × 0.19 = 0.45 from 28 s on).
  t.ok(paths.includes(first360), "a's 360p head")
  t.notOk(paths.includes('/vod/a/v1/720p/seg-7.m4s'), "before a's 720p tail")
  // Without weights the rank gives one (1/(rank+1)).
  const ranked = decide({ ...input, titles: [laddered('a', 0, 10), laddered('b', 1, 10)], viewing })
  t.ok(ranked.titles[0]!.plan.objects.length > ranked.titles[1]!.plan.objects.length)
})

t.test(
  'a weight counts requests: a session of a short title makes fewer, so its objects are worth more',
  async (t) => {
    // Every session plays 720p to the end: one session of `long` makes 21 requests, of `short` 6.
    const viewing = { earlyStop: 0, earlyMeanSec: 8, minShare: 1, renditionShares: { '720p': 1, '360p': 0 } }
    const input = {
      titles: [laddered('long', 0, 20, 100), laddered('short', 1, 5, 100)],
      capacityBytes: 510,
      protectedTitles: [],
      maxBytesPerSecond: undefined,
      window: undefined,
      nowMs: NOON,
    }
    const segments = (p: ReturnType<typeof decide>, i: number) =>
      p.titles[i]!.decision === 'fill'
        ? p.titles[i]!.plan.objects.filter((o) => o.kind === 'segment').length
        : 0
    // 100 requests: 100/6 sessions of short, 100/21 of long; short's objects first.
    const byRequests = decide({ ...input, viewing })
    t.same(
      byRequests.titles.map((x) => x.decision),
      ['left-out', 'fill'],
    )
    t.equal(segments(byRequests, 1), 5, 'all of short')
    t.equal(byRequests.bytesTotal, 510)
    // 100 sessions each: the same worth per object; the higher rank's segments first.
    const bySessions = decide({ ...input, viewing: { ...viewing, weights: 'sessions' as const } })
    t.equal(segments(bySessions, 0), 4, 'long, after both playlists')
    t.equal(segments(bySessions, 1), 0, "none of short's segments")
  },
)

t.test('startup shares: the first segments are valued at the rung sessions start on', async (t) => {
  // Every session plays all of the title; 720p is the steady rung, but the first two segments
  // are played at 360p (the startup rung) by every session.
  const viewing = {
    earlyStop: 0,
    earlyMeanSec: 8,
    minShare: 1,
    renditionShares: { '720p': 1, '360p': 0 },
    weights: 'sessions' as const,
  }
  const shares = startupShares({ ...viewing, startupShares: [{ '360p': 1 }, { '360p': 0.6 }] }, [
    '720p',
    '360p',
  ])
  t.same(
    shares.map((s) => [...s]),
    [
      [
        ['360p', 1],
        ['720p', 0],
      ],
      [
        ['360p', 0.6],
        ['720p', 0.4],
      ],
    ],
    'per position, the rest spread evenly over the renditions not named',
  )
  t.same(startupShares(viewing, ['720p']), [], 'none given: none')
  const input = {
    titles: [laddered('a', 0, 6, 1)],
    capacityBytes: 10 + 10 + 40 + 40 + 100 * 4,
    protectedTitles: [],
    maxBytesPerSecond: undefined,
    window: undefined,
    nowMs: NOON,
  }
  const paths = (p: ReturnType<typeof decide>) => p.titles[0]!.plan.objects.map((o) => o.path)
  const steady = paths(decide({ ...input, viewing }))
  t.notOk(steady.includes('/vod/a/v1/360p/seg-0.m4s'), 'without startup shares: no 360p segment')
  t.ok(steady.includes('/vod/a/v1/720p/seg-0.m4s'), 'but the 720p head')
  const started = paths(
    decide({ ...input, viewing: { ...viewing, startupShares: [{ '360p': 1 }, { '360p': 1 }] } }),
  )
  t.same(
    started,
    [
      '/vod/a/v1/720p/index.m3u8',
      '/vod/a/v1/720p/seg-2.m4s',
      '/vod/a/v1/720p/seg-3.m4s',
      '/vod/a/v1/720p/seg-4.m4s',
      '/vod/a/v1/720p/seg-5.m4s',
      '/vod/a/v1/360p/index.m3u8',
      '/vod/a/v1/360p/seg-0.m4s',
      '/vod/a/v1/360p/seg-1.m4s',
    ],
    "with them: 360p's first two segments and playlist, 720p's from the third on; its first two are never played",
  )
})
