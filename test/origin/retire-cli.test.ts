/**
 * `cdn origin retire` on a real local store: the versions beyond --keep leave the pointer and,
 * with no grace period, are deleted; a title that is not there fails with its code; wrong
 * arguments are usage errors.
 */
import { join } from 'node:path'
import t from 'tap'
import { ContentStore } from '../../origin/store/content-store.js'
import { command } from '../../src/cli/origin.js'
import { tempDir } from '../helpers/origin.js'
import { readPath, stageVersion, testVersionId } from '../helpers/store-fixtures.js'
import { runCommand } from '../helpers/cli.js'

const run = (argv: string[]) => runCommand(command, argv)

t.test('cdn origin retire TITLE --keep 1 --grace 0', async (t) => {
  const root = join(await tempDir(t), 'store')
  const store = await new ContentStore(root).init()
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const s = await stageVersion(store, testVersionId())
    s.version.createdAt = new Date(Date.UTC(2026, 0, 1 + i)).toISOString()
    await store.publish('old', s.dir, s.version, new Date())
    ids.push(s.version.id)
  }
  const opts = ['--store', root, '--work-dir', join(root, '..', 'work')]
  const r = await run(['retire', 'old', ...opts, '--keep', '1', '--grace', '0'])
  t.equal(r.code, 0, r.err)
  const said = /^retire old: retired (.+); deleted (.+); waiting for the grace period none$/m.exec(r.out)
  t.ok(said, r.out)
  t.same(said![1]!.split(' ').sort(), [ids[0], ids[1]].sort(), 'the two older versions retired')
  t.same(said![2]!.split(' ').sort(), [ids[0], ids[1]].sort(), 'and deleted at once')
  const fresh = await new ContentStore(root).init()
  t.equal(await readPath(fresh, `/vod/old/${ids[0]}/240p/seg-00001.m4s`), undefined, 'the oldest is gone')
  t.ok(await readPath(fresh, `/vod/old/${ids[2]}/240p/seg-00001.m4s`), 'the newest is served')

  const missing = await run(['retire', 'none', ...opts])
  t.equal(missing.code, 1)
  t.match(missing.err, /\[CDN_ERR_NOT_FOUND\]/)
  t.notMatch(missing.err, root, 'no path in the message')

  t.equal((await run(['retire', ...opts])).code, 2, 'no TITLE')
  t.equal((await run(['serve', ...opts])).code, 2, 'an unexpected argument')
})
