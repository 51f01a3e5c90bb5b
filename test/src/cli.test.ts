/**
 * The built `cdn` binary: what a user gets from `npx cdn` after `npm run setup`, and from an
 * installed package (node_modules/open-cdn): its version, its help, and how it refuses and fails
 * (one line, a code, exit 2 for usage and 1 for a failure, never a stack).
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { deadUrl } from '../helpers/steering.js'
import { root } from '../helpers/repo.js'

const cli = join(root, 'dist/src/cli/main.js')
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
const runEnv = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })

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

t.test(
  'cdn --version prints the package version, from the build and from an installed package',
  async (t) => {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
    for (const flag of ['--version', '-v']) {
      const r = run(flag)
      t.equal(r.status, 0, r.stderr)
      t.equal(r.stdout, `${version}\n`, `cdn ${flag}`)
    }
    // node_modules/open-cdn as npm lays it out: package.json beside dist/, run from elsewhere.
    const pkg = join(t.testdir(), 'node_modules', 'open-cdn')
    mkdirSync(pkg, { recursive: true })
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'open-cdn', version: '9.8.7-installed' }))
    cpSync(join(root, 'dist/src'), join(pkg, 'dist/src'), { recursive: true })
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'))
    const installed = spawnSync(process.execPath, [join(pkg, 'dist/src/cli/main.js'), '--version'], {
      encoding: 'utf8',
      cwd: t.testdirName,
    })
    t.equal(installed.status, 0, installed.stderr)
    t.equal(installed.stdout, '9.8.7-installed\n', "the installed package's own version")
  },
)

t.test('usage errors: one line with the command and its code, exit 2, for every command', async (t) => {
  const cases: [string[], RegExp][] = [
    [['demo', 'stray'], /^cdn demo: unexpected argument "stray" .*\[CDN_ERR_CONFIG\]\n$/],
    [['edge', '--upstream', 'http://127.0.0.1:9', 'extra'], /^cdn edge: unexpected argument "extra" /],
    [['demo', '--tls=maybe'], /^cdn demo: invalid configuration:\n {2}--tls: expected true or false/],
    [['demo', '--tls', 'no', '--check', 'stray'], /^cdn demo: unexpected argument "stray"/],
    [
      ['prefill', '--token', 'T', 'a'],
      /^cdn prefill: --edge URL or --all-edges STEERING_URL is required \[CDN_ERR_CONFIG\]\n$/,
    ],
    [
      ['prefill', '--edge', 'http://127.0.0.1:9', 'a'],
      /^cdn prefill: invalid configuration:\n {2}--token: required \(or set CDN_ADMIN_TOKEN\) \[CDN_ERR_CONFIG\]\n$/,
    ],
    [
      ['ingest', 'a.mp4', '--title', 'a'],
      /^cdn ingest: give exactly one of --store DIR .*\[CDN_ERR_CONFIG\]\n$/,
    ],
    [
      ['purge', '--edge', 'http://127.0.0.1:9', '--token', 'T'],
      /^cdn purge: name at least one TITLE \[CDN_ERR_CONFIG\]\n$/,
    ],
    [
      ['status', '--steering', 'ftp://x'],
      /^cdn status: invalid configuration:\n {2}--steering: expected an http\(s\) URL/,
    ],
    [['origin', 'serve', '--store', 'x'], /^cdn origin: unexpected argument "serve" /],
  ]
  for (const [args, said] of cases) {
    const r = run(...args)
    t.equal(r.status, 2, `cdn ${args.join(' ')}: exit 2`)
    t.match(r.stderr, said, `cdn ${args.join(' ')}`)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack')
  }
})

t.test('a bad environment variable is refused at start, naming it', async (t) => {
  const r = runEnv({ CDN_STEERING_FAIL_AFTER: 'abc' }, 'steering', '--fleet', 'nonexistent.json')
  t.equal(r.status, 2)
  t.equal(
    r.stderr,
    'cdn steering: invalid configuration:\n  CDN_STEERING_FAIL_AFTER: expected an integer (got "abc") [CDN_ERR_CONFIG]\n',
  )
  const demo = runEnv({ CDN_DEMO_CHECK: 'perhaps' }, 'demo')
  t.equal(demo.status, 2)
  t.match(demo.stderr, /CDN_DEMO_CHECK: expected true or false/)
})

t.test('an edge that is down: one line naming the request and the cause, exit 1, no stack', async (t) => {
  const dead = await deadUrl()
  const r = run('purge', '--edge', dead, '--token', 'T', 'feature')
  t.equal(r.status, 1)
  t.equal(
    r.stderr,
    `cdn purge: DELETE ${dead}/admin/cache/vod/feature: connect ECONNREFUSED ${dead.slice(7)} [CDN_ERR_UPSTREAM]\n`,
  )
})
