/**
 * The etcd catalogue's compare-and-swap (origin/store/etcd-pointers.ts): the compare chosen
 * from a token (a table), then the transaction against the real etcd cluster (scripts/etcd.sh):
 * a create wins once, a swap wins only from the revision it read, a stale or forged token
 * never, and job claims are created once.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { TitleEntry } from '../../origin/store/content-store.js'
import { EtcdPointers, revisionCompare } from '../../origin/store/etcd-pointers.js'
import { openStore } from '../../origin/store/open-store.js'
import { etcdClient } from '../../src/fleet-registry.js'
import { requireEtcd } from '../helpers/etcd.js'

const entry = (id: string, current: string): TitleEntry => ({
  id,
  current,
  updatedAt: new Date(0).toISOString(),
  versions: [],
})

t.test('the compare a token asks for', async (t) => {
  const cases: [string | undefined, ReturnType<typeof revisionCompare>][] = [
    [undefined, { target: 'Create', value: 0 }],
    ['1', { target: 'Mod', value: '1' }],
    ['9007199254740993', { target: 'Mod', value: '9007199254740993' }],
    ['0', undefined],
    ['', undefined],
    ['-4', undefined],
    ['12a', undefined],
    ['"etag"', undefined],
    ['01', undefined],
  ]
  for (const [token, want] of cases) t.same(revisionCompare(token), want, `token ${JSON.stringify(token)}`)
})

t.test('the transaction on the pointer key, against real etcd', async (t) => {
  const endpoints = requireEtcd(t)
  if (!endpoints) return
  const prefix = `/cdn-test/${randomBytes(6).toString('hex')}/`
  const a = new EtcdPointers({ endpoints, prefix, store: 'bucket/p/' })
  const b = new EtcdPointers({ endpoints, prefix, store: 'bucket/p/' })
  const other = new EtcdPointers({ endpoints, prefix, store: 'bucket/q/' })
  t.teardown(() => [a, b, other].forEach((p) => p.close()))

  t.same(await a.read('show'), { entry: undefined, token: undefined }, 'no pointer yet')
  t.same(await a.read('Not A Title'), { entry: undefined, token: undefined })
  const creates = await Promise.all([
    a.swap('show', undefined, entry('show', 'x')),
    b.swap('show', undefined, entry('show', 'y')),
  ])
  t.equal(creates.filter(Boolean).length, 1, `one create won: ${JSON.stringify(creates)}`)
  const first = await b.read('show')
  t.equal(first.entry?.current, creates[0] ? 'x' : 'y', 'the pointer is the winning create’s')
  t.match(first.token, /^[1-9][0-9]*$/, 'the token is a revision')

  t.ok(await a.swap('show', first.token, entry('show', 'v2')), 'a swap from the revision read wins')
  const second = await b.read('show')
  t.equal(second.entry?.current, 'v2', 'another client reads it at once')
  t.ok(BigInt(second.token!) > BigInt(first.token!), 'the revision moved on')
  t.notOk(await b.swap('show', first.token, entry('show', 'stale')), 'the stale revision loses')
  t.notOk(await b.swap('show', undefined, entry('show', 'create')), 'a create over an existing pointer loses')
  t.notOk(await b.swap('show', 'not-a-revision', entry('show', 'forged')), 'a forged token loses')
  t.notOk(await b.swap('fresh', second.token, entry('fresh', 'x')), 'a revision of another key loses')
  t.equal((await a.read('show')).entry?.current, 'v2', 'the losers changed nothing')
  t.equal((await a.read('fresh')).entry, undefined)

  // The revision is the key's own: a write elsewhere in etcd does not make a token stale.
  await other.swap('show', undefined, entry('show', 'elsewhere'))
  t.ok(await b.swap('show', second.token, entry('show', 'v3')), 'unrelated writes leave the token valid')

  t.same(
    (await a.list()).map((e) => [e.id, e.current]),
    [['show', 'v3']],
    'list: this store’s titles only',
  )
  t.same(
    (await other.list()).map((e) => e.current),
    ['elsewhere'],
  )

  const claims = await Promise.all([a.create('_cdn/jobs/j1.claim', 'a'), b.create('_cdn/jobs/j1.claim', 'b')])
  t.equal(claims.filter(Boolean).length, 1, `one claim won: ${JSON.stringify(claims)}`)

  const raw = etcdClient(endpoints)
  t.teardown(() => raw.close())
  await raw.put(`${prefix}bucket/p/titles/broken`).value('{not json')
  await t.rejects(a.read('broken'), { code: 'CDN_ERR_STORE' }, 'an unreadable entry is a store error')
})

t.test('etcd unreachable: a store error, not a hang or a crash', async (t) => {
  const dead = new EtcdPointers({ endpoints: ['http://127.0.0.1:9'], store: 'b/' })
  t.teardown(() => dead.close())
  await t.rejects(dead.read('show'), { code: 'CDN_ERR_STORE' })
  await t.rejects(dead.swap('show', undefined, entry('show', 'x')), { code: 'CDN_ERR_STORE' })
  await t.rejects(dead.list(), { code: 'CDN_ERR_STORE' })
  await t.rejects(dead.create('_cdn/jobs/x.claim', '{}'), { code: 'CDN_ERR_STORE' })
})

t.test('--s3-cas etcd and --s3-etcd go together', async (t) => {
  const s3 = { store: 's3://bucket/p', s3Endpoint: 'http://127.0.0.1:9' }
  await t.rejects(openStore({ ...s3, s3Cas: 'etcd' }), { code: 'CDN_ERR_CONFIG', message: /--s3-etcd/ })
  await t.rejects(openStore({ ...s3, s3Etcd: ['http://127.0.0.1:2379'] }), {
    code: 'CDN_ERR_CONFIG',
    message: /--s3-cas etcd/,
  })
  t.throws(() => new EtcdPointers({ endpoints: [], store: 'b/' }), { code: 'CDN_ERR_CONFIG' })
})
