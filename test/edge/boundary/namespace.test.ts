import t from 'tap'
import { type SigningKey, signedPrefix } from '../../../src/http/signing.js'
import { loggedEdge } from '../../helpers/edge.js'
import { recordingUpstream } from './recording.js'

t.test('outside the content space: 404 from the edge, no upstream request', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url] })
  for (const path of [
    '/titles',
    `/anything?x=${Math.random()}`,
    '/',
    '/vod/',
    '/vod/show/',
    '/jobs/1',
    '/%74itles',
  ]) {
    const r = await fetch(edge.url + path)
    t.equal(r.status, 404, path)
    t.match(await r.json(), { error: { code: 'CDN_ERR_NOT_FOUND' } })
  }
  t.equal((await fetch(`${edge.url}/healthz`)).status, 200, 'operator endpoints still answer')
  const content = await fetch(`${edge.url}/vod/show/v1/audio-en/index.m3u8`)
  t.equal(content.status, 200, 'content is served')
  await content.arrayBuffer()
  t.same(up.seen, ['/vod/show/v1/audio-en/index.m3u8'])
})

t.test('--public-path opens a prefix, unsigned even on a signed edge', async (t) => {
  const key: SigningKey = { id: 'k1', secret: 'boundary-signing-key-0123' }
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, {
    upstream: [up.url],
    publicPath: ['/titles', '/vod/trailer'],
    signingKey: ['k1:boundary-signing-key-0123'],
  })
  t.equal((await fetch(`${edge.url}/titles`)).status, 200)
  t.equal((await fetch(`${edge.url}/titles/show`)).status, 200)
  t.equal((await fetch(`${edge.url}/titlesx`)).status, 404, 'a prefix ends at a segment')
  t.equal((await fetch(`${edge.url}/vod/trailer/master.m3u8`)).status, 200, 'public content needs no token')
  t.equal((await fetch(`${edge.url}/vod/show/master.m3u8`)).status, 403, 'other content does')
  const exp = Math.floor(Date.now() / 1000) + 600
  const signed = `${signedPrefix(key, '/vod/show/master.m3u8', { expiry: exp })}/vod/show/master.m3u8`
  t.equal((await fetch(edge.url + signed)).status, 200)
  t.equal((await fetch(`${edge.url}/other`)).status, 404)
  t.same(up.seen, ['/titles', '/titles/show', '/vod/trailer/master.m3u8', '/vod/show/master.m3u8'])
})
