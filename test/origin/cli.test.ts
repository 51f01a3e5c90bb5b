/** The built `cdn origin` and `cdn ingest` commands: help, and a failing ingest's exit code. */
import { spawnSync } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { corruptSource } from '../helpers/media.js'
import { tempDir } from '../helpers/origin.js'
import { cli } from '../helpers/repo.js'

const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })

t.test('cdn origin --help documents every flag', async (t) => {
  const r = run('origin', '--help')
  t.equal(r.status, 0)
  for (const flag of [
    '--port',
    '--host',
    '--store',
    '--ingest-dir',
    '--admin-token',
    '--log-level',
    '--samples',
  ])
    t.match(r.stdout, flag)
})

t.test('cdn ingest --help documents every flag', async (t) => {
  const r = run('ingest', '--help')
  t.equal(r.status, 0)
  for (const flag of [
    'SOURCE',
    '--title',
    '--store',
    '--origin',
    '--token',
    '--ladder',
    '--format',
    '--segment-seconds',
  ])
    t.match(r.stdout, flag)
})

t.test('cdn ingest of a corrupt file exits non-zero with the reason and publishes nothing', async (t) => {
  const dir = await tempDir(t)
  const bad = await corruptSource(dir)
  const r = run('ingest', bad, '--title', 'bad', '--store', join(dir, 'store'))
  t.equal(r.status, 1)
  t.match(r.stdout, /FAILED: .*Invalid data.*CDN_ERR_BAD_SOURCE/)
  t.same(await readdir(join(dir, 'store', 'titles')), [])
})

t.test('cdn ingest refuses bad usage, as every command: one line, its code, exit 2', async (t) => {
  const neither = run('ingest', 'x.mp4', '--title', 'a')
  t.equal(neither.status, 2, 'needs --store or --origin')
  t.equal(
    neither.stderr,
    'cdn ingest: give exactly one of --store DIR (local) or --origin URL (remote) [CDN_ERR_CONFIG]\n',
  )
  const two = run('ingest', 'x.mp4', 'y.mp4', '--title', 'a', '--store', '/tmp/x')
  t.equal(two.status, 2)
  t.match(two.stderr, /^cdn ingest: expected exactly one SOURCE .*\[CDN_ERR_CONFIG\]\n$/)
  // The origin's /jobs API takes nothing but its bearer token: refused before any request.
  const tokenless = run('ingest', 'x.mp4', '--title', 'a', '--origin', 'http://127.0.0.1:9')
  t.equal(tokenless.status, 2)
  t.equal(
    tokenless.stderr,
    'cdn ingest: --token: required with --origin (or set CDN_ADMIN_TOKEN) [CDN_ERR_CONFIG]\n',
  )
  t.not(run('ingest', 'x.mp4', '--title', 'Bad!', '--store', '/tmp/x').status, 0)
  const r = run('origin', '--port', 'abc')
  t.equal(r.status, 2)
  t.match(r.stderr, /^cdn origin: invalid configuration:\n {2}--port: /)
})
