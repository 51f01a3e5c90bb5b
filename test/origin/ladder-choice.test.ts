/**
 * Which rungs a source gets: the requested ones that fit, a refusal when none does, and one
 * rendition at the source's own size (with bits for its pixels) only when nothing was asked.
 */
import t from 'tap'
import { chooseLadder, DEFAULT_LADDER, MIN_VIDEO_BITRATE } from '../../src/hls/ladder.js'

const names = (lines: number, asked?: string[]) => chooseLadder(lines, asked).map((r) => r.name)

t.test('requested rungs: those that fit, highest first; none fitting is refused', async (t) => {
  t.same(names(360, ['240p', '1080p', '360p']), ['360p', '240p'], 'the rungs above the source are dropped')
  t.throws(() => chooseLadder(360, ['1080p']), {
    code: 'CDN_ERR_BAD_REQUEST',
    message: /no requested rung \(1080p\) fits a 360-line source.*ask for 360p, 240p/,
  })
  t.throws(() => chooseLadder(180, ['240p']), {
    code: 'CDN_ERR_BAD_REQUEST',
    message: /no requested rung \(240p\) fits a 180-line source.*no ladder/,
  })
})

t.test('nothing requested: a source below every rung gets one rendition of its own', async (t) => {
  const lowest = DEFAULT_LADDER.at(-1)!
  t.same(names(360, []), ['360p', '240p'], 'an empty list asks for nothing')
  const [own] = chooseLadder(181)
  t.match(own, { name: '180p', height: 180, audioBitrate: lowest.audioBitrate })
  // 180 lines carry (180/240)² of the 240p rung's pixels, and get that share of its bits.
  t.equal(own?.videoBitrate, 82_000)
  t.ok(own!.videoBitrate < lowest.videoBitrate, 'fewer bits than the larger rung')
  t.equal(chooseLadder(20)[0]?.videoBitrate, MIN_VIDEO_BITRATE, 'a floor for the tiniest')
})
