import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { readBounded } from '../../src/http/bounded-body.js'
import { ifRangeValidator, modifiedSince } from '../../src/http/conditional.js'
import { withoutHopByHop } from '../../src/http/hop-by-hop.js'
import { isContentPath, parseVodPath, titleOfPath } from '../../src/http/paths.js'
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
import { parseSigningKeys, type SigningKey, signedPrefix, verifySignedPath } from '../../src/http/signing.js'
import { canonicalTarget, formatQuery } from '../../src/http/target.js'

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
  [
    "If-Range date, a cache's Last-Modified a second before its Date: strong",
    { range: 'bytes=0-9', 'if-range': LM },
    200,
    100,
    { ...V, date: new Date(Date.UTC(2026, 0, 1, 0, 0, 1)).toUTCString() },
    { kind: 'partial', start: 0, end: 9 },
  ],
  [
    // RFC 9110 §13.1.5 and §8.8.2.2: it may have changed twice within that second.
    "If-Range date, a cache's Last-Modified in its Date's second: weak, the whole body",
    { range: 'bytes=0-9', 'if-range': LM },
    200,
    100,
    { ...V, date: LM },
    { kind: 'full' },
  ],
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

t.test('date conditions count only for an HTTP-date (RFC 9110 §13.1.3-4), else are ignored', async (t) => {
  // Each is a date to Date.parse: after LM (a 304 were it read), before LM (a 412 were it read).
  const later = ['9999', '2030', 'garbage 2030', '2030-01-01T00:00:00Z', 'Tue, 01 Jan 2030 00:00:00 UTC']
  const earlier = ['2000', '2025', 'garbage 2000', '2000-01-01', 'Sat, 01 Jan 2000 00:00:00 +0000']
  for (const v of later)
    t.same(decide({ 'if-modified-since': v }, 200, 100, V), { kind: 'full' }, `If-Modified-Since: ${v}`)
  for (const v of earlier)
    t.same(decide({ 'if-unmodified-since': v }, 200, 100, V), { kind: 'full' }, `If-Unmodified-Since: ${v}`)
  // The obsolete forms recipients must accept still count.
  for (const v of ['Thursday, 01-Jan-26 00:00:00 GMT', 'Thu Jan  1 00:00:00 2026'])
    t.same(decide({ 'if-modified-since': v }, 200, 100, V), { kind: 'not-modified' }, `obsolete form: ${v}`)
  t.same(
    decide({ 'if-unmodified-since': 'Wednesday, 01-Jan-25 00:00:00 GMT' }, 200, 100, V),
    { kind: 'precondition-failed' },
    'obsolete form, earlier',
  )
  // A stored Last-Modified that is not an HTTP-date is no validator either.
  const odd = { etag: undefined, lastModified: '2026' }
  t.same(decide({ 'if-modified-since': 'Tue, 01 Jan 2030 00:00:00 GMT' }, 200, 100, odd), { kind: 'full' })
  t.equal(modifiedSince('2020', '2030'), undefined)
  t.equal(ifRangeValidator(undefined, '2020', LM), undefined, 'no If-Range validator from a non-date')
  t.equal(ifRangeValidator(undefined, BEFORE, LM), BEFORE)
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

const K1: SigningKey = { id: 'k1', secret: 'first-secret-0123456789' }
const K2: SigningKey = { id: 'k2', secret: 'second-secret-0123456789' }
const MASTER = '/vod/abc/master.m3u8'
const SEG = '/vod/abc/v1/720p/seg-00001.m4s'

t.test('signed paths: keys rotate, tokens bind to a path prefix and a network', async (t) => {
  const now = 1_800_000_000
  const exp = now + 60
  const title = signedPrefix(K1, MASTER, { expiry: exp })
  const rendition = signedPrefix(K1, SEG, { expiry: exp, scope: 4 })
  const net4 = signedPrefix(K1, MASTER, { expiry: exp, net: '203.0.113.0/24' })
  const net6 = signedPrefix(K1, MASTER, { expiry: exp, net: '2001:db8:0:0:0:0:0:0/48' })
  const ok: [string, string, readonly SigningKey[], string | undefined][] = [
    ['title-wide, master', title + MASTER, [K1], undefined],
    ['title-wide, any object of the title', title + SEG, [K1], undefined],
    ['an older key still listed', title + SEG, [K2, K1], undefined],
    ['rendition-bound, inside', rendition + SEG, [K1], undefined],
    ['network-bound, inside', net4 + MASTER, [K1], '203.0.113.77'],
    ['network-bound, IPv4-mapped address', net4 + MASTER, [K1], '::ffff:203.0.113.9'],
    ['IPv6 network-bound, inside', net6 + MASTER, [K1], '2001:db8::1'],
  ]
  for (const [name, path, keys, addr] of ok)
    t.equal(verifySignedPath(path, keys, now, addr), path.slice(path.indexOf('/vod/')), name)
  const bad: [string, string, readonly SigningKey[], string | undefined, string][] = [
    ['missing', MASTER, [K1], undefined, 'missing'],
    ['expired', title + MASTER, [K1], undefined, 'expired'],
    ['key removed', title + MASTER, [K2], undefined, 'key'],
    [
      'forged: same id, other secret',
      title + MASTER,
      [{ id: 'k1', secret: 'x'.repeat(20) }],
      undefined,
      'signature',
    ],
    ['other title', title + '/vod/xyz/master.m3u8', [K1], undefined, 'signature'],
    ['title prefix of another title', title + '/vod/abcd/master.m3u8', [K1], undefined, 'signature'],
    [
      'rendition-bound, other rendition',
      rendition + '/vod/abc/v1/360p/seg-00001.m4s',
      [K1],
      undefined,
      'signature',
    ],
    ['rendition-bound, master', rendition + MASTER, [K1], undefined, 'scope'],
    ['network-bound, outside', net4 + MASTER, [K1], '198.51.100.1', 'network'],
    ['network-bound, no address', net4 + MASTER, [K1], undefined, 'network'],
    ['network-bound, other family', net4 + MASTER, [K1], '2001:db8::1', 'network'],
    ['IPv6 network-bound, outside', net6 + MASTER, [K1], '2001:db9::1', 'network'],
    ['leading zero in expiry', title.replace(`,${exp},`, `,0${exp},`) + MASTER, [K1], undefined, 'malformed'],
    ['sign in expiry', title.replace(`,${exp},`, `,+${exp},`) + MASTER, [K1], undefined, 'malformed'],
    ['old format', `/t/${exp}.${'A'.repeat(43)}${MASTER}`, [K1], undefined, 'malformed'],
    [
      'scope below the title',
      title.replace(`,${exp},2,`, `,${exp},1,`) + MASTER,
      [K1],
      undefined,
      'malformed',
    ],
    ['not content', title + '/titles/x', [K1], undefined, 'scope'],
  ]
  for (const [name, path, keys, addr, reason] of bad)
    t.throws(
      () => verifySignedPath(path, keys, name === 'expired' ? exp + 1 : now, addr),
      {
        code: 'CDN_ERR_FORBIDDEN',
        details: { reason },
      },
      name,
    )
  t.equal(verifySignedPath(title + MASTER, undefined, now), MASTER, 'without keys the prefix is stripped')
  t.equal(verifySignedPath(MASTER, undefined, 0), MASTER)
})

t.test('signing keys: KID:SECRET lists, a bare secret is id 0', async (t) => {
  t.same(parseSigningKeys(['k2:second-secret-0123456789', 'k1:first-secret-0123456789']), [
    { id: 'k2', secret: 'second-secret-0123456789' },
    { id: 'k1', secret: 'first-secret-0123456789' },
  ])
  t.same(parseSigningKeys(['a-bare-secret-of-length']), [{ id: '0', secret: 'a-bare-secret-of-length' }])
  t.same(parseSigningKeys(['k:with:colons-in-the-secret']), [
    { id: 'k', secret: 'with:colons-in-the-secret' },
  ])
  t.equal(parseSigningKeys(['k1:short']).length, 1)
  t.match(parseSigningKeys(['k1:short'])[0], /at least 16/)
  t.match(parseSigningKeys(['bad id!:first-secret-0123456789'])[0], /must match/)
  t.match(parseSigningKeys(['k1:first-secret-0123456789', 'k1:second-secret-0123456789'])[0], /twice/)
})

t.test('request targets: one canonical form, or 400 with a stable reason', async (t) => {
  const same: [string, string, string?][] = [
    ['/vod/a/master.m3u8', '/vod/a/master.m3u8'],
    ['/%76od/a/master.m3u8', '/vod/a/master.m3u8'],
    ['/vod/%61/v1/720p/seg-0000%31.m4s', '/vod/a/v1/720p/seg-00001.m4s'],
    ['/vod/a/%7e%2D%5F', '/vod/a/~-_'],
    ['/vod/a/b%3ac', '/vod/a/b%3Ac', 'reserved escapes stay, upper-case'],
    ['/vod/a/%c3%a9', '/vod/a/%C3%A9'],
    ['/vod/a/', '/vod/a/'],
    ['/', '/'],
  ]
  for (const [raw, path, name] of same) t.equal(canonicalTarget(raw).path, path, name ?? raw)
  t.same(canonicalTarget('/x?b=%32&&a&C%4dCD=br%3d1').query, [
    { name: 'b', value: '2' },
    { name: 'a', value: undefined },
    { name: 'CMCD', value: 'br%3D1' },
  ])
  const refused: [string, string][] = [
    ['', 'form'],
    ['x', 'form'],
    ['*', 'form'],
    ['http://evil.example/x', 'form'],
    ['//evil.example/x', 'form'],
    [`/${'a'.repeat(5000)}`, 'form'],
    ['/a b', 'bytes'],
    ['/a\tb', 'bytes'],
    ['/a\u0000b', 'bytes'],
    ['/a\u007fb', 'bytes'],
    ['/a\u00e9', 'bytes'],
    ['/a#frag', 'bytes'],
    ['/a?x=1#frag', 'bytes'],
    ['/a\\b', 'bytes'],
    ['/a%zz', 'encoding'],
    ['/a%2', 'encoding'],
    ['/a?x=%g1', 'encoding'],
    ['/a%2fb', 'separator'],
    ['/a%2Fb', 'separator'],
    ['/a%5cb', 'separator'],
    ['/a%00b', 'separator'],
    ['/a?x=%0a', 'separator'],
    ['/a%252fb', 'double'],
    ['/a/%252e%252e/b', 'double'],
    ['/a%2525', 'double'],
    ['/vod/a;v=1/master.m3u8', 'params'],
    ['/vod/a/master.m3u8;x', 'params'],
    ['/vod/../etc/passwd', 'segment'],
    ['/vod/a/%2e%2e/b', 'segment'],
    ['/a/%2E%2e', 'segment'],
    ['/./a', 'segment'],
    ['/a/.', 'segment'],
    ['/a//b', 'segment'],
  ]
  for (const [raw, reason] of refused)
    t.throws(
      () => canonicalTarget(raw),
      { code: 'CDN_ERR_BAD_PATH', details: { reason } },
      JSON.stringify(raw.slice(0, 40)),
    )
  t.equal(formatQuery(canonicalTarget('/x?b=1&a').query), 'b=1&a')
})

t.test('the content space is /vod/{title}/ and below', async (t) => {
  for (const p of ['/vod/a/master.m3u8', '/vod/a/v1/audio-en/index.m3u8', '/vod/a/x'])
    t.ok(isContentPath(p), p)
  for (const p of [
    '/vod/a/',
    '/vod/a',
    '/vod/',
    '/titles',
    '/vod/A/master.m3u8',
    '/vodx/a/b',
    '/t/x/vod/a/b',
  ])
    t.notOk(isContentPath(p), p)
})

t.test('readBounded: a body whole up to the bound, none past it, the rest left unread', async (t) => {
  // A real server streaming without a Content-Length: three 1 KiB chunks, then it waits for the
  // client to go, so a reader that did not stop at the bound would never end.
  const server = createServer((_req, res) => {
    res.write(Buffer.alloc(1024, 'a'))
    res.write(Buffer.alloc(1024, 'b'))
    res.write(Buffer.alloc(1024, 'c'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const past = await request(url)
  t.equal(await readBounded(past.body, 2048), undefined, 'past the bound: nothing')
  t.ok(past.body.destroyed, 'and the body is destroyed, not read on')

  const whole = createServer((_req, res) => res.end('{"ok":true}'))
  await new Promise<void>((resolve) => whole.listen(0, '127.0.0.1', resolve))
  t.teardown(() => whole.close())
  const res = await request(`http://127.0.0.1:${(whole.address() as AddressInfo).port}/`)
  t.equal(
    (await readBounded(res.body, 11))?.toString('utf8'),
    '{"ok":true}',
    'exactly the bound is read whole',
  )
})
