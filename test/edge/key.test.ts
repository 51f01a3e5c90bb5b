import t from 'tap'
import { cacheTarget, validHost } from '../../edge/cache/key.js'
import { signedPrefix } from '../../src/http/signing.js'

const opts = { ignoreQueryParams: ['CMCD', 'token'], signingKey: undefined }

t.test('the key is the path plus the sorted query minus ignored parameters', async (t) => {
  t.equal(cacheTarget('/vod/a/master.m3u8', opts, 0).key, '/vod/a/master.m3u8')
  t.equal(cacheTarget('/x?b=2&a=1&CMCD=br%3D100&token=z', opts, 0).key, '/x?a=1&b=2')
  t.equal(cacheTarget('/x?CMCD=1', opts, 0).key, '/x')
  t.equal(cacheTarget('/vod/a/master.m3u8', opts, 0).title, 'a')
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
    `/${'a'.repeat(5000)}`,
  ]) {
    t.throws(() => cacheTarget(bad, opts, 0), { code: 'CDN_ERR_BAD_PATH' }, JSON.stringify(bad.slice(0, 40)))
  }
})

t.test('Host must be a plain name or address', async (t) => {
  for (const ok of [undefined, 'edge.example', '127.0.0.1:8080', '[::1]:80', 'localhost'])
    t.ok(validHost(ok), String(ok))
  for (const bad of ['a b', 'evil.example/x', 'u@evil', '', 'x:99999999', 'a\tb'])
    t.notOk(validHost(bad), bad)
})

t.test('signed paths: verified and stripped with a key, 403 otherwise', async (t) => {
  const key = 'k'.repeat(32)
  const now = 1_800_000_000
  const signed = `${signedPrefix(key, 'a', now + 60)}/vod/a/master.m3u8?token=1`
  const s = { ...opts, signingKey: key }
  t.equal(cacheTarget(signed, s, now).key, '/vod/a/master.m3u8', 'token stripped from the key')
  t.throws(() => cacheTarget('/vod/a/master.m3u8', s, now), { code: 'CDN_ERR_FORBIDDEN' })
  t.throws(() => cacheTarget(signed.replace('/vod/a/', '/vod/b/'), s, now), { code: 'CDN_ERR_FORBIDDEN' })
  t.throws(() => cacheTarget(signed, s, now + 120), { code: 'CDN_ERR_FORBIDDEN' }, 'expired')
  t.equal(
    cacheTarget(signed, opts, now).key,
    '/vod/a/master.m3u8',
    'without a key the prefix is only stripped',
  )
})
