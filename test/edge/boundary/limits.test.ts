/**
 * The edge's client-facing limits, on the raw path and on node's http alike: a head or a
 * request that takes too long gets 408 and the close, an idle kept-alive connection is closed.
 * Limits here are small (200 ms); each case waits for the edge's answer or close, never a timer.
 */
import t, { type Test } from 'tap'
import { startEdge } from '../../helpers/edge.js'
import { startUpstream } from '../upstream-server.js'
import { exchange } from './wire.js'

const PL = '/vod/show/v1/index.m3u8'
const BODY = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')

async function setup(t: Test, rawHits: boolean) {
  const origin = await startUpstream(t, {
    [PL]: async (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
  })
  const edge = await startEdge(t, {
    upstream: origin.url,
    rawHits,
    clientHeadersTimeout: 200,
    clientRequestTimeout: 300,
    keepAliveTimeout: 200,
  })
  const port = Number(new URL(edge.url).port)
  await (await fetch(edge.url + PL)).arrayBuffer()
  await edge.app.edge.flights.settled('show')
  return { origin, edge, port }
}

const statuses = (r: { responses: { status: number }[] }) => r.responses.map((x) => x.status)

for (const rawHits of [true, false]) {
  const mode = rawHits ? 'raw path on' : 'raw path off'

  t.test(`${mode}: the options reach node's server`, async (t) => {
    const { edge } = await setup(t, rawHits)
    t.equal(edge.app.server.headersTimeout, 200)
    t.equal(edge.app.server.requestTimeout, 300)
    t.equal(edge.app.server.keepAliveTimeout, 200)
  })

  t.test(`${mode}: a head that does not end gets 408, then the close`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n`], { end: false })
    t.same(statuses(r), [408])
    // After a request answered on the same connection too.
    const after = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n\r\nGET ${PL} HTTP/1.1\r\n`], {
      end: false,
    })
    t.same(statuses(after), [200, 408])
  })

  t.test(`${mode}: a connection that sends nothing gets 408 after the head limit`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [], { end: false })
    t.same(statuses(r), [408])
    t.match(JSON.parse(r.responses[0]!.body.toString()), { error: { code: 'CDN_ERR_REQUEST_TIMEOUT' } })
  })

  t.test(`${mode}: a body that does not end gets 408, then the close`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc`], {
      end: false,
    })
    t.same(statuses(r), [408])
  })

  t.test(`${mode}: an idle kept-alive connection is closed after its answers`, async (t) => {
    const { port } = await setup(t, rawHits)
    const r = await exchange(port, [`GET ${PL} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(2)], { end: false })
    t.same(statuses(r), [200, 200])
    t.same(r.responses[1]!.body, BODY)
  })
}
