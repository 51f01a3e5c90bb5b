import t from 'tap'
import { withoutHopByHop } from '../../src/http/hop-by-hop.js'
import { parseVodPath, titleOfPath } from '../../src/http/paths.js'
import { parseRange } from '../../src/http/ranges.js'
import {
  bodyBytesOf,
  type ConditionalHeaders,
  contentRangeOf,
  type Decision,
  decide,
  statusOf,
  type Validators,
} from '../../src/http/respond.js'
import { signedPrefix, verifySignedPath } from '../../src/http/signing.js'

t.test('parseRange follows RFC 9110 for single ranges', async (t) => {
  t.same(parseRange(undefined, 100), { kind: 'none' })
  t.same(parseRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 9 })
  t.same(parseRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 })
  t.same(parseRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 })
  t.same(parseRange('bytes=50-1000', 100), { kind: 'partial', start: 50, end: 99 })
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

const ETAG = '"v1"'
const LM = new Date(Date.UTC(2026, 0, 1)).toUTCString()
const BEFORE = new Date(Date.UTC(2025, 0, 1)).toUTCString()
const AFTER = new Date(Date.UTC(2027, 0, 1)).toUTCString()
const V = { etag: ETAG, lastModified: LM }

/** [what, request headers, representation status, length, validators, expected decision]. */
const CASES: [string, ConditionalHeaders, number, number | undefined, Validators, Decision][] = [
  ['plain', {}, 200, 100, V, { kind: 'full' }],
  ['not a 200: sent as it is', { range: 'bytes=0-9', 'if-none-match': ETAG }, 404, 100, V, { kind: 'full' }],
  // If-Match (strong comparison), then If-Unmodified-Since only without it.
  ['If-Match equal', { 'if-match': ETAG }, 200, 100, V, { kind: 'full' }],
  ['If-Match in a list', { 'if-match': '"x", "v1"' }, 200, 100, V, { kind: 'full' }],
  ['If-Match *', { 'if-match': '*' }, 200, 100, V, { kind: 'full' }],
  ['If-Match other', { 'if-match': '"x"' }, 200, 100, V, { kind: 'precondition-failed' }],
  ['If-Match weak never matches', { 'if-match': 'W/"v1"' }, 200, 100, V, { kind: 'precondition-failed' }],
  [
    'If-Match without an ETag',
    { 'if-match': ETAG },
    200,
    100,
    { etag: undefined, lastModified: LM },
    { kind: 'precondition-failed' },
  ],
  ['If-Unmodified-Since later', { 'if-unmodified-since': AFTER }, 200, 100, V, { kind: 'full' }],
  ['If-Unmodified-Since same', { 'if-unmodified-since': LM }, 200, 100, V, { kind: 'full' }],
  [
    'If-Unmodified-Since earlier',
    { 'if-unmodified-since': BEFORE },
    200,
    100,
    V,
    { kind: 'precondition-failed' },
  ],
  ['If-Unmodified-Since not a date', { 'if-unmodified-since': 'soon' }, 200, 100, V, { kind: 'full' }],
  [
    'If-Unmodified-Since without Last-Modified',
    { 'if-unmodified-since': BEFORE },
    200,
    100,
    { etag: ETAG, lastModified: undefined },
    { kind: 'full' },
  ],
  [
    'If-Match passes: If-Unmodified-Since ignored',
    { 'if-match': ETAG, 'if-unmodified-since': BEFORE },
    200,
    100,
    V,
    { kind: 'full' },
  ],
  [
    'If-Match fails before If-None-Match',
    { 'if-match': '"x"', 'if-none-match': ETAG },
    200,
    100,
    V,
    { kind: 'precondition-failed' },
  ],
  [
    'If-Unmodified-Since fails before a range',
    { 'if-unmodified-since': BEFORE, range: 'bytes=0-9' },
    200,
    100,
    V,
    { kind: 'precondition-failed' },
  ],
  // If-None-Match (weak comparison), then If-Modified-Since only without it.
  ['If-None-Match equal', { 'if-none-match': ETAG }, 200, 100, V, { kind: 'not-modified' }],
  ['If-None-Match weak', { 'if-none-match': 'W/"v1"' }, 200, 100, V, { kind: 'not-modified' }],
  ['If-None-Match in a list', { 'if-none-match': '"a", "v1"' }, 200, 100, V, { kind: 'not-modified' }],
  [
    'If-None-Match *',
    { 'if-none-match': '*' },
    200,
    100,
    { etag: undefined, lastModified: undefined },
    { kind: 'not-modified' },
  ],
  ['If-None-Match other', { 'if-none-match': '"a"' }, 200, 100, V, { kind: 'full' }],
  [
    'If-None-Match other: If-Modified-Since ignored',
    { 'if-none-match': '"a"', 'if-modified-since': AFTER },
    200,
    100,
    V,
    { kind: 'full' },
  ],
  ['If-Modified-Since same', { 'if-modified-since': LM }, 200, 100, V, { kind: 'not-modified' }],
  ['If-Modified-Since later', { 'if-modified-since': AFTER }, 200, 100, V, { kind: 'not-modified' }],
  ['If-Modified-Since earlier', { 'if-modified-since': BEFORE }, 200, 100, V, { kind: 'full' }],
  ['If-Modified-Since not a date', { 'if-modified-since': 'yesterday' }, 200, 100, V, { kind: 'full' }],
  [
    'If-None-Match before a range',
    { 'if-none-match': ETAG, range: 'bytes=0-9' },
    200,
    100,
    V,
    { kind: 'not-modified' },
  ],
  [
    'If-Match passes, then a range',
    { 'if-match': ETAG, range: 'bytes=0-9' },
    200,
    100,
    V,
    { kind: 'partial', start: 0, end: 9 },
  ],
  // Range, under If-Range.
  ['range', { range: 'bytes=10-19' }, 200, 100, V, { kind: 'partial', start: 10, end: 19 }],
  ['suffix range', { range: 'bytes=-10' }, 200, 100, V, { kind: 'partial', start: 90, end: 99 }],
  ['range past the end', { range: 'bytes=100-' }, 200, 100, V, { kind: 'unsatisfiable' }],
  ['range of an empty body', { range: 'bytes=0-' }, 200, 0, V, { kind: 'unsatisfiable' }],
  ['multi-range: the whole body', { range: 'bytes=0-1,5-6' }, 200, 100, V, { kind: 'full' }],
  ['malformed range ignored', { range: 'bytes=zz' }, 200, 100, V, { kind: 'full' }],
  ['length unknown: no range', { range: 'bytes=0-9' }, 200, undefined, V, { kind: 'full' }],
  [
    'If-Range ETag equal',
    { range: 'bytes=0-9', 'if-range': ETAG },
    200,
    100,
    V,
    { kind: 'partial', start: 0, end: 9 },
  ],
  ['If-Range ETag other', { range: 'bytes=0-9', 'if-range': '"x"' }, 200, 100, V, { kind: 'full' }],
  ['If-Range weak ETag', { range: 'bytes=0-9', 'if-range': 'W/"v1"' }, 200, 100, V, { kind: 'full' }],
  [
    'If-Range date equal',
    { range: 'bytes=0-9', 'if-range': LM },
    200,
    100,
    V,
    { kind: 'partial', start: 0, end: 9 },
  ],
  ['If-Range date other', { range: 'bytes=0-9', 'if-range': AFTER }, 200, 100, V, { kind: 'full' }],
  ['If-Range mismatch beats 416', { range: 'bytes=500-', 'if-range': '"x"' }, 200, 100, V, { kind: 'full' }],
  ['If-Range without Range', { 'if-range': '"x"' }, 200, 100, V, { kind: 'full' }],
]

