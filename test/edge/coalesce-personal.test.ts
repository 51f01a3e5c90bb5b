/**
 * Collapsed misses never share an answer that is its own request's (edge/upstream/flight-run.ts
 * `personal`): private, no-store, Set-Cookie, Vary: *. The clients that joined the fetch each
 * fetch alone, at once; an answer that is only not stored (a short-lived or uncacheable status)
 * is still shared. The upstream is a real server holding its first answer until the second
 * client has joined (the edge's coalesced-waiters metric says so).
 */
import t, { type Test } from 'tap'
import { request } from 'node:http'
import { settled, startEdge } from '../helpers/edge.js'
import { metricAt, until } from '../helpers/wait.js'
import { get } from './http-get.js'
import { type Answer, type Received, startEchoUpstream } from './upstream-server.js'

/**
 * Two clients for `path`, the second joining the first's fetch while the upstream holds it; the
 * upstream's answer to its n-th request is `answer(r, n)`.
 */
async function twoClients(
  t: Test,
  answer: (r: Received, n: number) => Answer,
  opts: { headers?: [Record<string, string>, Record<string, string>]; edge?: Record<string, unknown> } = {},
) {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  let n = 0
  const up = await startEchoUpstream(t, (r) => {
    n++
    return { ...answer(r, n), ...(n === 1 ? { gate } : {}) }
  })
  const edge = await startEdge(t, { upstream: up.url, ...opts.edge })
  const path = '/vod/t/me.json'
  const first = get(`${edge.url}${path}`, opts.headers?.[0])
  await until(() => up.received.length === 1)
  const second = get(`${edge.url}${path}`, opts.headers?.[1])
  await until(async () => (await metricAt(`${edge.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) === 1)
  release()
  return { up, answers: await Promise.all([first, second]) }
}

t.test('a Set-Cookie answer goes to its own request only: the joiner fetches its own', async (t) => {
  const { up, answers } = await twoClients(t, (_r, n) => ({
    headers: { 'set-cookie': `session=S${n}; HttpOnly`, 'cache-control': 'no-store' },
    body: `welcome ${n}`,
  }))
  const [a, b] = answers
  t.equal(a!.headers['set-cookie']?.toString(), 'session=S1; HttpOnly', "the first client's session")
  t.equal(
    b!.headers['set-cookie']?.toString(),
    'session=S2; HttpOnly',
    'the second its own, never the first one',
  )
  t.equal(b!.body, 'welcome 2')
  t.equal(up.received.length, 2, 'two upstream requests')
  t.not(b!.headers['x-cache'], 'COALESCED', 'the second was not served the shared answer')
})

t.test('two Set-Cookie fields reach the client as two, never folded into one', async (t) => {
  // A load balancer's stickiness pair (AWS ALB sends both), each with an Expires holding a comma:
  // folded into one line, a browser reads one cookie whose Expires swallowed the second.
  const cookies = [
    'AWSALB=abc; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/',
    'AWSALBCORS=abc; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; SameSite=None; Secure',
  ]
  const up = await startEchoUpstream(t, () => ({
    headers: { 'cache-control': 'max-age=60', 'set-cookie': cookies },
  }))
  const edge = await startEdge(t, { upstream: up.url })
  for (const headers of [{}, { range: 'bytes=0-3' }] as Record<string, string>[]) {
    const a = await get(`${edge.url}/vod/t/master.m3u8`, headers)
    t.equal(a.status, headers.range ? 206 : 200)
    t.same(a.headers['set-cookie'], cookies, `each cookie on its own line (${a.status})`)
  }
  t.equal(up.received.length, 2, 'never stored')
})

t.test('a private answer to forwarded cookies: each client gets the answer to its own cookie', async (t) => {
  const { up, answers } = await twoClients(
    t,
    (r) => ({ headers: { 'cache-control': 'private, max-age=60' }, body: `hello ${r.headers.cookie}` }),
    { headers: [{ cookie: 'user=alice' }, { cookie: 'user=bob' }], edge: { forwardDeny: [] } },
  )
  t.same(
    answers.map((a) => a.body),
    ['hello user=alice', 'hello user=bob'],
  )
  t.same(
    up.received.map((r) => r.headers.cookie),
    ['user=alice', 'user=bob'],
  )
})

t.test('Vary: * and a 403 with Set-Cookie are not shared either', async (t) => {
  const vary = await twoClients(t, (_r, n) => ({
    headers: { 'cache-control': 'max-age=60', vary: '*' },
    body: `v${n}`,
  }))
  t.same(
    vary.answers.map((a) => a.body),
    ['v1', 'v2'],
    'Vary: *: each its own',
  )
  const refused = await twoClients(t, (_r, n) => ({
    status: 403,
    headers: { 'set-cookie': `denied=${n}` },
    body: `no ${n}`,
  }))
  t.same(
    refused.answers.map((a) => [a.status, a.headers['set-cookie']?.toString()]),
    [
      [403, 'denied=1'],
      [403, 'denied=2'],
    ],
    'a status not stored does not make a cookie shareable',
  )
})

t.test('an answer only not stored is still shared by the clients waiting on it', async (t) => {
  const { up, answers } = await twoClients(t, () => ({ status: 503, body: 'busy' }))
  t.same(
    answers.map((a) => [a.status, a.headers['x-cache']]),
    [
      [503, 'MISS'],
      [503, 'COALESCED'],
    ],
  )
  t.equal(up.received.length, 1, 'one upstream request')
})

t.test('a 304 that carries a Set-Cookie goes to its own request only, and refreshes nothing', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const up = await startEchoUpstream(t, (r): Answer => {
    const n = up.received.length
    if (r.headers['if-none-match'] !== '"v1"')
      return { headers: { 'cache-control': 'max-age=0', etag: '"v1"' }, body: 'content' }
    return {
      status: 304,
      headers: { 'set-cookie': `session=S${n}`, 'cache-control': 'max-age=60', etag: '"v1"' },
      ...(n === 2 ? { gate } : {}),
    }
  })
  const edge = await startEdge(t, { upstream: up.url })
  const path = '/vod/t/me.json'
  t.equal((await get(`${edge.url}${path}`)).body, 'content')
  await settled(edge)
  // Stale at once (max-age=0): the next two revalidate, the second joining the first.
  const first = get(`${edge.url}${path}`)
  await until(() => up.received.length === 2)
  const second = get(`${edge.url}${path}`)
  await until(async () => (await metricAt(`${edge.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) === 1)
  release()
  const [a, b] = await Promise.all([first, second])
  t.equal(a.headers['set-cookie']?.toString(), 'session=S2', "the revalidating client's cookie")
  t.not(b.headers['set-cookie']?.toString(), 'session=S2', 'the joiner never gets it')
  t.equal(b.body, 'content')
  t.equal(
    up.received[2]?.headers['if-none-match'],
    '"v1"',
    'the joiner revalidates too, never refetches whole',
  )
  await settled(edge)
  const c = await get(`${edge.url}${path}`)
  t.not(c.headers['set-cookie']?.toString(), 'session=S2', 'nor does a later request: nothing stored it')
  t.equal(c.body, 'content')
})

/** A GET whose head is known before its body: `head` resolves with the status line's headers. */
function headFirst(url: string, headers: Record<string, string>) {
  let gotHead: (h: Record<string, unknown>) => void = () => undefined
  const head = new Promise<Record<string, unknown>>((resolve) => (gotHead = resolve))
  const done = new Promise<{ headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      gotHead(res.headers)
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  return { head, done }
}

t.test(
  'a personal answer that varies is not listed under its variant for a later client to join',
  async (t) => {
    let release: () => void = () => undefined
    const hold = new Promise<void>((resolve) => (release = resolve))
    const up = await startEchoUpstream(t, (r) => {
      const n = up.received.length
      const lang = String(r.headers['accept-language'])
      return {
        headers: {
          'cache-control': 'max-age=60',
          vary: 'Accept-Language',
          ...(lang === 'en' ? { 'set-cookie': `session=S${n}` } : {}),
        },
        body: `hello ${lang} ${n}`,
        hold,
      }
    })
    const edge = await startEdge(t, { upstream: up.url })
    const url = `${edge.url}/vod/t/me.json`
    // A (en) has its head: its answer is keyed, and personal. B (fr) has its head: the URL's
    // fetch in the table now says which variant a request selects.
    const a = headFirst(url, { 'accept-language': 'en' })
    await a.head
    const b = headFirst(url, { 'accept-language': 'fr' })
    await b.head
    // C (en) selects A's variant: it must not find A's fetch.
    const c = headFirst(url, { 'accept-language': 'en' })
    await until(() => up.received.length === 3)
    release()
    const [ra, rc] = await Promise.all([a.done, c.done, b.done])
    t.equal(ra.headers['set-cookie']?.toString(), 'session=S1')
    t.equal(rc.headers['set-cookie']?.toString(), 'session=S3', "C gets its own cookie, never A's")
    t.equal(rc.body, 'hello en 3')
  },
)

t.test('a slice whose answer is personal: the client that joined its fetch fetches alone', async (t) => {
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const SIZE = 3000
  const up = await startEchoUpstream(t, (r): Answer => {
    const n = up.received.length
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(r.headers.range ?? ''))
    const end = m ? Math.min(Number(m[2]), SIZE - 1) : SIZE - 1
    return {
      status: m ? 206 : 200,
      headers: {
        'cache-control': 'max-age=60',
        etag: '"s"',
        'set-cookie': `session=S${n}`,
        ...(m ? { 'content-range': `bytes ${m[1]}-${end}/${SIZE}` } : {}),
      },
      body: String(n).repeat(end - Number(m?.[1] ?? 0) + 1),
      ...(n === 1 ? { gate } : {}),
    }
  })
  const edge = await startEdge(t, { upstream: up.url, sliceSize: 1024 * 1024 })
  const path = '/vod/t/v1/720p/movie.mp4'
  const first = get(`${edge.url}${path}`)
  await until(() => up.received.length === 1)
  const second = get(`${edge.url}${path}`)
  await until(async () => (await metricAt(`${edge.url}/metrics`, 'cdn_edge_coalesced_waiters_total')) === 1)
  release()
  const [a, b] = await Promise.all([first, second])
  t.equal(a.headers['set-cookie']?.toString(), 'session=S1')
  t.equal(b.headers['set-cookie']?.toString(), 'session=S2', 'the joiner its own answer')
  t.equal(b.body, '2'.repeat(SIZE))
  t.not(b.headers['x-cache'], 'COALESCED', 'and says it fetched')
  await settled(edge)
  t.equal(edge.app.edge.flights.size, 0, 'no fetch left running')
})
