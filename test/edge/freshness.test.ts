import t from 'tap'
import { endToEndHeaders } from '../../edge/cache/entry.js'
import {
  describe,
  freshnessLifetime,
  freshState,
  initialAge,
  parseCacheControl,
  parseTargeted,
  storability,
  transformAllowed,
  usableOnError,
} from '../../edge/cache/freshness.js'
import { parseHttpDate } from '../../src/http/http-date.js'

const T0 = Date.UTC(2026, 0, 1)
const date = (ms: number) => new Date(ms).toUTCString()
const H = 3_600_000

interface Row {
  name: string
  status?: number
  headers: Record<string, string>
  /** ms after the response when the cache looks at it */
  at: number
  store: boolean
  state?: 'fresh' | 'stale-while-revalidate' | 'must-revalidate'
  onError?: boolean
}

const rows: Row[] = [
  {
    name: 'max-age fresh',
    headers: { 'cache-control': 'max-age=60' },
    at: 59_000,
    store: true,
    state: 'fresh',
  },
  {
    name: 'max-age expired',
    headers: { 'cache-control': 'max-age=60' },
    at: 60_000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 's-maxage wins over max-age',
    headers: { 'cache-control': 'max-age=1, s-maxage=100' },
    at: 50_000,
    store: true,
    state: 'fresh',
  },
  {
    name: 'Expires minus Date',
    headers: { expires: date(T0 + 30_000) },
    at: 29_000,
    store: true,
    state: 'fresh',
  },
  {
    name: 'invalid Expires is expired',
    headers: { expires: '0', etag: '"a"' },
    at: 0,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'max-age wins over Expires',
    headers: { 'cache-control': 'max-age=10', expires: date(T0 + 100_000) },
    at: 20_000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'heuristic: 10% of age since Last-Modified',
    headers: { 'last-modified': date(T0 - 10 * H) },
    at: H - 1000,
    store: true,
    state: 'fresh',
  },
  {
    name: 'heuristic expires after 10%',
    headers: { 'last-modified': date(T0 - 10 * H) },
    at: H + 1000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'heuristic capped at a day',
    headers: { 'last-modified': date(T0 - 1000 * 24 * H) },
    at: 25 * H,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'no heuristic for 500',
    status: 500,
    headers: { 'last-modified': date(T0 - 10 * H) },
    at: 0,
    store: false,
  },
  { name: 'nothing explicit, no validator: not stored', headers: {}, at: 0, store: false },
  {
    name: 'ETag only: stored, always revalidated',
    headers: { etag: '"x"' },
    at: 0,
    store: true,
    state: 'must-revalidate',
  },
  { name: 'no-store', headers: { 'cache-control': 'no-store, max-age=60' }, at: 0, store: false },
  { name: 'private', headers: { 'cache-control': 'private, max-age=60' }, at: 0, store: false },
  { name: 'Vary: *', headers: { 'cache-control': 'max-age=60', vary: '*' }, at: 0, store: false },
  {
    name: 'no-cache: stored but always revalidated',
    headers: { 'cache-control': 'no-cache, max-age=60', etag: '"x"' },
    at: 1000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'immutable a year',
    headers: { 'cache-control': 'public, max-age=31536000, immutable' },
    at: 300 * 24 * H,
    store: true,
    state: 'fresh',
  },
  {
    name: 'stale-while-revalidate window',
    headers: { 'cache-control': 'max-age=2, stale-while-revalidate=10' },
    at: 5000,
    store: true,
    state: 'stale-while-revalidate',
  },
  {
    name: 'past stale-while-revalidate',
    headers: { 'cache-control': 'max-age=2, stale-while-revalidate=10' },
    at: 13_000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: 'stale-if-error window',
    headers: { 'cache-control': 'max-age=2, stale-if-error=3600' },
    at: 100_000,
    store: true,
    state: 'must-revalidate',
    onError: true,
  },
  {
    name: 'must-revalidate forbids stale-if-error',
    headers: { 'cache-control': 'max-age=2, must-revalidate, stale-if-error=3600' },
    at: 100_000,
    store: true,
    state: 'must-revalidate',
    onError: false,
  },
  {
    name: 'upstream Age counts (a parent edge held it 50 s)',
    headers: { 'cache-control': 'max-age=60', age: '50' },
    at: 11_000,
    store: true,
    state: 'must-revalidate',
  },
  {
    name: '404 with max-age is stored',
    status: 404,
    headers: { 'cache-control': 'max-age=5' },
    at: 0,
    store: true,
    state: 'fresh',
  },
  {
    name: 'Set-Cookie is never shared',
    headers: { 'cache-control': 'max-age=5', 'set-cookie': 'a=b' },
    at: 0,
    store: false,
  },
]

for (const r of rows) {
  t.test(r.name, async (t) => {
    const headers = { date: date(T0), ...r.headers }
    const status = r.status ?? 200
    t.equal(storability(status, headers).ok, r.store, 'storable')
    if (!r.store) return
    const f = describe(status, headers, T0, T0, 24 * H)
    if (r.state) t.equal(freshState(f, T0 + r.at), r.state, 'state')
    if (r.onError !== undefined) t.equal(usableOnError(f, T0 + r.at), r.onError, 'usable on error')
  })
}

