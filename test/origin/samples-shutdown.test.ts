/**
 * `cdn origin --samples` closing on SIGTERM while a sample's source is being generated: the
 * close aborts the generation, its ffmpeg is killed (not left encoding an hour of video), the
 * half-written source is removed, and the process exits.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { pidAlive } from '../../src/fs/owner.js'
import { tempDir } from '../helpers/origin.js'
import { until } from '../helpers/wait.js'
import { cli } from '../helpers/repo.js'

/** The pids of `pid`'s children whose command line holds `text`. */
function childrenWith(pid: number, text: string): number[] {
  const ps = spawnSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' })
  return ps.stdout
    .split('\n')
    .filter((l) => l.includes(text))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
}

t.test('SIGTERM during a sample source generation: ffmpeg killed, prompt exit', async (t) => {
  const store = join(await tempDir(t), 'store')
  const origin = spawn(
    process.execPath,
    [cli, 'origin', '--store', store, '--port', '0', '--samples', 'long:3600', '--sample-size', '320x180'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = once(origin, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => {
    if (origin.exitCode === null && origin.signalCode === null) origin.kill('SIGKILL')
  })
  const log: string[] = []
  const lines = createInterface({ input: origin.stdout! })
  const started = new Promise<void>((res) =>
    lines.on('line', (line) => {
      log.push(line)
      if (line.includes('sample title: generating its source')) res()
    }),
  )
  await started
  let ffmpeg: number[] = []
  // The encode itself (fluent-ffmpeg first runs ffmpeg and ffprobe to check capabilities).
  await until(() => (ffmpeg = childrenWith(origin.pid!, join(store, 'sources'))).length > 0, 50)
  t.teardown(() => {
    for (const pid of ffmpeg) if (pidAlive(pid)) process.kill(pid, 'SIGKILL')
  })

  origin.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'the origin exits cleanly')
  t.same(
    ffmpeg.filter((pid) => pidAlive(pid)),
    [],
    'its ffmpeg is not running (killed and reaped before the exit)',
  )
  t.ok(
    log.some((l) => l.includes('generation stopped by the close')),
    'the stop is logged as such, not as a failure',
  )
  t.same(await readdir(join(store, 'sources')), [], 'the half-written source is removed')
})
