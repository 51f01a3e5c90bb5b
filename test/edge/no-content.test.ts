/**
 * Framing of stored answers without content (RFC 9110 §8.6): a 204 carries no Content-Length,
 * on a miss and on a hit, on the raw path and on node's http alike; a 304 carries none either
 * (it may only repeat the 200's length, and the edge sends none).
 */
import t from 'tap'
import { settled, startEdge } from '../helpers/edge.js'
import { exchange } from './boundary/wire.js'
import { type Answer, startEchoUpstream } from './upstream-server.js'

const NONE = '/vod/n/v1/beacon'
const SEG = '/vod/n/v1/seg-00001.m4s'

for (const rawHits of [true, false]) {
  t.test(`raw path ${rawHits ? 'on' : 'off'}: a stored 204 has no Content-Length`, async (t) => {
    const up = await startEchoUpstream(t, (r): Answer =>
      r.url === NONE
        ? { status: 204, body: '', headers: { 'cache-control': 'public, max-age=600' } }
        : { headers: { 'cache-control': 'public, max-age=600', etag: '"s1"' } },
    )
    const edge = await startEdge(t, { upstream: up.url, rawHits })
    const port = Number(new URL(edge.url).port)
    // Plain requests (the raw path answers hits of them when it is on), the client half-closing
    // after; a miss asks for the close instead (a half-closed client's miss is not waited for).
    const one = async (method: string, path: string, extra = '') => {
      const close = extra.startsWith('Connection: close')
      const r = await exchange(port, [`${method} ${path} HTTP/1.1\r\nHost: edge.test\r\n${extra}\r\n`], {
        end: !close,
      })
      t.equal(r.responses.length, 1, `${method} ${path}: one answer`)
      return r.responses[0]!
    }
    const miss = await one('GET', NONE, 'Connection: close\r\n')
    await settled(edge)
    t.equal(miss.status, 204)
    t.equal(miss.headers['x-cache'], 'MISS')
    t.notOk('content-length' in miss.headers, 'no Content-Length on a miss')
    const before = edge.app.edge.raw?.answered ?? 0
    for (const method of ['GET', 'HEAD']) {
      const hit = await one(method, NONE)
      t.equal(hit.status, 204, method)
      t.equal(hit.headers['x-cache'], 'HIT-MEM', `${method}: a hit`)
      t.notOk('content-length' in hit.headers, `${method}: no Content-Length on a hit`)
      t.ok(hit.headers['cache-control'], `${method}: the stored fields are sent`)
    }
    t.equal(edge.app.edge.raw?.answered ?? 0, rawHits ? before + 2 : 0, 'answered on the path tested')
    t.equal(up.at(NONE).length, 1, 'stored')

    // A 304 about a stored 200 carries no Content-Length; the 200 does.
    const full = await one('GET', SEG, 'Connection: close\r\n')
    await settled(edge)
    t.equal(full.headers['content-length'], String(full.body.length))
    const nm = await one('GET', SEG, 'If-None-Match: "s1"\r\n')
    t.equal(nm.status, 304)
    t.notOk('content-length' in nm.headers, 'no Content-Length on a 304')
    t.equal(nm.headers.etag, '"s1"')
  })
}
