/**
 * bench/lib/args.ts: every bench's flags are parsed strictly. `--help` is answered, an unknown
 * flag, a flag without its value and a malformed number are errors naming the flag; two real
 * entry points exit at once with code 0 on `--help` and 2 on a typo, without a stack trace.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { numberArg, parseBenchArgs, readNumber } from '../../bench/lib/args.js'

const USAGE = `Usage: npm run bench:x -- [flags]
  --quick       fewer rounds (default: off)
  --rounds N    rounds (default: 3)`
const CONFIG = { options: { quick: { type: 'boolean' }, rounds: { type: 'string' } } } as const

t.test('the parsed values, typed as parseArgs types them', async (t) => {
  const r = parseBenchArgs(USAGE, CONFIG, ['--quick', '--rounds', '5'])
  if (!('values' in r)) throw new Error(`expected values, got ${JSON.stringify(r)}`)
  const quick: boolean | undefined = r.values.quick
  const rounds: string | undefined = r.values.rounds
  t.same({ quick, rounds }, { quick: true, rounds: '5' })
  t.same(parseBenchArgs(USAGE, CONFIG, []), { values: {}, positionals: [] })
})

t.test('--help and -h ask for the usage', async (t) => {
  t.same(parseBenchArgs(USAGE, CONFIG, ['--help']), { help: true })
  t.same(parseBenchArgs(USAGE, CONFIG, ['--rounds', '2', '-h']), { help: true })
})

t.test('an unknown flag, a missing value, a stray argument: errors naming them', async (t) => {
  t.same(parseBenchArgs(USAGE, CONFIG, ['--round', '3']), { error: "Unknown option '--round'" })
  const missing = parseBenchArgs(USAGE, CONFIG, ['--rounds'])
  t.ok(
    'error' in missing && missing.error.includes("'--rounds"),
    `names --rounds: ${JSON.stringify(missing)}`,
  )
  const stray = parseBenchArgs(USAGE, CONFIG, ['3'])
  t.ok('error' in stray && stray.error.includes("'3'"), `names the argument: ${JSON.stringify(stray)}`)
  const valued = parseBenchArgs(USAGE, CONFIG, ['--quick=yes'])
  t.ok('error' in valued && valued.error.includes("'--quick'"), `names --quick: ${JSON.stringify(valued)}`)
})

t.test('a declared flag the usage does not list is the bench’s bug', async (t) => {
  t.throws(() => parseBenchArgs('Usage: npm run bench:x', CONFIG, []), /--quick/)
})

t.test('numbers: the default when absent, else a finite number within the rule', async (t) => {
  t.same(readNumber(undefined, '--rounds', 3), { value: 3 })
  t.same(readNumber('2.5', '--duration', 6), { value: 2.5 })
  t.same(readNumber('abc', '--rounds', 3), { error: "--rounds must be a number, got 'abc'" })
  t.same(readNumber('', '--rounds', 3), { error: "--rounds must be a number, got ''" })
  t.same(readNumber('Infinity', '--rounds', 3), { error: "--rounds must be a number, got 'Infinity'" })
  t.same(readNumber('1.5', '--rounds', 3, { integer: true, min: 1 }), {
    error: "--rounds must be an integer >= 1, got '1.5'",
  })
  t.same(readNumber('0', '--rounds', 3, { integer: true, min: 1 }), {
    error: "--rounds must be an integer >= 1, got '0'",
  })
  t.same(readNumber('30', '--hours', 24, { min: 1, max: 24 }), {
    error: "--hours must be a number >= 1 and <= 24, got '30'",
  })
  t.equal(numberArg('7', '--rounds', 3, { integer: true, min: 1 }), 7)
})

const entry = (path: string) => fileURLToPath(new URL(`../../bench/${path}`, import.meta.url))
const run = (path: string, args: string[]) =>
  spawnSync(process.execPath, [entry(path), ...args], { encoding: 'utf8', timeout: 30_000 })

t.test('a real entry point prints its usage on --help and exits 0', async (t) => {
  const r = run('hit-ratio/run.js', ['--help'])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^Usage: npm run bench:hit-ratio -- \[flags\]\n/)
  t.match(r.stdout, /--requests N .*default: 2000000/)
  t.equal(r.stderr, '')
})

t.test('a real entry point refuses a typo with exit 2, naming it, without a stack trace', async (t) => {
  const r = run('steering-sim/run.js', ['--hourz', '3'])
  t.equal(r.status, 2)
  t.equal(r.stdout, '')
  t.match(r.stderr, /^Unknown option '--hourz'\nUsage: npm run bench:steering-sim/)
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
  const bad = run('steering-sim/run.js', ['--hours', 'abc'])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^--hours must be a number >= 1 and <= 24, got 'abc'\n/)
  t.notMatch(bad.stderr, /^\s+at /m, 'no stack trace')
})
