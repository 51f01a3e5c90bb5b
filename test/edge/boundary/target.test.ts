import t from 'tap'
import { type SigningKey, signedPrefix } from '../../../src/http/signing.js'
import { rawStatus } from '../upstream-server.js'
import { loggedEdge } from '../../helpers/edge.js'
import { recordingUpstream } from './recording.js'

const KEY: SigningKey = { id: 'k1', secret: 'boundary-signing-key-0123' }

t.test('a signed edge refuses an encoded /vod/ unsigned; the upstream sees nothing', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url], signingKey: ['k1:boundary-signing-key-0123'] })
  for (const path of ['/%76od/show/master.m3u8', '/vod/%73how/master.m3u8', '/%76%6F%64/show/master.m3u8']) {
    const r = await fetch(edge.url + path)
    t.equal(r.status, 403, `${path} is content, and unsigned`)
    t.match(await r.json(), { error: { code: 'CDN_ERR_FORBIDDEN', reason: 'missing' } })
  }
  const exp = Math.floor(Date.now() / 1000) + 600
  const prefix = signedPrefix(KEY, '/vod/show/master.m3u8', { expiry: exp })
  const ok = await fetch(`${edge.url}${prefix}/%76od/show/master.m3u8`)
  t.equal(ok.status, 200, 'signed, then canonical')
  await ok.arrayBuffer()
  t.same(
    up.seen,
    ['/vod/show/master.m3u8'],
    'only the signed request reached the upstream, in canonical form',
  )
})

t.test('one canonical form for the key and the upstream request', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url] })
  const forms = [
    '/vod/show/master.m3u8',
    '/%76od/show/master.m3u8',
    '/vod/sho%77/master.m3u8',
    '/vod/show/master%2Em3u8',
  ]
  const caches: (string | null)[] = []
  for (const path of forms) {
    const r = await fetch(edge.url + path)
    t.equal(r.status, 200, path)
    t.equal(await r.text(), 'body of /vod/show/master.m3u8')
    caches.push(r.headers.get('x-cache'))
  }
  t.same(caches, ['MISS', 'HIT-MEM', 'HIT-MEM', 'HIT-MEM'], 'every spelling is one cache entry')
  t.same(up.seen, ['/vod/show/master.m3u8'])
})

t.test('ambiguous targets are 400 with a stable reason, never forwarded', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url] })
  const cases: [string, string][] = [
    ['/vod/show%2Fmaster.m3u8', 'separator'],
    ['/vod/show/%5C..%5Cmaster.m3u8', 'separator'],
    ['/vod/show/%252e%252e/master.m3u8', 'double'],
    ['/vod/show/%252Fmaster.m3u8', 'double'],
    ['/vod/show;jsessionid=1/master.m3u8', 'params'],
    ['/vod/show/%00master.m3u8', 'separator'],
  ]
  for (const [path, reason] of cases) {
    const r = await fetch(edge.url + path)
    t.equal(r.status, 400, path)
    t.match(await r.json(), { error: { code: 'CDN_ERR_BAD_PATH', reason } }, path)
  }
  for (const target of [
    '/vod/show/master.m3u8#x',
    '/vod/show/x/%2e%2e/master.m3u8',
    '/vod/show/x/../master.m3u8',
    '/vod/show/\x01master.m3u8',
    '/vod/show/master.m3u8?a=\x7f',
  ])
    t.equal(
      await rawStatus(edge.url, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      400,
      JSON.stringify(target),
    )
  t.same(up.seen, [], 'the upstream received nothing')
})

t.test('an absolute-form target is taken in origin-form, its authority as the Host', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url] })
  const { host } = new URL(edge.url)
  const ask = (target: string, hostField = 'other.example') =>
    rawStatus(edge.url, `GET ${target} HTTP/1.1\r\nHost: ${hostField}\r\nConnection: close\r\n\r\n`)
  t.equal(await ask(`http://${host}/vod/show/master.m3u8`), 200, 'RFC 9112 §3.2.2: a server MUST accept it')
  t.equal(await ask(`HTTP://${host}/vod/show/master.m3u8?a=1`), 200, 'any case of the scheme, a query kept')
  t.equal(await ask(`http://${host}/vod/show/%2e%2e/x`), 400, 'its path is canonicalised as any other')
  t.equal(await ask(`http://user@${host}/vod/show/master.m3u8`), 400, 'userinfo: refused')
  t.equal(await ask(`ftp://${host}/vod/show/master.m3u8`), 400, 'another scheme: refused')
  t.equal(await ask(`http://bad host/vod/show/master.m3u8`), 400, 'an authority that is no Host: refused')
  t.equal(await ask('*'), 400, 'asterisk-form: refused')
  t.same(up.seen, ['/vod/show/master.m3u8'], 'one upstream request, in origin-form, for the two spellings')
})

t.test(
  'an absolute-form request with a body to an operator path is answered, its body read once',
  async (t) => {
    const up = await recordingUpstream(t)
    const token = 'absolute-form-token-1'
    const edge = await loggedEdge(t, { upstream: [up.url], adminToken: token })
    const { host } = new URL(edge.url)
    const body = '{}'
    const status = await rawStatus(
      edge.url,
      `POST http://${host}/admin/prefill HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    )
    t.equal(status, 400, 'the prefill route read the body and refused it (no titles), at once')
  },
)
