import t from 'tap'
import { loggedEdge } from '../../helpers/edge.js'
import { recordingUpstream } from './recording.js'

const M = '/vod/show/master.m3u8'

t.test('cache-busters cannot make misses: unknown parameters are dropped', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url] })
  const caches: (string | null)[] = []
  for (const q of ['', '?x=1', '?x=2', '?_=1767225600000', '?CMCD=br%3D3200', '?a&b=&c=%41']) {
    const r = await fetch(edge.url + M + q)
    t.equal(r.status, 200)
    await r.arrayBuffer()
    caches.push(r.headers.get('x-cache'))
  }
  t.same(caches, ['MISS', 'HIT-MEM', 'HIT-MEM', 'HIT-MEM', 'HIT-MEM', 'HIT-MEM'])
  t.same(up.seen, [M], 'one upstream request, without a query')
})

t.test('--keep-query-params keeps the named parameters, sorted, in key and request', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url], keepQueryParams: ['lang', 'v'] })
  for (const q of ['?v=2&lang=en&x=1', '?lang=en&v=2&y=9', '?%6cang=en&v=%32', '?v=3'])
    await fetch(edge.url + M + q).then((r) => r.arrayBuffer())
  t.same(up.seen, [`${M}?lang=en&v=2`, `${M}?v=3`])
})

t.test('CMCD is read before it is dropped: the access log has it', async (t) => {
  const up = await recordingUpstream(t)
  const edge = await loggedEdge(t, { upstream: [up.url], accessLog: true })
  await fetch(`${edge.url}${M}?CMCD=br%3D3200%2Csid%3D%22abc%22`).then((r) => r.arrayBuffer())
  t.same(up.seen, [M], 'not sent upstream')
  const access = edge.logs.filter((l) => l.msg === 'access')
  t.equal(access.length, 1)
  t.equal(access[0]!.cmcd, 'br=3200,sid="abc"')
})
