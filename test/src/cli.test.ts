/** The built `cdn` binary: what a user gets from `npx cdn` after `npm run setup`. */
import { spawnSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/src/cli/main.js')
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })

t.test('cdn --help lists every command', async (t) => {
  const r = run('--help')
  t.equal(r.status, 0)
  for (const c of ['origin', 'edge', 'steering', 'ingest', 'prefill', 'purge', 'demo']) t.match(r.stdout, c)
})

t.test('every subcommand documents its flags', async (t) => {
  for (const c of ['origin', 'edge', 'steering', 'ingest', 'prefill', 'purge', 'demo']) {
    const r = run(c, '--help')
    t.equal(r.status, 0, `${c} --help exits 0`)
    t.match(r.stdout, /Usage: cdn /, `${c} --help prints usage`)
    t.match(r.stdout, /--config FILE/, `${c} --help lists --config`)
  }
})

t.test('an unknown command is refused', async (t) => {
  const r = run('teleport')
  t.equal(r.status, 2)
  t.match(r.stderr, /unknown command "teleport"/)
})
