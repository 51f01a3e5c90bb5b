/**
 * Several processes on one local store, as the docs run them: an origin, `cdn ingest --store`
 * and `cdn origin retire` on the same directory. Real separate processes (the compiled store),
 * started together on a signal from the test: publishes and retires racing on one title lose no
 * version (the title's lock file, src/fs/file-lock.ts), and a store opening removes what a
 * process killed with SIGKILL left in staging, but not a live process's work (leftovers.ts), and
 * stops the ffmpeg a killed origin left encoding.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { ContentStore, type TitleEntry } from '../../origin/store/content-store.js'
import { lockPathFor } from '../../src/fs/file-lock.js'
import { tempDir } from '../helpers/origin.js'
import { stageVersion, testVersionId } from '../helpers/store-fixtures.js'
import { until } from '../helpers/wait.js'
import { root } from '../helpers/repo.js'

const repo = root
const dist = (p: string) => JSON.stringify(join(repo, 'dist', p))

/** A child that opens the store, says `ready`, waits for a line on stdin, then works. */
const RACER = `import { ContentStore } from ${dist('origin/store/content-store.js')}
import { retireVersions } from ${dist('origin/store/retire.js')}
import { once } from 'node:events'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
const [root, role, name, rounds] = process.argv.slice(2)
const store = await new ContentStore(root).init()
process.stdout.write('ready\\n')
await once(process.stdin, 'data')
for (let i = 0; i < Number(rounds); i++) {
  if (role === 'retire') {
    await retireVersions(store, 'race', { keep: 1000, graceMs: 3600_000, now: new Date() })
    continue
  }
  const id = 'v' + name + '-' + i
  const dir = await store.createStaging(id)
  await mkdir(join(dir, '240p'))
  await writeFile(join(dir, 'master.m3u8'), '#EXTM3U\\n')
  const version = { id, createdAt: new Date().toISOString(), format: 'fmp4', segmentSeconds: 4, durationSec: 1, bytes: 1, renditions: [] }
  await store.publish('race', dir, version, new Date())
  process.stdout.write('published ' + id + '\\n')
}
`

/** A child that leaves a job's staging and a sample source's temp file, then waits to be killed. */
const WORKER = `import { ContentStore } from ${dist('origin/store/content-store.js')}
import { tempPathFor } from ${dist('src/fs/atomic.js')}
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
const store = await new ContentStore(process.argv[2]).init()
const staging = await store.createStaging(process.argv[3])
await writeFile(join(staging, 'seg-00001.m4s'), 'x')
const source = tempPathFor(join(store.sourcesDir(), 'sample.mp4'))
await mkdir(store.sourcesDir(), { recursive: true })
await writeFile(source, 'x')
process.stdout.write(JSON.stringify({ staging, source }) + '\\n')
process.stdin.resume()
`

/** The lines a child writes, one at a time, as they come. */
function lines(proc: ChildProcess): AsyncIterableIterator<string> {
  return createInterface({ input: proc.stdout! })[Symbol.asyncIterator]()
}

async function lineMatching(it: AsyncIterableIterator<string>, re: RegExp): Promise<string> {
  for (let r = await it.next(); !r.done; r = await it.next()) if (re.test(r.value)) return r.value
  throw new Error(`the child ended before writing a line matching ${re}`)
}

function node(t: Test, args: string[]): ChildProcess {
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  return proc
}

t.test('publishes and retires racing from separate processes on one title lose no version', async (t) => {
  const dir = await tempDir(t)
  const root = join(dir, 'store')
  const store = await new ContentStore(root).init()
  const seed = await stageVersion(store, testVersionId())
  await store.publish('race', seed.dir, seed.version, new Date())
  const racer = join(dir, 'racer.mjs')
  await writeFile(racer, RACER)
  const rounds = 12
  const roles = [
    ['publish', 'a'],
    ['publish', 'b'],
    ['publish', 'c'],
    ['retire', 'r'],
  ]
  const procs = roles.map(([role, name]) => node(t, [racer, root, role!, name!, String(rounds)]))
  const exits = procs.map((p) => once(p, 'exit') as Promise<[number | null]>)
  const outputs = procs.map((p) => lines(p))
  await Promise.all(outputs.map((it) => lineMatching(it, /^ready$/)))
  // Every child is past its start: released together, they race from their first swap.
  for (const p of procs) p.stdin!.end('go\n')
  const published: string[] = []
  await Promise.all(
    procs.map(async (p, i) => {
      for await (const line of outputs[i]!) if (line.startsWith('published ')) published.push(line.slice(10))
      const [code] = await exits[i]!
      t.equal(code, 0, `${roles[i]!.join(' ')} exited cleanly`)
    }),
  )
  t.equal(published.length, 3 * rounds, 'every publish reported success')
  const entry = JSON.parse(await readFile(join(root, 'titles', 'race', 'title.json'), 'utf8')) as TitleEntry
  const listed = new Set(entry.versions.map((v) => v.id))
  t.same(
    published.filter((id) => !listed.has(id)),
    [],
    'every version whose publish succeeded is in the pointer',
  )
  t.ok(listed.has(seed.version.id), 'and the seed version too')
  t.ok(
    ['a', 'b', 'c'].some((n) => entry.current === `v${n}-${rounds - 1}`),
    'current is the last version of one of the publishers',
  )
})

