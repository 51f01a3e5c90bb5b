import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  fsyncTree,
  isTempPath,
  produceFileAtomic,
  renameDurably,
  tempPathFor,
  writeFileAtomic,
} from '../../../src/fs/atomic.js'

t.test('writeFileAtomic creates the directory, replaces whole, leaves no temp file', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'a', 'b', 'x.json')
  await writeFileAtomic(file, '{"v":1}')
  t.equal(readFileSync(file, 'utf8'), '{"v":1}')
  await writeFileAtomic(file, Buffer.from('{"v":2}'))
  t.equal(readFileSync(file, 'utf8'), '{"v":2}')
  t.same(readdirSync(join(dir, 'a', 'b')), ['x.json'])
})

t.test('concurrent writers of one file: the last rename wins, whole', async (t) => {
  const file = join(t.testdir(), 'x.txt')
  const bodies = Array.from({ length: 8 }, (_, i) => String(i).repeat(10_000))
  await Promise.all(bodies.map((b) => writeFileAtomic(file, b)))
  t.ok(bodies.includes(readFileSync(file, 'utf8')))
  t.same(readdirSync(join(file, '..')), ['x.txt'])
})

t.test('a failed producer leaves the target untouched and no temp file', async (t) => {
  const dir = t.testdir({ 'out.mp4': 'old' })
  const file = join(dir, 'out.mp4')
  let seen = ''
  await t.rejects(
    produceFileAtomic(file, async (tmp) => {
      seen = tmp
      writeFileSync(tmp, 'half')
      throw new Error('ffmpeg died')
    }),
    /ffmpeg died/,
  )
  t.equal(readFileSync(file, 'utf8'), 'old')
  t.ok(seen.endsWith('.mp4'), 'the temp name keeps the extension (tools pick the format from it)')
  t.ok(isTempPath(seen), 'a scan at start recognises it')
  t.notOk(existsSync(seen))
  t.same(readdirSync(dir), ['out.mp4'])
})

t.test('a producer that writes nothing is an error, not an empty file', async (t) => {
  const file = join(t.testdir(), 'x')
  await t.rejects(
    produceFileAtomic(file, async () => undefined),
    { code: 'ENOENT' },
  )
  t.notOk(existsSync(file))
})

t.test('temp names: beside the target, recognisable, unique', async (t) => {
  const a = tempPathFor('/d/title.json')
  t.match(a, /^\/d\/\.title\.json\.tmp-\d+-[0-9a-f]{8}\.json$/)
  t.not(a, tempPathFor('/d/title.json'))
  t.notOk(isTempPath('title.json'))
  t.notOk(isTempPath('abc.json'))
})

t.test('a staged tree is synced and renamed into place', async (t) => {
  const dir = t.testdir({ staged: { 'a.txt': 'a', sub: { 'b.txt': 'b' } } })
  await fsyncTree(join(dir, 'staged'))
  await renameDurably(join(dir, 'staged'), join(dir, 'final'))
  t.equal(readFileSync(join(dir, 'final', 'sub', 'b.txt'), 'utf8'), 'b')
  t.notOk(existsSync(join(dir, 'staged')))
})
