import t from 'tap'
import {
  describe,
  freshState,
  parseCacheControl,
  storability,
  usableOnError,
} from '../../edge/cache/freshness.js'

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
