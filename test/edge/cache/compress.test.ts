/**
 * The pure parts of compression and variants (edge/cache/compress.ts, variants.ts): what is
 * encodable, the encoded ETag and Vary, Accept-Encoding as the edge reads it, the variant key's
 * normalisation, the variant index's bound, and the encoder's bound on encodings at once.
 */
import t from 'tap'
import {
  compressible,
  Encoder,
  encodedEtag,
  MIN_COMPRESS_BYTES,
  withAcceptEncoding,
} from '../../../edge/cache/compress.js'
import {
  acceptedEncodings,
  keyedFields,
  primaryOf,
  secondaryKey,
  VariantIndex,
  variantKey,
} from '../../../edge/cache/variants.js'

const meta = (headers: Record<string, string>, status = 200) => ({ status, headers })

t.test('compressible: playlists and JSON, not encoded, without no-transform', async (t) => {
  const yes = [
    'application/vnd.apple.mpegurl',
    'application/x-mpegURL',
    'audio/mpegurl',
    'application/json; charset=utf-8',
    'application/problem+json',
  ]
  for (const type of yes) t.ok(compressible(meta({ 'content-type': type })), type)
  t.notOk(compressible(meta({ 'content-type': 'video/iso.segment' })), 'a segment')
  t.notOk(compressible(meta({ 'content-type': 'video/mp4' })), 'an init segment')
  t.notOk(compressible(meta({})), 'no type')
  t.notOk(compressible(meta({ 'content-type': 'application/json' }, 404)), 'not a 200')
  t.notOk(compressible(meta({ 'content-type': 'application/json', 'content-encoding': 'gzip' })), 'encoded')
  t.ok(compressible(meta({ 'content-type': 'application/json', 'content-encoding': 'identity' })))
  t.notOk(
    compressible(meta({ 'content-type': 'application/json', 'cache-control': 'max-age=60, no-transform' })),
    'no-transform',
  )
})

t.test('compressible: no-transform in the targeted field this edge obeys (RFC 9213) too', async (t) => {
  const json = (h: Record<string, string>) => compressible(meta({ 'content-type': 'application/json', ...h }))
  t.notOk(json({ 'cdn-cache-control': 'max-age=60, no-transform' }), 'CDN-Cache-Control')
  t.notOk(
    json({ 'opencdn-cache-control': 'no-transform', 'cache-control': 'max-age=60' }),
    'OpenCDN-Cache-Control',
  )
  t.notOk(
    json({ 'cache-control': 'max-age=60, no-transform', 'cdn-cache-control': 'max-age=600' }),
    "Cache-Control's, beside a targeted field without it",
  )
  t.ok(json({ 'cdn-cache-control': 'max-age=60' }), 'a targeted field without it')
  t.ok(json({ 'cdn-cache-control': 'no-transform, max-age=' }), 'an invalid targeted field is ignored')
  t.ok(
    json({ 'opencdn-cache-control': 'max-age=60', 'cdn-cache-control': 'no-transform' }),
    'a targeted field set aside by a more specific one is ignored',
  )
})

t.test('the encoded ETag is weak and suffixed; Vary gets Accept-Encoding once', async (t) => {
  t.equal(encodedEtag('"abc"', 'br'), 'W/"abc-br"')
  t.equal(encodedEtag('W/"abc"', 'gzip'), 'W/"abc-gzip"')
  t.equal(encodedEtag(undefined, 'br'), undefined)
  t.equal(encodedEtag('not-quoted', 'br'), undefined, 'an invalid ETag is dropped')
  t.equal(withAcceptEncoding(undefined), 'Accept-Encoding')
  t.equal(withAcceptEncoding(' '), 'Accept-Encoding')
  t.equal(withAcceptEncoding('Origin'), 'Origin, Accept-Encoding')
  t.equal(withAcceptEncoding('origin, accept-encoding'), 'origin, accept-encoding')
})

