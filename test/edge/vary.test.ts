/**
 * Variants (edge/cache/variants.ts, docs/http-cache.md): an answer with `Vary` on a forwarded
 * field is stored per value of that field and served only to requests with the same value;
 * `Vary: *` is never stored; a bounded number of variants per URL; a purge or an invalidation
 * of the URL drops every variant; concurrent misses coalesce only on the same variant; the disk
 * tier keeps them over a restart. The upstream is a real server recording every request.
 */
import { request } from 'node:http'
import t from 'tap'
import { settled, startEdge, tempDir } from '../helpers/edge.js'
import { get } from './http-get.js'
import { metricAt, until } from '../helpers/wait.js'
import { type Answer, type Received, startEchoUpstream } from './upstream-server.js'

/** An answer in the request's language, varying on it. */
function byLanguage(r: Received, vary = 'Accept-Language'): Answer {
  return {
    headers: { 'cache-control': 'max-age=60', vary, 'content-type': 'application/json' },
    body: JSON.stringify({ lang: r.headers['accept-language'] ?? 'none' }),
  }
}

const PATH = '/vod/t/info.json'

t.test('variants by Accept-Language: stored apart, each served to its own clients', async (t) => {
  const up = await startEchoUpstream(t, (r) => byLanguage(r))
  const edge = await startEdge(t, { upstream: up.url })
  const it1 = await get(`${edge.url}${PATH}`, { 'accept-language': 'it' })
  await settled(edge)
  const en1 = await get(`${edge.url}${PATH}`, { 'accept-language': 'en' })
  await settled(edge)
  const none1 = await get(`${edge.url}${PATH}`)
  await settled(edge)
  t.same(
    [it1.body, en1.body, none1.body].map((b) => JSON.parse(b).lang),
    ['it', 'en', 'none'],
    'each miss fetched its own',
  )
  t.equal(up.at(PATH).length, 3, 'three variants, three fetches')

  const it2 = await get(`${edge.url}${PATH}`, { 'accept-language': 'it' })
  const en2 = await get(`${edge.url}${PATH}`, { 'accept-language': 'en' })
  const none2 = await get(`${edge.url}${PATH}`)
  // Normalised: list members trimmed.
  const it3 = await get(`${edge.url}${PATH}`, { 'accept-language': ' it ' })
  t.equal(JSON.parse(it2.body).lang, 'it')
  t.equal(JSON.parse(en2.body).lang, 'en')
  t.equal(JSON.parse(none2.body).lang, 'none')
  t.equal(JSON.parse(it3.body).lang, 'it')
  for (const r of [it2, en2, none2, it3]) t.equal(r.headers['x-cache'], 'HIT-MEM', 'a hit of its own variant')
  t.equal(
    it2.headers.vary,
    'Accept-Language, Accept-Encoding',
    "the upstream's Vary is sent (JSON: and the edge's)",
  )
  t.equal(up.at(PATH).length, 3, 'no further fetch')
})

t.test('Vary: * is never stored, anywhere in its list; the same list without it is', async (t) => {
  const up = await startEchoUpstream(t, (r) =>
    byLanguage(r, r.url === PATH ? 'Accept-Language, *' : 'Accept-Language'),
  )
  const edge = await startEdge(t, { upstream: up.url })
  for (const path of [PATH, '/vod/t/plain.json']) {
    await get(`${edge.url}${path}`, { 'accept-language': 'it' })
    await settled(edge)
  }
  const star = await get(`${edge.url}${PATH}`, { 'accept-language': 'it' })
  t.equal(star.headers['x-cache'], 'MISS')
  t.equal(up.at(PATH).length, 2, 'fetched each time')
  const plain = await get(`${edge.url}/vod/t/plain.json`, { 'accept-language': 'it' })
  t.equal(plain.headers['x-cache'], 'HIT-MEM', 'Vary: Accept-Language is stored as a variant')
})

t.test('a bounded number of variants per URL: the oldest goes', async (t) => {
  const up = await startEchoUpstream(t, (r) => byLanguage(r))
  const edge = await startEdge(t, { upstream: up.url, maxVariants: 2 })
  for (const lang of ['it', 'en', 'fr']) {
    await get(`${edge.url}${PATH}`, { 'accept-language': lang })
    await settled(edge)
  }
  t.equal(up.at(PATH).length, 3)
  for (const lang of ['en', 'fr']) {
    const r = await get(`${edge.url}${PATH}`, { 'accept-language': lang })
    t.match(r.headers['x-cache'], /^HIT/, `${lang} is still held`)
  }
  const it = await get(`${edge.url}${PATH}`, { 'accept-language': 'it' })
  t.equal(it.headers['x-cache'], 'MISS', 'the oldest variant was dropped, from memory and disk')
  t.equal(JSON.parse(it.body).lang, 'it')
  t.equal(up.at(PATH).length, 4)
})