t.test('Age follows RFC 9111 4.2.3 (apparent age, response delay, upstream Age)', async (t) => {
  // The upstream's clock is 5 s behind and the response took 2 s.
  const f = describe(
    200,
    { date: date(T0 - 5000), age: '3', 'cache-control': 'max-age=100' },
    T0 - 2000,
    T0,
    H,
  )
  t.equal(f.initialAgeMs, 5000, 'max(apparent 5 s, age 3 s + delay 2 s)')
  const g = describe(200, { date: date(T0), age: '30' }, T0 - 2000, T0, H)
  t.equal(g.initialAgeMs, 32_000)
})

t.test('Cache-Control parsing tolerates junk', async (t) => {
  t.same(parseCacheControl('max-age="10", s-maxage=abc, FOO, Immutable').maxAge, 10)
  t.equal(parseCacheControl('s-maxage=abc').sMaxAge, undefined)
  t.equal(parseCacheControl('Immutable').immutable, true)
})

t.test('Expires must be exactly an HTTP-date, else already expired (RFC 9111 5.3)', async (t) => {
  const valid = [
    'Sun, 06 Nov 1994 08:49:37 GMT',
    'Sunday, 06-Nov-94 08:49:37 GMT',
    'Sun Nov  6 08:49:37 1994',
  ]
  for (const v of valid) t.equal(parseHttpDate(v), Date.UTC(1994, 10, 6, 8, 49, 37), v)
  const invalid = [
    '0',
    'Sun, 06 Nov 1994 08:49:37 UTC', // another zone
    'Sun 06 Nov 1994 08:49:37 GMT', // no comma
    'Sun,  06 Nov 1994 08:49:37 GMT', // extra space
    'Sun, 06-Nov-1994 08:49:37 GMT', // dashes in IMF-fixdate
    'Sun, 06 Nov 1994 8:49:37 GMT', // one-digit hour
    'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT', // two lines joined
    'Sun, 31 Feb 1994 08:49:37 GMT', // no such day
    'Sun, 06 Nov 1994 24:49:37 GMT',
  ]
  for (const v of invalid) t.equal(parseHttpDate(v), undefined, `invalid: ${v}`)
  const later = new Date(T0 + H).toUTCString()
  t.equal(freshnessLifetime(200, { date: date(T0), expires: later }, H), H, 'a valid Expires an hour on')
  for (const v of [later.replace('GMT', 'UTC'), later.replace(',', ''), `${later}\n${later}`])
    t.equal(freshnessLifetime(200, { date: date(T0), expires: v }, H), 0, `expired: ${JSON.stringify(v)}`)
})

t.test('an invalid Age is ignored, an invalid Date counts as absent', async (t) => {
  for (const age of ['3, 5', '-1', '1e3', '12abc', ''])
    t.equal(initialAge({ date: date(T0), age }, T0, T0), 0, `Age ${JSON.stringify(age)}`)
  t.equal(initialAge({ date: 'yesterday', age: '7' }, T0, T0), 7000, 'Date unusable: Age still counts')
})

t.test('a delta-seconds too large to represent is 2^31 seconds, never absent (RFC 9111 1.2.2)', async (t) => {
  const big = '31536000000' // a year written in milliseconds, as origins do by mistake
  const forever = 2 ** 31 * 1000
  t.equal(freshnessLifetime(200, { date: date(T0), 'cache-control': `max-age=${big}` }, H), forever)
  t.equal(
    freshnessLifetime(200, { date: date(T0), 'cache-control': `max-age=60, s-maxage=${big}` }, H),
    forever,
    's-maxage still rules',
  )
  t.equal(parseTargeted(`max-age=${big}`)?.maxAge, 2 ** 31, 'in a targeted field too')
  const f = describe(200, { date: date(T0), etag: '"a"', 'cache-control': `max-age=${big}` }, T0, T0, H)
  t.equal(freshState(f, T0 + 24 * H), 'fresh', 'fresh a day later, not revalidated on every request')
  t.equal(initialAge({ date: date(T0), age: big }, T0, T0), forever, 'an Age that large is that old')
})

t.test('a directive given twice: the first occurrence counts (RFC 9111 4.2.1)', async (t) => {
  // An application's max-age=0 and a layer in front of it appending its own default, on two lines.
  const two = endToEndHeaders({ date: date(T0), 'cache-control': ['max-age=0', 'max-age=3600'] })
  t.equal(freshnessLifetime(200, two, H), 0, 'max-age=0 first: stale at once, not fresh for an hour')
  t.equal(parseCacheControl('s-maxage=10, s-maxage=86400').sMaxAge, 10)
  t.equal(parseCacheControl('stale-if-error=0, stale-if-error=86400').staleIfError, 0)
  t.equal(parseCacheControl('max-age=abc, max-age=60').maxAge, 60, 'an invalid one is no occurrence')
  t.equal(parseTargeted('max-age=0, max-age=3600')?.maxAge, 3600, 'a targeted field: the last (RFC 8941)')
})