t.test('a lock left by a process killed while holding it is taken over once stale', async (t) => {
  const root = join(await tempDir(t), 'store')
  const store = await new ContentStore(root).init()
  const lock = lockPathFor(join(store.titleDir('stale'), 'title.json'))
  await mkdir(lock, { recursive: true })
  const longAgo = new Date(Date.now() - 3600_000)
  await utimes(lock, longAgo, longAgo)
  const v = await stageVersion(store, testVersionId())
  await store.publish('stale', v.dir, v.version, new Date())
  t.equal((await store.readTitle('stale'))?.current, v.version.id)
  t.notOk(existsSync(lock), 'the lock is released after the swap')
})

t.test('an origin starting removes what a killed process left, not a live process’s work', async (t) => {
  const dir = await tempDir(t)
  const root = join(dir, 'store')
  await new ContentStore(root).init()
  const worker = join(dir, 'worker.mjs')
  await writeFile(worker, WORKER)
  const start = async (label: string) => {
    const proc = node(t, [worker, root, label])
    return {
      proc,
      ...(JSON.parse(await lineMatching(lines(proc), /^\{/)) as { staging: string; source: string }),
    }
  }
  const killed = await start('gone-v1')
  const live = await start('live-v1')
  const killedExit = once(killed.proc, 'exit')
  killed.proc.kill('SIGKILL')
  await killedExit
  // A pointer write cut short: its temp file beside title.json, the title's lock free.
  const titleTemp = join(root, 'titles', 'cut', '.title.json.tmp-1-0123abcd.json')
  await mkdir(dirname(titleTemp), { recursive: true })
  await writeFile(titleTemp, '{')

  const origin = node(t, [join(repo, 'dist/src/cli/main.js'), 'origin', '--store', root, '--port', '0'])
  // The sweep's line comes before the listening one, or never.
  const line = await lineMatching(lines(origin), /store: removed|Server listening/)
  t.same(
    (JSON.parse(line) as { leftovers?: unknown }).leftovers,
    { removed: 3, kept: 2, orphansKilled: 0 },
    'counted in the log',
  )
  t.notOk(existsSync(killed.staging), "the killed process's staging is removed")
  t.notOk(existsSync(killed.source), "and its sample source's temp file")
  t.notOk(existsSync(titleTemp), 'and the temp file of a pointer write cut short')
  t.ok(existsSync(live.staging), "a live process's staging is kept")
  t.ok(existsSync(live.source), "and its sample source's temp file")
  const originExit = once(origin, 'exit') as Promise<[number | null]>
  origin.kill('SIGTERM')
  t.equal((await originExit)[0], 0, 'the origin closes on SIGTERM')
  const liveExit = once(live.proc, 'exit')
  live.proc.stdin!.end()
  await liveExit
})

/** True once `pid` has ended (gone, or a zombie its new parent has not reaped yet). */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
}

t.test('the ffmpeg an origin killed with SIGKILL left encoding is killed at the next start', async (t) => {
  const root = join(await tempDir(t), 'store')
  const origin = node(t, [
    ...[join(repo, 'dist/src/cli/main.js'), 'origin', '--store', root, '--port', '0'],
    ...['--samples', 'orphan:3600', '--sample-size', '320x180'],
  ])
  let ffmpeg: number[] = []
  await until(() => {
    const ps = spawnSync('ps', ['--ppid', String(origin.pid), '-o', 'pid=,args='], { encoding: 'utf8' })
    ffmpeg = ps.stdout
      .split('\n')
      .filter((l) => l.includes(join(root, 'sources')))
      .map((l) => Number(l.trim().split(/\s+/)[0]))
    return ffmpeg.length > 0
  }, 50)
  // Its output opened (ffmpeg opens it once its inputs are probed): a leftover to remove.
  await until(async () => (await readdir(join(root, 'sources'))).length > 0)
  t.teardown(() => {
    for (const pid of ffmpeg) if (!ended(pid)) process.kill(pid, 'SIGKILL')
  })
  const killed = once(origin, 'exit')
  origin.kill('SIGKILL')
  await killed
  t.notOk(ended(ffmpeg[0]!), 'the orphan encodes on')
  const store = await new ContentStore(root).init()
  t.same(store.leftovers, { removed: 1, kept: 0, orphansKilled: 1 }, 'the next start kills it')
  await until(() => ended(ffmpeg[0]!))
  t.same(await readdir(join(root, 'sources')), [], 'and removes its half-written source')
})
