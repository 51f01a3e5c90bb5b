import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { command } from '../../../src/cli/prefill.js'
import { tempDir } from '../../helpers/origin.js'
import { PLACES, startSteering } from '../../helpers/steering.js'
import { routesApp, TOKEN } from './app.js'
import { fixture } from './setup.js'

async function run(argv: string[], tty = false) {
  const stdout = Object.assign(new PassThrough(), { isTTY: tty, columns: 100 })
  const stderr = new PassThrough()
  let out = ''
  stdout.on('data', (c) => {
    out += c
  })
  const code = await command.run({ argv, env: {}, stdout, stderr, stopSignal: new Promise(() => {}) })
  return { code, out }
}

t.test('cdn prefill TITLE... starts a job and follows it with plain lines off a terminal', async (t) => {
  const f = await fixture(t)
  const jobs = await f.jobs(f.target())
  const { url } = await routesApp(t, jobs)
  const r = await run(['--edge', url, '--token', TOKEN, '--poll-interval', '100ms', 'alpha', 'beta'])
  t.equal(r.code, 0, r.out)
  t.match(r.out, /: job pf-/)
  t.match(r.out, /prefill pf-[^:]+: 100%/)
  t.match(r.out, /done, [\d.]+ [kM]B fetched/)
  t.match(r.out, /alpha\s+complete/)
  t.notOk(r.out.includes('\x1b['), 'no terminal escapes in plain mode')

  const dry = await run([
    '--edge',
    url,
    '--token',
    TOKEN,
    '--dry-run',
    '--max-bytes-per-second',
    '1MB',
    'alpha',
    'ghost',
  ])
  t.equal(dry.code, 0)
  t.match(dry.out, /alpha\s+fill/)
  t.match(dry.out, /ghost\s+error .*unknown title ghost/)
  t.match(dry.out, /s at the rate cap/)

  const bad = await run(['--edge', url, '--token', TOKEN, 'ghost'])
  t.equal(bad.code, 1, 'a failed title is a non-zero exit')
  t.match(bad.out, /ghost\s+failed\s+0 B\s+unknown title ghost/)
  t.match(bad.out, /: failed \(0 complete, 1 failed, 0 left out\)\n/, 'the job failed, not completed')
})

t.test('--popularity FILE and --all-edges from steering, with a bar on a terminal', async (t) => {
  const a = await fixture(t)
  const b = await fixture(t)
  const ja = await a.jobs(a.target())
  const jb = await b.jobs(b.target())
  const ea = await routesApp(t, ja)
  const eb = await routesApp(t, jb)
  const steering = await startSteering(t, [
    { id: 'e1', url: ea.url, site: 'rome', ...PLACES.rome },
    { id: 'e2', url: eb.url, site: 'milan', ...PLACES.milan },
  ])
  const dir = await tempDir(t)
  const file = join(dir, 'popular.json')
  await writeFile(
    file,
    JSON.stringify({
      popularity: [
        { title: 'beta', weight: 0.2, score: 3, requests: 9 },
        { title: 'alpha', weight: 0.8 },
      ],
    }),
  )
  const r = await run(
    ['--all-edges', steering.url, '--token', TOKEN, '--popularity', file, '--poll-interval', '100ms'],
    true,
  )
  t.equal(r.code, 0, r.out)
  t.match(r.out, /prefill 2 edges \[#+-*\]/)
  t.ok(r.out.includes('\r\x1b[2K'), 'redrawn in place on a terminal')
  for (const jobs of [ja, jb]) {
    const [v] = jobs.list()
    t.same(
      v!.titles.map((x) => [x.title, x.state]),
      [
        ['alpha', 'complete'],
        ['beta', 'complete'],
      ],
      'ranked by weight',
    )
  }
  const none = await run(['--edge', ea.url, '--token', TOKEN]).catch((e) => e)
  t.match(none, { code: 'CDN_ERR_CONFIG', message: /TITLE\.\.\. or --popularity/ })
  const wrong = await run(['--edge', ea.url, '--token', 'nope', 'alpha']).catch((e) => e)
  t.match(wrong, { message: /401/ })
})
