/**
 * The checks every role's /metrics passes with --metrics-token set (src/http/auth.ts
 * requireMetricsToken): refused with a 401 and its challenge without the token and with a wrong
 * one, GET and HEAD alike; served with it. /status and /healthz stay open (steering's health
 * check reads an edge's /status).
 */
import type { Test } from 'tap'

export interface GuardedMetrics {
  /** The exposition served with the token. */
  body: string
  /** The bodies of the refusals, for what they must not show. */
  refusals: string[]
}

export async function checkGuardedMetrics(
  t: Test,
  base: string,
  realm: string,
  token: string,
  /** The role's other operator paths, open whatever is set (steering has no /status). */
  openPaths: readonly string[] = ['/status', '/healthz'],
): Promise<GuardedMetrics> {
  const refusals: string[] = []
  for (const method of ['GET', 'HEAD']) {
    const none = await fetch(`${base}/metrics`, { method })
    const noneBody = await none.text()
    t.equal(none.status, 401, `${method} without a token: 401`)
    t.equal(none.headers.get('www-authenticate'), `Bearer realm="${realm}"`, `${method}: the challenge`)
    const wrong = await fetch(`${base}/metrics`, {
      method,
      headers: { authorization: `Bearer ${token}-not` },
    })
    const wrongBody = await wrong.text()
    t.equal(wrong.status, 401, `${method} with a wrong token: 401`)
    t.equal(
      wrong.headers.get('www-authenticate'),
      `Bearer realm="${realm}", error="invalid_token"`,
      `${method}: the challenge says the token is not the one`,
    )
    refusals.push(noneBody, wrongBody)
  }
  t.match(refusals[0], /^\{"error":\{"code":"CDN_ERR_UNAUTHORIZED"/, 'a JSON error with its code')
  const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  const body = await ok.text()
  t.equal(ok.status, 200, 'with the token: 200')
  t.match(ok.headers.get('content-type'), /^text\/plain/, 'the Prometheus text format')
  const head = await fetch(`${base}/metrics`, {
    method: 'HEAD',
    headers: { authorization: `bearer ${token}` },
  })
  await head.arrayBuffer()
  t.equal(head.status, 200, 'HEAD with the token (the scheme in any case): 200')
  for (const path of openPaths) {
    const r = await fetch(`${base}${path}`)
    await r.arrayBuffer()
    t.equal(r.status, 200, `${path} stays open`)
  }
  return { body, refusals }
}

/** /metrics without --metrics-token: open to a request with no Authorization, as before it existed. */
export async function openMetrics(base: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${base}/metrics`)
  return { status: r.status, body: await r.text() }
}
