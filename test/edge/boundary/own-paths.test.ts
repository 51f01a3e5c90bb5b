/**
 * The edge's own paths (/healthz, /status, /metrics, /admin...) are decided on the canonical
 * path once the steering and token prefixes are gone, the same on the raw hit path and node's
 * http: `/%68ealthz` is /healthz (the edge's answer, never a stored one), and an own path behind
 * a prefix (`/steered/down/healthz`, `/t/x/status`) or one no operator route serves
 * (`/%61dmin/stats`) is a 404 from the edge, never fetched from the upstream nor stored, even
 * with `--public-path /` (with a parent edge as upstream it would expose the parent's own paths).
 */
import t from 'tap'
import { settled, startEdge } from '../../helpers/edge.js'
import { type Answer, startEchoUpstream } from '../upstream-server.js'
import { exchange } from './wire.js'

/** A token prefix's shape: stripped unverified by an edge without signing keys. */
const TOKEN = `/t/k1,1,2,${'a'.repeat(43)}`

const NOT_OURS = [
  '/steered/down/healthz',
  '/steered/overloaded/status',
  '/steered/down/metrics',
  '/steered/down/admin/stats',
  '/steered/down/%61dmin/cache',
  `${TOKEN}/healthz`,
  `/steered/down${TOKEN}/status?x=1`,
  '/admin/stats',
  '/%61dmin/stats',
  '/healthz/x',
  '/status/',
]

/** The error code of a JSON error body, undefined for any other body. */
function codeOf(body: Buffer | undefined): string | undefined {
  try {
    return (JSON.parse(body?.toString() ?? '') as { error?: { code?: string } }).error?.code
  } catch {
    return undefined
  }
}

for (const rawHits of [true, false]) {
  t.test(`raw path ${rawHits ? 'on' : 'off'}: own paths are the edge's, never content`, async (t) => {
    const up = await startEchoUpstream(t, (): Answer => ({
      headers: { 'cache-control': 'public, max-age=600' },
    }))
    const edge = await startEdge(t, { upstream: up.url, rawHits, publicPath: ['/'], passThrough: ['POST'] })
    const port = Number(new URL(edge.url).port)
    const one = async (method: string, target: string, close: boolean) => {
      const extra = close ? 'Connection: close\r\n' : ''
      const r = await exchange(port, [`${method} ${target} HTTP/1.1\r\nHost: edge.test\r\n${extra}\r\n`], {
        end: !close,
      })
      t.equal(r.responses.length, 1, `${method} ${target}: one answer`)
      return r.responses[0]
    }
    for (const target of NOT_OURS)
      for (const method of ['GET', 'HEAD']) {
        const r = await one(method, target, true)
        t.equal(r?.status, 404, `${method} ${target}`)
        if (method === 'GET') t.equal(codeOf(r?.body), 'CDN_ERR_NOT_FOUND', `${target}: the edge's 404`)
      }
    await settled(edge)
    // Plain requests, which the raw path answers when they are fresh memory hits: nothing under
    // /healthz is stored, so the edge answers them itself, as it answers /healthz.
    for (const target of ['/%68ealthz', '/healthz', '/%68ealthz?x=1']) {
      const r = await one('GET', target, false)
      t.equal(r?.status, 200, target)
      t.equal(r?.body.toString(), '{"ok":true}', `${target}: the edge's own answer`)
      t.notOk('x-cache' in (r?.headers ?? {}), `${target}: not from the cache`)
    }
    const metrics = await one('GET', '/%6detrics', false)
    t.match(metrics?.body.toString(), /^# HELP /m, "/%6detrics: the edge's metrics")
    // A relayed method on an own path behind a prefix is not relayed either.
    const post = await exchange(
      port,
      [
        'POST /steered/down/admin/prefill HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      ],
      { end: false },
    )
    t.same(
      post.responses.map((r) => r.status),
      [404],
      'POST behind a prefix',
    )
    t.same(
      up.received.map((r) => `${r.method} ${r.url}`),
      [],
      'nothing reached the upstream',
    )
    t.ok(edge.app.edge.store.stats().memory!.objects === 0, 'nothing stored')
  })
}
