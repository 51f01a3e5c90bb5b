import t from 'tap'
import { notModified } from '../../src/http/conditional.js'
import { parseVodPath, titleOfPath } from '../../src/http/paths.js'
import { parseRange } from '../../src/http/ranges.js'
import { signedPrefix, verifySignedPath } from '../../src/http/signing.js'

t.test('parseRange follows RFC 9110 for single ranges', async (t) => {
  t.same(parseRange(undefined, 100), { kind: 'none' })
  t.same(parseRange('bytes=0-9', 100), { kind: 'ok', start: 0, end: 9 })
  t.same(parseRange('bytes=90-', 100), { kind: 'ok', start: 90, end: 99 })
  t.same(parseRange('bytes=-10', 100), { kind: 'ok', start: 90, end: 99 })
  t.same(parseRange('bytes=50-1000', 100), { kind: 'ok', start: 50, end: 99 })
  t.same(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' })
  t.same(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' })
  t.same(parseRange('bytes=9-1', 100), { kind: 'none' }, 'invalid is ignored')
  t.same(parseRange('items=0-1', 100), { kind: 'none' })
  t.same(parseRange('bytes=0-1,5-6', 100), { kind: 'none' }, 'multi-range gets the whole body')
  t.same(parseRange('bytes=abc', 100), { kind: 'none' })
})

t.test('parseVodPath accepts only the contract shapes', async (t) => {
  t.same(parseVodPath('/vod/big-buck/master.m3u8'), { kind: 'master', title: 'big-buck' })
  t.same(parseVodPath('/vod/a/v1/720p/seg-00001.m4s'), {
    kind: 'media',
    title: 'a',
    version: 'v1',
    rendition: '720p',
    file: 'seg-00001.m4s',
  })
  for (const bad of [
    '/vod/../etc/passwd',
    '/vod/a/../../x',
    '/vod/A/master.m3u8',
    '/vod/a/v1/720p/../index.m3u8',
    '/vod/a/v1/720p/%2e%2e',
    '/vod/a/v1/720p/seg-1.m4s\0',
    '/vod/a/master.m3u8/x',
  ])
    t.equal(parseVodPath(bad), undefined, bad)
  t.equal(titleOfPath('/vod/abc/v1/720p/init.mp4'), 'abc')
})

t.test('conditional requests', async (t) => {
  t.ok(notModified({ 'if-none-match': '"a", "b"' }, '"b"', undefined))
  t.ok(notModified({ 'if-none-match': 'W/"b"' }, '"b"', undefined))
  t.notOk(notModified({ 'if-none-match': '"c"' }, '"b"', undefined))
  const lm = new Date(Date.UTC(2026, 0, 1)).toUTCString()
  t.ok(notModified({ 'if-modified-since': lm }, undefined, lm))
  t.notOk(notModified({ 'if-modified-since': new Date(0).toUTCString() }, undefined, lm))
})

t.test('signed paths', async (t) => {
  const p = `${signedPrefix('k', 'abc', 2000)}/vod/abc/master.m3u8`
  t.equal(verifySignedPath(p, 'k', 1000), '/vod/abc/master.m3u8')
  t.throws(() => verifySignedPath(p, 'k', 3000), { code: 'CDN_ERR_FORBIDDEN' }, 'expired')
  t.throws(() => verifySignedPath(p, 'other', 1000), { code: 'CDN_ERR_FORBIDDEN' }, 'forged')
  const other = `${signedPrefix('k', 'abc', 2000)}/vod/xyz/master.m3u8`
  t.throws(() => verifySignedPath(other, 'k', 1000), { code: 'CDN_ERR_FORBIDDEN' }, 'other title')
  t.throws(
    () => verifySignedPath('/vod/abc/master.m3u8', 'k', 1000),
    { code: 'CDN_ERR_FORBIDDEN' },
    'missing',
  )
  t.equal(verifySignedPath('/vod/abc/master.m3u8', undefined, 0), '/vod/abc/master.m3u8')
})
