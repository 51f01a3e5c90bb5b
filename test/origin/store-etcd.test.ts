/**
 * Two origins' stores on one Swift bucket (which has no conditional writes) with the catalogue
 * in etcd: both publish the same title at once, round after round. Each round both read the
 * same pointer revision before either swaps; exactly one swap wins, the loser's publish re-reads
 * and wins on its retry (swapWithRetry), no version is lost, and a third origin reading the
 * title meanwhile only ever sees whole versions. Job claims race the same way; neither the
 * pointer nor the claims are in the bucket.
 */
import t from 'tap'
import type { PointerRead } from '../../origin/store/store.js'
import type { S3Store } from '../../origin/store/s3-store.js'
import { requireEtcd } from '../helpers/etcd.js'
import { freshS3Url, openS3Store, requireS3 } from '../helpers/object-store.js'
import { stageVersion, startCliOrigin, testVersionId, wholeVersionOf } from '../helpers/store-fixtures.js'

interface Swap {
  who: string
  won: boolean
}

/**
 * Records every swap of `store`, and holds its first pointer read of a round until the other
 * racer has read too (`gate`), so both swap from the same revision.
 */
function instrument(
  store: S3Store,
  who: string,
  swaps: Swap[],
  gate: { wait?: (who: string) => Promise<void> },
) {
  const readPointer = store.readPointer.bind(store)
  const swapPointer = store.swapPointer.bind(store)
  store.readPointer = async (title: string): Promise<PointerRead> => {
    const r = await readPointer(title)
    await gate.wait?.(who)
    return r
  }
  store.swapPointer = async (...args: Parameters<S3Store['swapPointer']>) => {
    const won = await swapPointer(...args)
    swaps.push({ who, won })
    return won
  }
}

/** A gate both racers pass together, once each. */
function barrier(): (who: string) => Promise<void> {
  const arrived = new Set<string>()
  let release!: () => void
  const all = new Promise<void>((r) => (release = r))
  return async (who) => {
    if (arrived.has(who)) return
    arrived.add(who)
    if (arrived.size === 2) release()
    await all
  }
}

const versionId = () => testVersionId('20260102')

t.test('two origins on one Swift bucket, catalogue in etcd: one swap wins per round', async (t) => {
  const env = requireS3(t)
  const etcd = env && requireEtcd(t)
  if (!env || !etcd) return
  const url = freshS3Url()
  const [a, b, reader] = await Promise.all([
    openS3Store(t, env, { store: url, etcd }),
    openS3Store(t, env, { store: url, etcd }),
    openS3Store(t, env, { store: url, etcd }),
  ])
  t.same(
    [a.casMode, b.casMode, reader.casMode],
    ['etcd', 'etcd', 'etcd'],
    'Swift has no conditional PUT; the catalogue is in etcd',
  )
  const first = await stageVersion(a, versionId())
  await a.publish('race', first.dir, first.version, new Date())
  const published = [first.version.id]

  const swaps: Swap[] = []
  const gate: { wait?: (who: string) => Promise<void> } = {}
  instrument(a, 'a', swaps, gate)
  instrument(b, 'b', swaps, gate)

  let racing = true
  const seen = new Set<string>()
  const reading = (async () => {
    while (racing) seen.add(await wholeVersionOf(reader, 'race'))
  })()

  for (let round = 0; round < 3; round++) {
    const [sa, sb] = await Promise.all([stageVersion(a, versionId()), stageVersion(b, versionId())])
    published.push(sa.version.id, sb.version.id)
    swaps.length = 0
    gate.wait = barrier()
    const [ea, eb] = await Promise.all([
      a.publish('race', sa.dir, sa.version, new Date()),
      b.publish('race', sb.dir, sb.version, new Date()),
    ])
    const firsts = [swaps.find((s) => s.who === 'a')!, swaps.find((s) => s.who === 'b')!]
    t.equal(firsts.filter((s) => s.won).length, 1, `round ${round}: exactly one first swap won`)
    const loser = firsts.find((s) => !s.won)!.who
    t.same(
      swaps.filter((s) => s.who === loser).map((s) => s.won),
      [false, true],
      `round ${round}: the loser (${loser}) re-read and won its retry`,
    )
    t.equal(swaps.length, 3, `round ${round}: three swaps in all`)
    const final = (await reader.readTitle('race'))!
    const loserVersion = loser === 'a' ? sa.version.id : sb.version.id
    t.equal(final.current, loserVersion, `round ${round}: the last swap (the retry) is current`)
    t.equal((loser === 'a' ? ea : eb).current, loserVersion, 'and its publish returned that pointer')
    t.same(final.versions.map((v) => v.id).sort(), [...published].sort(), `round ${round}: no publish lost`)
  }
  racing = false
  await reading
  t.ok(seen.size >= 1, `the reader saw versions: ${[...seen].join(' ')}`)
  t.ok(
    [...seen].every((v) => published.includes(v)),
    'the reader only saw whole published versions',
  )

  t.same(
    (await reader.listTitles()).map((e) => e.id),
    ['race'],
    'listTitles reads etcd',
  )
  t.equal(await reader.readJson('titles/race/title.json'), undefined, 'no pointer object in the bucket')

  const claims = await Promise.all([
    a.writeJson('_cdn/jobs/job-1.claim', { owner: 'a' }, { create: true }),
    b.writeJson('_cdn/jobs/job-1.claim', { owner: 'b' }, { create: true }),
  ])
  t.equal(claims.filter(Boolean).length, 1, `one job claim won: ${JSON.stringify(claims)}`)
  t.same(await reader.listKeys('_cdn/jobs/'), [], 'claims are in etcd, not in the bucket')
})

t.test('two `cdn origin` processes, neither a follower, share the etcd catalogue', async (t) => {
  const env = requireS3(t)
  const etcd = env && requireEtcd(t)
  if (!env || !etcd) return
  const url = freshS3Url()
  const start = (id: string, how: 'flag' | 'env') =>
    startCliOrigin(t, env, url, id, {
      args: ['--s3-cas', 'etcd', ...(how === 'flag' ? ['--s3-etcd', etcd.join(',')] : [])],
      env: how === 'env' ? { CDN_S3_ETCD: etcd.join(',') } : {},
      logLevel: 'info',
    })
  const [o1, o2] = await Promise.all([start('o1', 'flag'), start('o2', 'env')])
  const store = await openS3Store(t, env, { store: url, etcd })
  const s = await stageVersion(store, versionId())
  await store.publish('shared', s.dir, s.version, new Date())
  for (const o of [o1, o2]) {
    t.match(o.log(), /the catalogue \(pointers, job claims\) in etcd/, 'the start log names the rule')
    const status = (await (await fetch(`${o.base}/status`)).json()) as { store: { casMode: string } }
    t.equal(status.store.casMode, 'etcd')
    const titles = (await (await fetch(`${o.base}/titles`)).json()) as { titles: { id: string }[] }
    t.same(
      titles.titles.map((x) => x.id),
      ['shared'],
      'the catalogue API lists what etcd holds',
    )
    const master = await fetch(`${o.base}/vod/shared/master.m3u8`)
    t.match(await master.text(), `${s.version.id}/240p/index.m3u8`, 'both serve the published version')
  }
})