t.test('a purge of the title and an invalidation of the URL drop every variant', async (t) => {
  const up = await startEchoUpstream(t, (r) =>
    r.method === 'POST' ? { status: 204, body: '' } : byLanguage(r),
  )
  const token = 'secret-token-0123456789'
  const edge = await startEdge(t, { upstream: up.url, adminToken: token, passThrough: ['POST'] })
  const fill = async () => {
    for (const lang of ['it', 'en']) {
      await get(`${edge.url}${PATH}`, { 'accept-language': lang })
      await settled(edge)
    }
  }
  const allMiss = async (what: string) => {
    for (const lang of ['it', 'en']) {
      const r = await get(`${edge.url}${PATH}`, { 'accept-language': lang })
      t.equal(r.headers['x-cache'], 'MISS', `${lang} after ${what}`)
      t.equal(JSON.parse(r.body).lang, lang)
      await settled(edge)
    }
  }
  await fill()
  const purged = await fetch(`${edge.url}/admin/cache/vod/t`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  })
  t.equal(purged.status, 200)
  t.equal(((await purged.json()) as { purged: number }).purged, 2, 'both variants counted')
  await allMiss('the purge')
  t.equal(edge.app.edge.store.has(PATH), false)
  const posted = await get(`${edge.url}${PATH}`, {}, 'POST')
  t.equal(posted.status, 204)
  await allMiss('the invalidation')
  t.equal(up.at(PATH).filter((r) => r.method === 'GET').length, 6)
})

t.test('concurrent misses coalesce only on the same variant', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const up = await startEchoUpstream(t, (r) => ({
    ...byLanguage(r),
    ...(r.headers['accept-language'] === 'it' ? { gate } : {}),
  }))
  const edge = await startEdge(t, { upstream: up.url })
  const metrics = `${edge.url}/metrics`
  const first = get(`${edge.url}${PATH}`, { 'accept-language': 'it' })
  await until(() => up.at(PATH).length === 1)
  const others = [
    get(`${edge.url}${PATH}`, { 'accept-language': 'en' }),
    get(`${edge.url}${PATH}`, { 'accept-language': 'it' }),
  ]
  // Both wait on the first fetch: its answer's Vary is not known yet.
  await until(async () => (await metricAt(metrics, 'cdn_edge_coalesced_waiters_total')) === 2)
  release()
  const [it1, en, it2] = await Promise.all([first, ...others])
  t.equal(JSON.parse(it1!.body).lang, 'it')
  t.equal(JSON.parse(it2!.body).lang, 'it', 'the same variant shares the fetch')
  t.equal(JSON.parse(en!.body).lang, 'en', 'another variant gets its own fetch')
  const seen = up.at(PATH).map((r) => r.headers['accept-language'])
  t.same(seen.sort(), ['en', 'it'], "one fetch per variant, each with its first request's fields")
  await settled(edge)
})

/** A GET whose head is known before its body: `body` resolves once the answer ended. */
function headFirst(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => (body += c))
      resolve({ status: res.statusCode!, body: new Promise((done) => res.on('end', () => done(body))) })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('--max-inflight counts a variant fetch once (it is listed under two keys)', async (t) => {
  let release: () => void = () => undefined
  const hold = new Promise<void>((resolve) => (release = resolve))
  // Every answer's head comes at once and its body only when the test releases it: both fetches
  // are past their headers (keyed as variants) and running when the next request comes.
  const up = await startEchoUpstream(t, (r) => ({ ...byLanguage(r), hold }))
  const edge = await startEdge(t, { upstream: up.url, maxInflight: 2 })
  const a = await headFirst(`${edge.url}/vod/t/a.json`, { 'accept-language': 'it' })
  const b = await headFirst(`${edge.url}/vod/t/b.json`, { 'accept-language': 'en' })
  t.equal(a.status, 200, 'the first variant miss is fetched')
  t.equal(b.status, 200, 'the second variant miss is fetched, not refused')
  // The bound still holds: a third fetch while two run is refused.
  const c = await get(`${edge.url}/vod/t/c.json`, { 'accept-language': 'de' })
  t.equal(c.status, 503, 'a third concurrent fetch is over --max-inflight')
  t.equal(JSON.parse(c.body).error.code, 'CDN_ERR_OVERLOADED')
  release()
  t.equal(JSON.parse(await a.body).lang, 'it')
  t.equal(JSON.parse(await b.body).lang, 'en')
  t.same(
    up.received.map((r) => r.url),
    ['/vod/t/a.json', '/vod/t/b.json'],
    'two upstream fetches, none for the refused one',
  )
  await settled(edge)
  t.equal(edge.app.edge.flights.size, 0, 'every fetch counted out')
  const again = await get(`${edge.url}/vod/t/c.json`, { 'accept-language': 'de' })
  t.equal(again.status, 200, 'the refused miss is fetched once the others are over')
})

t.test('variants survive a restart in the disk tier', async (t) => {
  const up = await startEchoUpstream(t, (r) => byLanguage(r))
  const cacheDir = tempDir(t)
  const first = await startEdge(t, { upstream: up.url, cacheDir })
  for (const lang of ['it', 'en']) {
    await get(`${first.url}${PATH}`, { 'accept-language': lang })
    await settled(first)
  }
  await first.app.close()
  const again = await startEdge(t, { upstream: up.url, cacheDir })
  for (const lang of ['en', 'it']) {
    const r = await get(`${again.url}${PATH}`, { 'accept-language': lang })
    t.equal(r.headers['x-cache'], 'HIT-DISK', `${lang} from disk`)
    t.equal(JSON.parse(r.body).lang, lang)
  }
  t.equal(up.at(PATH).length, 2, 'nothing fetched again')
})