t.test('one 200/206/304/412/416 decision, in RFC 9110 §13.2.2 order', async (t) => {
  for (const [what, headers, status, length, validators, want] of CASES) {
    const d = decide(headers, status, length, validators)
    t.same(d, want, what)
    const expected = {
      full: status,
      partial: 206,
      'not-modified': 304,
      'precondition-failed': 412,
      unsatisfiable: 416,
    }
    t.equal(statusOf(d, status), expected[want.kind], `${what}: status`)
  }
})

t.test('what an answer adds: Content-Range and body bytes', async (t) => {
  const partial = decide({ range: 'bytes=10-19' }, 200, 100, V)
  t.equal(contentRangeOf(partial, 100), 'bytes 10-19/100')
  t.equal(bodyBytesOf(partial, 100), 10)
  const none = decide({ range: 'bytes=100-' }, 200, 100, V)
  t.equal(contentRangeOf(none, 100), 'bytes */100')
  t.equal(bodyBytesOf(none, 100), 0)
  const full = decide({}, 200, 100, V)
  t.equal(contentRangeOf(full, 100), undefined)
  t.equal(bodyBytesOf(full, 100), 100)
  t.equal(
    decide({}, 200, 100, V),
    decide({ 'if-none-match': '"a"' }, 200, 100, V),
    'answers without a range are shared',
  )
})

t.test('hop-by-hop headers, and those Connection names, are dropped', async (t) => {
  const out = withoutHopByHop(
    {
      Connection: 'close, X-Trace',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      trailer: 'x-sum',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'x',
      'proxy-whatever': 'x',
      'x-trace': '1',
      host: 'a',
      etag: '"e"',
      'set-cookie': ['a=1', 'b=2'],
      absent: undefined,
    },
    ['host'],
  )
  t.same(out, { etag: '"e"', 'set-cookie': ['a=1', 'b=2'] })
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
