/**
 * One edge per URL among the registry's records (steering/url-claims.ts), as a table of steps;
 * the watch that applies it against a real etcd is in registry-etcd.test.ts.
 */
import t from 'tap'
import { UrlClaims } from '../../steering/url-claims.js'

const FILE = [{ id: 'e1', url: 'http://127.0.0.1:19201/cdn' }]
const U = 'http://127.0.0.1:19300'
const V = 'http://127.0.0.1:19301'

type Step =
  | ['claim', string, string, number, { holder?: string; file?: boolean; promoted?: string[] }]
  | ['drop', string, string[]]

const cases: [string, Step[], string[]][] = [
  [
    "the file's URL is never a record's, whatever its revision",
    [
      ['claim', 'dup', FILE[0]!.url, 1, { holder: 'e1', file: true }],
      ['claim', 'dup2', FILE[0]!.url, 2, { holder: 'e1', file: true }],
      ['drop', 'dup', []],
    ],
    [],
  ],
  [
    'the first record keeps a URL; the next waits and takes it when the first leaves',
    [
      ['claim', 'b', U, 5, {}],
      ['claim', 'a', U, 6, { holder: 'b' }],
      ['claim', 'c', U, 7, { holder: 'b' }],
      ['drop', 'b', ['a']],
    ],
    ['a'],
  ],
  [
    'a put that keeps its URL keeps its place; the waiting one with the lowest revision goes first',
    [
      ['claim', 'a', U, 5, {}],
      ['claim', 'c', U, 6, { holder: 'a' }],
      ['claim', 'b', U, 7, { holder: 'a' }],
      ['claim', 'a', U, 9, {}],
      ['claim', 'c', U, 10, { holder: 'a' }],
      ['drop', 'a', ['c']],
      ['drop', 'c', ['b']],
    ],
    ['b'],
  ],
  [
    'a holder that moves to another URL frees the first; one waiting that moves stops waiting',
    [
      ['claim', 'a', U, 5, {}],
      ['claim', 'b', U, 6, { holder: 'a' }],
      ['claim', 'c', U, 7, { holder: 'a' }],
      ['claim', 'c', V, 8, {}],
      ['claim', 'a', V, 9, { holder: 'c', promoted: ['b'] }],
      ['drop', 'c', ['a']],
    ],
    ['a', 'b'],
  ],
  [
    'a record waiting that leaves is never let in',
    [
      ['claim', 'a', U, 5, {}],
      ['claim', 'b', U, 6, { holder: 'a' }],
      ['drop', 'b', []],
      ['drop', 'a', []],
      ['drop', 'a', []],
    ],
    [],
  ],
]

t.test('who holds each URL, as a table', async (t) => {
  for (const [name, steps, holding] of cases) {
    const claims = new UrlClaims(FILE)
    steps.forEach((step, i) => {
      if (step[0] === 'drop') return void t.same(claims.drop(step[1]), step[2], `${name}: step ${i}`)
      const [, id, url, rev, want] = step
      const got = claims.claim(id, url, BigInt(rev))
      t.same(
        { holder: got.holder?.id, file: got.holder?.file, promoted: got.promoted },
        {
          holder: want.holder,
          file: want.holder ? (want.file ?? false) : undefined,
          promoted: want.promoted ?? [],
        },
        `${name}: step ${i}`,
      )
    })
    const ids = ['a', 'b', 'c', 'dup', 'dup2', 'e1']
    t.same(
      ids.filter((id) => claims.holds(id)),
      holding,
      `${name}: who holds a URL at the end`,
    )
  }
})

t.test('cleared, every URL is free again', async (t) => {
  const claims = new UrlClaims([])
  claims.claim('a', U, 1n)
  t.ok(claims.claim('b', U, 2n).holder)
  claims.clear()
  t.same(claims.claim('b', U, 3n), { holder: undefined, promoted: [] })
  t.ok(claims.holds('b'))
  t.notOk(claims.holds('a'))
})
