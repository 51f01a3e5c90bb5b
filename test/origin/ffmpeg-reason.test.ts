import t from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { ffmpegReason } from '../../origin/transcode/ffmpeg.js'
import { corruptSource, sampleSource } from '../helpers/media.js'
import { tempDir } from '../helpers/origin.js'

t.test(
  'ffmpeg messages shown in job views keep file names, never their directories nor memory addresses',
  async (t) => {
    const cases: [string, string][] = [
      [
        '/srv/ingest/show/src.mp4: Invalid data found when processing input',
        'src.mp4: Invalid data found when processing input',
      ],
      [
        "Error opening output file '/data/origin/.staging/a/720p/index.m3u8'.",
        "Error opening output file 'index.m3u8'.",
      ],
      ['C:\\media\\in\\src.mp4: No such file or directory', 'src.mp4: No such file or directory'],
      ['Stream #0:0: Video: h264, time_base 1/25, 1/2/3', 'Stream #0:0: Video: h264, time_base 1/25, 1/2/3'],
      [
        '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x561ffae70180] moov atom not found',
        '[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found',
      ],
    ]
    for (const [stderr, want] of cases) t.equal(ffmpegReason(stderr), want, want)
  },
)

t.test('the decode check tells a sound source from a corrupt one, and stops when cancelled', async (t) => {
  const ff = fixtureFfmpeg()
  t.equal(await ff.decodeFailure(await sampleSource({ seconds: 6, width: 426, height: 240 })), undefined)
  const corrupt = await corruptSource(await tempDir(t))
  t.match(await ff.decodeFailure(corrupt), /corrupt\.mp4: Invalid data found when processing input/)
  const cancelled = new AbortController()
  cancelled.abort()
  await t.rejects(ff.decodeFailure(corrupt, { signal: cancelled.signal }), { code: 'CDN_ERR_CANCELLED' })
})