t.test('Accept-Encoding: brotli first, q=0 refuses, * accepts the rest', async (t) => {
  const cases: Array<[string | string[] | undefined, string[]]> = [
    [undefined, []],
    ['', []],
    ['gzip, deflate, br', ['br', 'gzip']],
    ['br;q=0, gzip', ['gzip']],
    ['BR;Q=0.5, GZIP;q=0', ['br']],
    ['*', ['br', 'gzip']],
    ['*;q=0, gzip', ['gzip']],
    ['identity', []],
    ['gzip;q=abc', ['gzip']],
    [
      ['gzip', 'br'],
      ['br', 'gzip'],
    ],
  ]
  for (const [value, want] of cases) t.same(acceptedEncodings(value), want, JSON.stringify(value))
})

t.test('variant keys: fields that reach the upstream, sorted; values normalised', async (t) => {
  const forwards = (f: string) => f !== 'accept-encoding' && f !== 'cookie'
  t.same(keyedFields('Accept-Language, X-Tenant,accept-language', forwards), ['accept-language', 'x-tenant'])
  t.equal(keyedFields('Accept-Encoding, Cookie', forwards), undefined, 'nothing forwarded: no variant')
  t.equal(keyedFields(undefined, forwards), undefined)
  t.equal(keyedFields('Accept-Language', undefined), undefined)
  const fields = ['accept-language']
  t.equal(
    variantKey('/vod/t/a.json', fields, { 'accept-language': 'it, en' }),
    variantKey('/vod/t/a.json', fields, { 'accept-language': ' it,en ' }),
    'list members trimmed',
  )
  t.not(
    variantKey('/vod/t/a.json', fields, { 'accept-language': 'it' }),
    variantKey('/vod/t/a.json', fields, {}),
  )
  t.equal(secondaryKey(['accept-encoding'], { 'accept-encoding': 'gzip, br;q=0' }), 'accept-encoding=gzip\n')
  t.equal(secondaryKey(['x-a'], { 'x-a': ['1', ' 2'] }), 'x-a=1,2\n')
  const k = variantKey('/vod/t/a.json?x=1', fields, {})
  t.match(k, /^\/vod\/t\/a\.json\?x=1#v=[0-9a-f]{24}$/)
  t.equal(primaryOf(k), '/vod/t/a.json?x=1')
})

t.test('the variant index: bounded, one kind per URL', async (t) => {
  const idx = new VariantIndex(2)
  const v = (n: number) => `/u#v=${n}`
  t.same(idx.add(v(1), ['a']), ['/u'], 'a variant drops the plain entry')
  t.same(idx.add(v(2), ['a']), ['/u'])
  t.same(idx.add(v(3), ['b']), ['/u', v(1)], 'past the bound the oldest goes')
  t.same(idx.fields('/u'), ['b'], "the newest's fields")
  t.same(idx.keys('/u'), [v(2), v(3)])
  idx.remove(v(2))
  idx.remove('/u')
  t.same(idx.keys('/u'), [v(3)])
  t.same(idx.add('/u', undefined), [v(3)], 'a plain entry drops the variants')
  t.equal(idx.fields('/u'), undefined)
  idx.remove(v(9))
  t.same(idx.keys('/u'), [])
})

t.test('the encoder keeps only smaller forms and bounds encodings at once', async (t) => {
  const enc = new Encoder()
  const text = Buffer.from('#EXTINF:4.000000,\nseg.m4s\n'.repeat(100))
  const forms = await enc.encode(text)
  t.ok(forms?.br && forms.br.length < text.length)
  t.ok(forms?.gzip && forms.gzip.length < text.length)
  const random = Buffer.from(Array.from({ length: MIN_COMPRESS_BYTES }, (_, i) => (i * 7919) % 251))
  const none = await enc.encode(random)
  t.ok(none && none.gzip === undefined, 'gzip of incompressible bytes is not kept')
  const many = await Promise.all(Array.from({ length: 40 }, () => enc.encode(text)))
  t.equal(many.filter((m) => m === undefined).length, 8, 'past 32 at once, skipped')
  t.equal(enc.skipped, 8)
})