t.test('Vary with * anywhere in its list is never stored', async (t) => {
  for (const vary of ['*', 'Accept, *', 'accept-encoding ,*', '*,Origin'])
    t.same(storability(200, { 'cache-control': 'max-age=60', vary }), { ok: false, reason: 'vary' }, vary)
  t.equal(storability(200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' }).ok, true)
})

t.test('targeted cache control (RFC 9213): the most specific valid field rules', async (t) => {
  const base = { date: date(T0), 'cache-control': 'no-store', expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }
  // CDN-Cache-Control overrides Cache-Control (no-store) and Expires (past).
  const cdn = { ...base, 'cdn-cache-control': 'max-age=600' }
  t.equal(storability(200, cdn).ok, true, 'stored: Cache-Control ignored')
  t.equal(freshnessLifetime(200, cdn, H), 600_000, 'Expires ignored')
  // Ours beats the generic one.
  const ours = { ...cdn, 'opencdn-cache-control': 'max-age=30, stale-if-error=60' }
  const f = describe(200, ours, T0, T0, H)
  t.equal(f.lifetimeMs, 30_000)
  t.equal(f.sieMs, 60_000)
  t.equal(storability(200, { ...base, 'cdn-cache-control': 'no-store' }).ok, false, 'targeted no-store')
  t.equal(storability(200, { ...base, 'cdn-cache-control': 'private' }).ok, false, 'targeted private')
  // Invalid or empty targeted fields fall through to the next, then to Cache-Control.
  const bad = {
    date: date(T0),
    'cache-control': 'max-age=5',
    'opencdn-cache-control': 'max-age=="',
    'cdn-cache-control': '',
  }
  t.equal(freshnessLifetime(200, bad, H), 5000, 'invalid and empty targeted fields are ignored')
  t.equal(parseTargeted('max-age=1.5')?.maxAge, undefined, 'a decimal max-age is not a delta-seconds')
  t.equal(parseTargeted('max-age=(1 2)')?.maxAge, undefined, 'an inner list means nothing')
  t.equal(parseTargeted('s-maxage=9, no-cache="x"')?.sMaxAge, 9)
  t.equal(parseTargeted('no-cache')?.noCache, true)
  t.equal(parseTargeted('must-revalidate, immutable, public, proxy-revalidate')?.proxyRevalidate, true)
})

t.test('must-understand, qualified private and no-cache (RFC 9111 5.2.2)', async (t) => {
  t.equal(
    storability(200, { 'cache-control': 'no-store, must-understand, max-age=60' }).ok,
    true,
    'known status',
  )
  t.equal(
    storability(206, { 'cache-control': 'no-store, must-understand, max-age=60' }).ok,
    false,
    'unknown here',
  )
  t.match(
    storability(503, { 'cache-control': 'no-store, must-understand, max-age=60' }, true),
    { ok: false, reason: 'must-understand' },
    "an operator's floor on a 5xx is not understanding its status",
  )
  t.equal(storability(503, { 'cache-control': 'no-store, max-age=60' }, true).ok, false, 'no-store alone')
  const q = parseCacheControl('private="X-User, Set-Login", no-cache="x-token", max-age=60')
  t.equal(q.private, false, 'qualified private is not private')
  t.same(q.privateFields, ['x-user', 'set-login'])
  t.equal(q.noCache, false, 'qualified no-cache does not force revalidation')
  t.same(q.noCacheFields, ['x-token'])
  const stored = endToEndHeaders({
    'cache-control': 'private="X-User", no-cache="x-token", max-age=60',
    'x-user': 'alice',
    'x-token': 'secret',
    'content-type': 'text/plain',
  })
  t.equal(stored['x-user'], undefined, 'the private field is not stored')
  t.equal(stored['x-token'], undefined, 'the no-cache field is not stored')
  t.equal(stored['content-type'], 'text/plain')
  t.equal(parseCacheControl('private').private, true)
  t.equal(parseCacheControl('no-cache=""').noCache, true, 'an empty list is the unqualified form')
})

t.test('no-transform (RFC 9111 5.2.2.6), in Cache-Control or a targeted field', async (t) => {
  t.equal(transformAllowed({ 'cache-control': 'max-age=60' }), true)
  t.equal(transformAllowed({ 'cache-control': 'max-age=60, No-Transform' }), false)
  t.equal(transformAllowed({ 'cache-control': 'no-transform', 'cdn-cache-control': 'max-age=60' }), false)
  t.equal(transformAllowed({ 'cdn-cache-control': 'max-age=60, no-transform' }), false)
  t.equal(
    transformAllowed({ 'opencdn-cache-control': 'max-age=60', 'cdn-cache-control': 'no-transform' }),
    true,
    'only the first valid targeted field counts (RFC 9213 2.2)',
  )
})
