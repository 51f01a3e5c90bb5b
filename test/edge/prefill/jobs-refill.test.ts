/**
 * A title filled again is protected exactly as the new plan says: what an earlier job pinned and
 * the new plan leaves out goes back to ordinary LRU, and the plan's held objects are pinned
 * before any fetch.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { FillOptions } from '../../../edge/prefill/target.js'
import { finished, fixture, gets } from './setup.js'

/** Every object path of a title in the origin's store. */
async function objectPaths(store: string, title: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }))
      if (e.isDirectory()) await walk(join(dir, e.name), `${rel}/${e.name}`)
      else if (/\.(m4s|mp4)$|\/index\.m3u8$/.test(`${rel}/${e.name}`))
        out.push(`/vod/${title}${rel}/${e.name}`)
  }
  await walk(join(store, 'titles', title), '')
  return out.sort()
}

t.test('a refill keeps protected only what its plan keeps, and pins held objects first', async (t) => {
  const f = await fixture(t)
  const target = f.target()
  const fills: string[] = []
  const fill = target.fill.bind(target)
  // The job's fills (they pin: `protect`), not the planner's playlist reads.
  target.fill = (path: string, o?: FillOptions) => {
    if (o?.protect) fills.push(path)
    return fill(path, o)
  }
  const jobs = await f.jobs(target)
  const first = await jobs.submit({ titles: [{ title: 'alpha', rank: 0 }], source: 'titles', concurrency: 2 })
  t.equal((await finished(jobs, first.id)).state, 'completed')
  const alpha = await objectPaths(f.origin.store, 'alpha')
  for (const p of alpha) t.ok(target.isProtected(p), `${p} protected by the whole-title fill`)

  // Only one rendition is played and sessions stop at once: the plan keeps that rendition's
  // playlist, init and first segment of alpha, and beta's (fetched), with beta ranked first.
  const rendition = alpha[0]!.split('/')[4]!
  const keep = [`index.m3u8`, `init.mp4`].map((n) => alpha.find((p) => p.endsWith(`/${rendition}/${n}`))!)
  keep.push(alpha.filter((p) => p.includes(`/${rendition}/`) && p.endsWith('.m4s'))[0]!)
  const gotBefore = gets(target).length
  fills.length = 0
  const second = await jobs.submit({
    titles: [
      { title: 'beta', rank: 0, weight: 2 },
      { title: 'alpha', rank: 1, weight: 1 },
    ],
    source: 'popularity',
    concurrency: 1,
    viewing: {
      earlyStop: 1,
      earlyMeanSec: 0.001,
      minShare: 0.2,
      renditionShares: { [rendition]: 1 },
      weights: 'sessions',
    },
  })
  const v = await finished(jobs, second.id)
  t.equal(v.state, 'completed', v.reason ?? '')
  for (const p of alpha)
    t.equal(target.isProtected(p), keep.includes(p), `${p} ${keep.includes(p) ? 'kept' : 'released'}`)
  for (const p of alpha) t.ok(target.has(p), `${p} still held (released, not dropped)`)
  const betaGets = gets(target).slice(gotBefore)
  t.ok(betaGets.length > 0 && betaGets.every((g) => g.includes('/vod/beta/')), 'only beta fetched')
  // alpha's held objects were pinned before beta's first fetch, although beta ranks first.
  const firstBeta = fills.findIndex((p) => p.includes('/vod/beta/') && !p.endsWith('.m3u8'))
  t.ok(firstBeta > 0, "beta's objects were filled")
  const alphaFills = fills.map((p, i) => [p, i] as const).filter(([p]) => p.includes('/vod/alpha/'))
  t.same(
    alphaFills.map(([p]) => p).sort(),
    [...keep].sort(),
    "alpha's kept objects filled (pinned) once each",
  )
  t.ok(
    alphaFills.every(([, i]) => i < firstBeta),
    'held objects first',
  )
})
