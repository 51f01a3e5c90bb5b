import t from 'tap'
import {
  cacheTarget,
  edgeParamsOf,
  type KeyOptions,
  ownPath,
  underPrefix,
  validHost,
} from '../../edge/cache/key.js'
import { type SigningKey, signedPrefix } from '../../src/http/signing.js'

const opts: KeyOptions = { keepQueryParams: [], publicPaths: [], signingKeys: undefined }

t.test('the key is the canonical path plus the kept query parameters, sorted', async (t) => {
  const cases: [string, Partial<KeyOptions>, string][] = [
    ['/vod/a/master.m3u8', {}, '/vod/a/master.m3u8'],
    ['/vod/a/master.m3u8?x=random&_=123', {}, '/vod/a/master.m3u8'],
    ['/vod/a/master.m3u8?CMCD=br%3D100', {}, '/vod/a/master.m3u8'],
    ['/vod/a/x?b=2&a=1&CMCD=1&z', { keepQueryParams: ['a', 'b'] }, '/vod/a/x?a=1&b=2'],
    ['/vod/a/x?b=%32&%61=1', { keepQueryParams: ['a', 'b'] }, '/vod/a/x?a=1&b=2'],
    ['/vod/a/x?b=2&a=1&a=0', { keepQueryParams: ['*'] }, '/vod/a/x?a=0&a=1&b=2'],
    ['/%76od/a/master.m3u8', {}, '/vod/a/master.m3u8'],
    ['/titles?page=2', { publicPaths: ['/titles'], keepQueryParams: ['page'] }, '/titles?page=2'],
    ['/titles/a', { publicPaths: ['/titles'] }, '/titles/a'],
    ['/anything', { publicPaths: ['/'] }, '/anything'],
  ]
  for (const [raw, o, key] of cases) t.equal(cacheTarget(raw, { ...opts, ...o }, 0).key, key, raw)
  t.equal(cacheTarget('/vod/a/master.m3u8', opts, 0).title, 'a')
})

t.test('CMCD is read before the query policy drops it', async (t) => {
  const got = cacheTarget('/vod/a/master.m3u8?CMCD=br%3D3200%2Csid%3D%226e2f%22', opts, 0)
  t.equal(got.key, '/vod/a/master.m3u8')
  t.equal(got.cmcd, 'br=3200,sid="6e2f"')
  t.equal(cacheTarget('/vod/a/master.m3u8', opts, 0).cmcd, undefined)
})

t.test("steering's reason: a path prefix stripped first (before a token), or the query form", async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['/steered/down/vod/a/v1/720p/seg-00001.m4s', '/vod/a/v1/720p/seg-00001.m4s', 'down'],
    ['/steered/overloaded/vod/a/master.m3u8?x=1', '/vod/a/master.m3u8', 'overloaded'],
    ['/vod/a/master.m3u8?cdn-steered=down', '/vod/a/master.m3u8', 'down'],
    ['/vod/a/master.m3u8?cdn-steered=elsewhere', '/vod/a/master.m3u8', undefined],
    ['/steered/down/vod/a/master.m3u8?cdn-steered=overloaded', '/vod/a/master.m3u8', 'down'],
    ['/vod/a/master.m3u8', '/vod/a/master.m3u8', undefined],
  ]
  for (const [raw, key, reason] of cases) {
    const got = cacheTarget(raw, opts, 0)
    t.equal(got.key, key, raw)
    t.equal(got.steered, reason, `${raw}: ${reason}`)
    t.equal(edgeParamsOf(raw).steered, reason, `the access log's reason for ${raw}`)
  }
  for (const raw of ['/steered/sideways/vod/a/master.m3u8', '/steered/down', '/x/steered/down/vod/a/m.m3u8'])
    t.throws(() => cacheTarget(raw, opts, 0), { code: 'CDN_ERR_NOT_FOUND' }, raw)
  t.same(edgeParamsOf('/vod/a/seg.m4s'), {})
  const key: SigningKey = { id: 'k1', secret: 'k'.repeat(32) }
  const token = signedPrefix(key, '/vod/a/master.m3u8', { expiry: 100 })
  const signed = cacheTarget(`/steered/down${token}/vod/a/seg-00001.m4s`, { ...opts, signingKeys: [key] }, 50)
  t.same(
    [signed.key, signed.steered],
    ['/vod/a/seg-00001.m4s', 'down'],
    'the token behind the reason is verified',
  )
  t.throws(
    () => cacheTarget('/steered/down/vod/a/seg-00001.m4s', { ...opts, signingKeys: [key] }, 50),
    { code: 'CDN_ERR_FORBIDDEN' },
    'the reason is no way around a token',
  )
})

