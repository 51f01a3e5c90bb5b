/**
 * One edge per cache directory: a second edge on the same --cache-dir (in this process or
 * another) is refused with CDN_ERR_CACHE_DIR_LOCKED naming the holder's pid, and touches none
 * of the first one's files; a lock left by an edge that is gone is taken over.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LOCK_FILE, processStart, STALE_MS } from '../../../edge/cache/dir-lock.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { tempDir } from '../../helpers/edge.js'
import { until } from '../../helpers/wait.js'
import { cli } from '../../helpers/repo.js'

const open = (dir: string) =>
  DiskStore.open({ dir, maxBytes: 1_000_000, protectedShare: 0.5, maxFds: 8, heuristicMaxMs: 86_400_000 })

t.test('a second store in the same process is refused until the first closes', async (t) => {
  const dir = tempDir(t)
  const first = await open(dir)
  await t.rejects(open(dir), {
    code: 'CDN_ERR_CACHE_DIR_LOCKED',
    message: new RegExp(`pid ${process.pid}\\b`),
    details: { pid: process.pid },
  })
  await first.close()
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'a closed store leaves no lock')
  const again = await open(dir)
  await again.close()
})

t.test(
  'another edge process on the same directory exits with the holder named, deleting nothing',
  async (t) => {
    const dir = tempDir(t)
    const first = await open(dir)
    t.teardown(() => first.close())
    // A write in progress of the first edge: the second must not take it for a crash's leftover.
    const bucket = join(dir, 'objects', 'x', 'ab')
    mkdirSync(bucket, { recursive: true })
    const temp = join(bucket, `.${'ab'.repeat(32)}.1234.tmp`)
    writeFileSync(temp, 'half an object')

    const child = spawn(
      process.execPath,
      [
        cli,
        'edge',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--upstream',
        'http://127.0.0.1:9',
        '--cache-dir',
        dir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    t.not(code, 0, 'the second edge did not start')
    t.match(stderr, /CDN_ERR_CACHE_DIR_LOCKED/)
    t.match(stderr, new RegExp(`pid ${process.pid}\\b`), 'it names the pid holding the directory')
    t.ok(existsSync(temp), "the first edge's temp file is still there")
    t.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid, 'the lock is still ours')
  },
)

t.test('a lock left by a process that is gone is taken over', async (t) => {
  const dir = tempDir(t)
  // A real pid that no longer runs.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  })
  const pid = Number(gone.stdout)
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), started: null, nonce: 'dead' }))
  await takenOverFromDead(t, dir, pid)
})

t.test(
  'a lock left by a process that is dead but not yet reaped (a zombie) is taken over',
  { skip: existsSync('/proc/self/stat') ? false : 'no /proc here' },
  async (t) => {
    const dir = tempDir(t)
    // `sleep 0` exits at once; its parent then execs a sleep that never waits for it, so it stays a
    // zombie: what a killed edge is until its parent (a supervisor, an init that reaps late) reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 1000'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    t.teardown(() => {
      parent.kill('SIGKILL')
    })
    let out = ''
    parent.stdout.on('data', (d) => (out += d))
    await until(() => out.includes('\n'))
    const pid = Number(out.trim())
    const state = () => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
      } catch {
        return undefined
      }
    }
    await until(() => state() === 'Z')
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid, host: hostname(), started: processStart(pid), nonce: 'zombie' }),
    )
    await takenOverFromDead(t, dir, pid)
  },
)

t.test(
  "another host's lock holds while its heartbeat is fresh, and is taken over once it stops",
  async (t) => {
    const dir = tempDir(t)
    const lock = join(dir, LOCK_FILE)
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere', started: null, nonce: 'remote' }))
    await t.rejects(open(dir), { code: 'CDN_ERR_CACHE_DIR_LOCKED', message: /pid 1 on host elsewhere/ })
    const old = new Date(Date.now() - 2 * STALE_MS)
    utimesSync(lock, old, old)
    const store = await open(dir)
    t.equal(JSON.parse(readFileSync(lock, 'utf8')).host, hostname(), 'taken over')
    await store.close()
  },
)

t.test('a damaged lock file is judged by its age', async (t) => {
  const dir = tempDir(t)
  const lock = join(dir, LOCK_FILE)
  writeFileSync(lock, 'not json')
  await t.rejects(open(dir), { code: 'CDN_ERR_CACHE_DIR_LOCKED', message: /another process/ })
  const old = new Date(Date.now() - 2 * STALE_MS)
  utimesSync(lock, old, old)
  const store = await open(dir)
  await store.close()
})

/** Opens a store over a lock naming `pid`: the lock is taken over as a dead process's, and logged. */
async function takenOverFromDead(t: Test, dir: string, pid: number): Promise<void> {
  const store = await open(dir)
  const lines: Array<Record<string, unknown>> = []
  store.attachLog({ warn: () => undefined, info: (obj) => lines.push(obj) })
  t.match(lines, [{ previous: { pid, reason: 'pid not alive' } }], 'the take-over is logged')
  t.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid)
  await store.close()
}
