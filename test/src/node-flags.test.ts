/**
 * The V8 flags every `cdn` server is started with (src/cli/node-flags.ts): each launcher carries
 * them, and an edge started without them says so. Real processes, the built binary.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { NODE_FLAGS, startedWithNodeFlags } from '../../src/cli/node-flags.js'
import { root } from '../helpers/repo.js'

const cli = join(root, 'dist/src/cli/main.js')

t.test('the bin and the image start node with every flag', async (t) => {
  const shebang = readFileSync(cli, 'utf8').split('\n')[0]!
  t.match(shebang, /^#!\/usr\/bin\/env -S node /, 'the bin passes flags through env -S')
  const entry = readFileSync(join(root, 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT'))!
  for (const f of NODE_FLAGS) {
    t.ok(shebang.split(' ').includes(f), `the shebang carries ${f}`)
    t.ok(entry.includes(`"${f}"`), `the Dockerfile's ENTRYPOINT carries ${f}`)
  }
})

t.test('startedWithNodeFlags reads execArgv', async (t) => {
  t.equal(startedWithNodeFlags([...NODE_FLAGS, '--enable-source-maps']), true)
  t.equal(startedWithNodeFlags(['--enable-source-maps']), false)
})

/** Starts `cdn edge` with these node flags; resolves with its stderr once it listens, then stops it. */
async function edgeStderr(t: Test, nodeFlags: readonly string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cdn-flags-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn(
    process.execPath,
    [...nodeFlags, cli, 'edge', '--port', '0', '--upstream', 'http://127.0.0.1:9', '--cache-dir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  let err = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8')
      if (/listening on/.test(err) && err.endsWith('\n')) resolve()
    })
    void exited.then((code) => reject(new Error(`edge exited (${code}) before listening: ${err}`)))
  })
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'the edge stops cleanly')
  return err
}

t.test('an edge started without the flags warns, once; with them it does not', async (t) => {
  const bare = await edgeStderr(t, [])
  t.equal(bare.match(/warning: node was started without --initial-old-space-size=128/g)?.length, 1)
  const flagged = await edgeStderr(t, NODE_FLAGS)
  t.match(flagged, /listening on/)
  t.notMatch(flagged, /warning/)
})