t.test('outside the content space and the public paths: 404', async (t) => {
  for (const raw of ['/titles', '/anything?x=1', '/', '/vod/', '/vod/a/', '/vod/A/master.m3u8', '/titlesx'])
    t.throws(
      () => cacheTarget(raw, { ...opts, publicPaths: ['/titles/'] }, 0),
      { code: 'CDN_ERR_NOT_FOUND' },
      raw,
    )
  t.ok(underPrefix('/titles', ['/titles']))
  t.ok(underPrefix('/titles/x', ['/titles']))
  t.notOk(underPrefix('/titlesx', ['/titles']))
})

t.test('open-proxy shapes and traversal are refused with 400', async (t) => {
  for (const bad of [
    'http://evil.example/x',
    'evil.example:80',
    '*',
    '/vod/../etc/passwd',
    '/vod/a/%2e%2e/b',
    '/a/%2E%2e/b',
    '/a%2fb',
    '/a%5cb',
    '/a\\b',
    '/a%00b',
    '/a\u0000b',
    '//evil.example/x',
    '/./a',
    '/a/%zz',
    '/vod/a;x/master.m3u8',
    `/${'a'.repeat(5000)}`,
  ]) {
    t.throws(() => cacheTarget(bad, opts, 0), { code: 'CDN_ERR_BAD_PATH' }, JSON.stringify(bad.slice(0, 40)))
  }
})

t.test("the edge's own paths, read on the canonical path, are never content", async (t) => {
  for (const own of [
    '/healthz',
    '/%68ealthz',
    '/status?x=1',
    '/metrics/',
    '/admin',
    '/%61dmin/cache',
    '/adminx',
  ])
    t.ok(ownPath(own), own)
  for (const not of ['/vod/a/healthz', '/healthzx', '/steered/down/healthz', '/%zz', '/x/admin'])
    t.notOk(ownPath(not), not)
  const open: KeyOptions = { ...opts, publicPaths: ['/'] }
  const token = `/t/k1,1,2,${'a'.repeat(43)}`
  for (const target of [
    '/healthz',
    '/%68ealthz',
    '/steered/down/healthz',
    '/steered/overloaded/%73tatus?x=1',
    `${token}/metrics`,
    `/steered/down${token}/admin/stats`,
    '/status/x',
  ])
    t.throws(() => cacheTarget(target, open, 0), { code: 'CDN_ERR_NOT_FOUND' }, target)
  t.equal(cacheTarget('/steered/down/healthzx', open, 0).key, '/healthzx', 'a path that only starts like one')
})

t.test('Host must be a plain name or address, with a port up to 65535', async (t) => {
  for (const ok of [undefined, 'edge.example', '127.0.0.1:8080', '[::1]:80', 'localhost', 'x:65535', '[::1]'])
    t.ok(validHost(ok), String(ok))
  for (const bad of ['a b', 'evil.example/x', 'u@evil', '', 'x:99999999', 'a\tb', 'x:99999', '[::1]:65536'])
    t.notOk(validHost(bad), bad)
})

t.test('signed paths: verified on the canonical form and stripped, 403 otherwise', async (t) => {
  const key: SigningKey = { id: 'k1', secret: 'k'.repeat(32) }
  const now = 1_800_000_000
  const prefix = signedPrefix(key, '/vod/a/master.m3u8', { expiry: now + 60 })
  const signed = `${prefix}/vod/a/master.m3u8?token=1`
  const s: KeyOptions = { ...opts, signingKeys: [key] }
  t.equal(cacheTarget(signed, s, now).key, '/vod/a/master.m3u8', 'token stripped from the key')
  t.equal(
    cacheTarget(`${prefix}/%76od/a/master.m3u8`, s, now).key,
    '/vod/a/master.m3u8',
    'canonical before the check',
  )
  for (const raw of ['/vod/a/master.m3u8', '/%76od/a/master.m3u8', '/vod/%61/master.m3u8'])
    t.throws(() => cacheTarget(raw, s, now), { code: 'CDN_ERR_FORBIDDEN' }, `${raw} unsigned`)
  t.throws(() => cacheTarget(signed.replace('/vod/a/', '/vod/b/'), s, now), { code: 'CDN_ERR_FORBIDDEN' })
  t.throws(() => cacheTarget(signed, s, now + 120), { code: 'CDN_ERR_FORBIDDEN' }, 'expired')
  t.throws(() => cacheTarget('/titles', s, now), { code: 'CDN_ERR_NOT_FOUND' }, 'not content: 404, not 403')
  const pub: KeyOptions = { ...s, publicPaths: ['/vod/trailer', '/titles'] }
  t.equal(cacheTarget('/vod/trailer/master.m3u8', pub, now).key, '/vod/trailer/master.m3u8', 'public content')
  t.equal(cacheTarget('/titles', pub, now).key, '/titles')
  t.equal(
    cacheTarget(signed, opts, now).key,
    '/vod/a/master.m3u8',
    'without a key the prefix is only stripped',
  )
})
