/**
 * Which staging directories a store opening removes (origin/store/leftovers.ts, the owner rule of
 * src/fs/owner.ts), case by case, with names as createStaging makes them. The end-to-end case (a
 * process killed with SIGKILL, an origin starting) is in store-processes.test.ts.
 */
import { existsSync } from 'node:fs'
import { mkdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { LEGACY_AGE_MS, sweepWorkDir } from '../../origin/store/leftovers.js'
import { ManualClock } from '../../src/clock.js'
import { ownedName, ownerGone, ownerOf, processStart, thisOwner } from '../../src/fs/owner.js'
import { tempDir } from '../helpers/origin.js'

t.test('a staging name carries its owner; the rule tells a gone owner from a live one', async (t) => {
  const me = thisOwner()
  t.same(ownerOf(ownedName('intro-v1-0123abcd')), me)
  t.equal(ownerOf('intro-v1-0123abcd'), undefined, 'an untagged name has no owner')
  t.notOk(ownerGone(me), 'this process is alive')
  t.ok(ownerGone({ ...me, start: `${Number(me.start) + 1}` }), 'its pid, started at another time: gone')
  const parent = { ...me, pid: process.ppid, start: processStart(process.ppid) ?? '0' }
  t.notOk(ownerGone(parent), 'a live process')
  t.ok(ownerGone({ ...parent, start: `${Number(parent.start) + 1}` }), 'a reused pid: gone')
  t.notOk(
    ownerGone({ ...me, pid: 2 ** 22 + 1, host: me.host === '00000000' ? '11111111' : '00000000' }),
    'another host: never judged',
  )
})

t.test('sweepWorkDir removes the staging of gone owners and old untagged names only', async (t) => {
  const root = await tempDir(t)
  const clock = new ManualClock()
  const me = thisOwner()
  const staging = (name: string) => join(root, 'staging', name)
  const names = {
    mine: ownedName('mine-v1-00000000'),
    reused: `reused-v1-00000000.p${me.pid}-s${Number(me.start) + 1}-h${me.host}`,
    otherHost: `far-v1-00000000.p1-s1-h${me.host === '00000000' ? '11111111' : '00000000'}`,
    oldLegacy: 'old-v1-0123abcd',
    newLegacy: 'new-v1-0123abcd',
  }
  for (const n of Object.values(names)) await mkdir(staging(n), { recursive: true })
  const old = new Date(clock.now() - LEGACY_AGE_MS - 1)
  await utimes(staging(names.oldLegacy), old, old)
  const fresh = new Date(clock.now())
  await utimes(staging(names.newLegacy), fresh, fresh)

  t.same(await sweepWorkDir(root, clock.now()), { removed: 2, kept: 3, orphansKilled: 0 })
  t.ok(existsSync(staging(names.mine)), "this process's own job")
  t.notOk(existsSync(staging(names.reused)), 'an earlier process with this pid')
  t.ok(existsSync(staging(names.otherHost)), "another host's, which cannot be judged")
  t.notOk(existsSync(staging(names.oldLegacy)), 'untagged, older than a day')
  t.ok(existsSync(staging(names.newLegacy)), 'untagged, younger')
  t.same(
    await sweepWorkDir(join(root, 'none'), clock.now()),
    { removed: 0, kept: 0, orphansKilled: 0 },
    'no work dir yet',
  )
})
