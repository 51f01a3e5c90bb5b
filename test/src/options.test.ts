/**
 * The options tables (src/config/options.ts): precedence, unknown keys, the units rule, the
 * --config file's JSON Schema, and --help agreeing with what is read. Every command's table
 * goes through the same checks.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { EDGE_SPEC } from '../../edge/config/spec.js'
import { edgeConfig } from '../../edge/config/validate.js'
import { ORIGIN_SPEC } from '../../origin/config.js'
import { spec as DEMO_SPEC } from '../../src/cli/demo.js'
import { INGEST_SPEC } from '../../src/cli/ingest.js'
import { PREFILL_SPEC } from '../../src/cli/prefill.js'
import { COMMANDS } from '../../src/cli/run.js'
import {
  type CommandSpec,
  envNames,
  flagName,
  helpText,
  type OptionSpec,
  parseCommand,
  parseOptionValue,
} from '../../src/config/options.js'
import { parseDuration, parseSize } from '../../src/config/units.js'
import { isCdnError } from '../../src/errors.js'
import { STEERING_SPEC } from '../../steering/config-spec.js'

const SPEC: CommandSpec = {
  name: 'cdn test',
  summary: 'a table for tests',
  usage: 'cdn test [options]',
  options: {
    port: { type: 'int', default: 1, min: 0, max: 65535, env: 'T_PORT', help: 'port' },
    host: { type: 'string', default: 'a', env: 'T_HOST', help: 'host' },
    wait: { type: 'duration', default: 15_000, min: 1, env: 'T_WAIT', help: 'wait' },
    size: { type: 'size', default: 512e6, min: 1, env: 'T_SIZE', help: 'size' },
    tags: { type: 'list', default: [], env: 'T_TAGS', help: 'tags' },
    base: { type: 'url', env: 'T_BASE', help: 'a base URL' },
    on: { type: 'boolean', default: false, env: 'T_ON', help: 'switch' },
  },
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (isCdnError(err) && err.code === 'CDN_ERR_CONFIG')
      return (err.details as { problems: string[] } | undefined)?.problems ?? [err.message]
    throw err
  }
  return []
}

function configFile(t: Test, doc: unknown): string {
  const file = join(t.testdir(), 'config.json')
  writeFileSync(file, JSON.stringify(doc))
  return file
}

t.test('precedence: flag > environment > config file > default, key by key', async (t) => {
  const file = configFile(t, { port: 3, host: 'file', wait: '3s', size: '3MB', tags: ['file'] })
  const env = { T_PORT: '2', T_HOST: 'env', T_WAIT: '2s' }
  const { config } = parseCommand<Record<string, unknown>>(SPEC, ['--config', file, '--port', '1000'], env)
  t.equal(config.port, 1000, 'flag beats environment and file')
  t.equal(config.host, 'env', 'environment beats file')
  t.equal(config.wait, 2000, 'environment beats file (durations too)')
  t.equal(config.size, 3e6, 'file beats default')
  t.same(config.tags, ['file'], 'a list from the file')
  t.equal(config.on, false, 'default when nobody says')
  t.ok(Object.isFrozen(config))
  t.equal(parseCommand(SPEC, [], { T_HOST: '' }).config.host, 'a', 'an empty variable is unset')
})

t.test('unknown keys are refused, naming the key', async (t) => {
  const file = configFile(t, { port: 2, colour: 'blue', $comment: 'allowed' })
  t.same(
    problemsOf(() => parseCommand(SPEC, ['--config', file], {})),
    [`--config ${file}: /colour: unknown key`],
  )
  t.throws(() => parseCommand(SPEC, ['--colour', 'blue'], {}), {
    code: 'CDN_ERR_CONFIG',
    message: /--colour/,
  })
  t.same(
    problemsOf(() => parseCommand(SPEC, ['--config', configFile(t, [1])], {})),
    [`--config ${join(t.testdirName, 'config.json')}: /: must be object (got [1])`],
  )
})

t.test('the units rule: sizes and durations carry a unit wherever they come from', async (t) => {
  const file = configFile(t, { wait: 15000, size: 512000000, port: '80' })
  t.same(
    problemsOf(() => parseCommand(SPEC, ['--config', file], {})),
    [
      `--config ${file}: /port: must be integer (got "80")`,
      `--config ${file}: /wait: a duration with a unit, such as "15s", "500ms" or "2m" (got 15000)`,
      `--config ${file}: /size: a size with a unit, such as "512MB", "20GiB" or "1048576B" (got 512000000)`,
    ],
  )
  t.same(
    problemsOf(() => parseCommand(SPEC, [], { T_WAIT: '15000' })),
    ['T_WAIT: expected a duration with a unit, such as "15s", "500ms" or "2m" (got "15000")'],
  )
  t.same(
    problemsOf(() => parseCommand(SPEC, ['--size', '1048576'], {})),
    ['--size: expected a size with a unit, such as "512MB", "20GiB" or "1048576B" (got "1048576")'],
  )
  t.same(
    problemsOf(() => parseCommand(SPEC, ['--wait', '0'], {})),
    ['--wait: must be at least 1ms (got "0")'],
  )
  const ok = parseCommand<Record<string, unknown>>(SPEC, ['--wait', '500ms', '--size', '64KiB'], {})
  t.equal(ok.config.wait, 500)
  t.equal(ok.config.size, 65536)
})

t.test('edge: "waiterTimeout": 15000 is refused, not read as four hours', async (t) => {
  const file = configFile(t, { upstream: ['http://127.0.0.1:9'], waiterTimeout: 15000 })
  const problems = problemsOf(() => parseCommand(EDGE_SPEC, ['--config', file], {}))
  t.same(problems, [
    `--config ${file}: /waiterTimeout: a duration with a unit, such as "15s", "500ms" or "2m" (got 15000)`,
  ])
  const good = configFile(t, { upstream: ['http://127.0.0.1:9'], waiterTimeout: '15s' })
  t.equal(
    parseCommand<{ waiterTimeout: number }>(EDGE_SPEC, ['--config', good], {}).config.waiterTimeout,
    15_000,
  )
})

t.test('--help prints every default in the unit that is read back', async (t) => {
  const specs = [EDGE_SPEC, ORIGIN_SPEC, STEERING_SPEC, PREFILL_SPEC, INGEST_SPEC, DEMO_SPEC, SPEC]
  let checked = 0
  for (const spec of specs) {
    const help = helpText(spec)
    for (const [key, o] of Object.entries(spec.options)) {
      if ((o.type !== 'duration' && o.type !== 'size') || typeof o.default !== 'number') continue
      const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
      // The option's own line (two spaces, then the flag), not a mention in the usage lines.
      const line = help.slice(help.indexOf(`\n  ${flag} `) + 1)
      const shown = /default: ([^;)]+)/.exec(line.slice(0, line.indexOf('\n  -')))?.[1]
      const read = o.type === 'duration' ? parseDuration(shown ?? '') : parseSize(shown ?? '')
      t.equal(read, o.default, `${spec.name} ${flag}: help says ${shown}`)
      checked++
    }
  }
  t.ok(checked >= 20, `${checked} defaults checked`)
  t.match(helpText(EDGE_SPEC), /--waiter-timeout DURATION\s+.*default: 15s/)
  t.match(helpText(EDGE_SPEC), /--memory-size SIZE\s+.*default: 512MB/)
})

t.test('base URLs: a path is honoured by the commands that append to it, never a query', async (t) => {
  const { config } = parseCommand<{ base: string }>(SPEC, ['--base', 'http://h:1/prefix/'], {})
  t.equal(config.base, 'http://h:1/prefix', 'the path is kept (the caller appends to it)')
  for (const [bad, why] of [
    ['http://h/?a=1', /no query or fragment/],
    ['http://h/#x', /no query or fragment/],
    ['http://u:p@h/', /no credentials/],
    ['ftp://h/', /http\(s\)/],
    ['h:80', /http\(s\)/],
    ['not a url', /absolute URL/],
  ] as const)
    t.match(
      problemsOf(() => parseCommand(SPEC, ['--base', bad], {})),
      [why],
      bad,
    )
})

t.test('an edge upstream with a path is refused, not silently dropped', async (t) => {
  for (const u of ['http://origin:8080/prefix', 'http://origin:8080/vod/', 'http://origin/?x=1'])
    t.match(
      problemsOf(() => edgeConfig({ upstream: [u] })),
      [/^--upstream: /],
      u,
    )
  t.match(
    problemsOf(() => edgeConfig({ upstream: ['http://origin:8080/prefix'] })),
    [/without a path .*drop "\/prefix"/],
  )
  t.same(edgeConfig({ upstream: ['http://origin:8080/', 'https://b'] }).upstream, [
    'http://origin:8080',
    'https://b',
  ])
  const file = configFile(t, { upstream: 'http://origin:8080/prefix' })
  t.match(
    problemsOf(() =>
      edgeConfig(parseCommand<{ upstream: string[] }>(EDGE_SPEC, ['--config', file], {}).config),
    ),
    [/^--upstream: .*without a path/],
  )
})

t.test('a switch: --flag, --no-flag, --flag=WORD or --flag WORD; anything else is refused', async (t) => {
  const parse = (argv: string[], env = {}) => parseCommand<Record<string, unknown>>(SPEC, argv, env).config.on
  t.equal(parse([]), false, 'default')
  t.equal(parse(['--on']), true)
  t.equal(parse(['--no-on'], { T_ON: 'true' }), false, '--no-on beats the environment')
  t.equal(parse([], { T_ON: 'true' }), true)
  t.same(
    problemsOf(() => parse(['--on', '--no-on'])),
    ['--on and --no-on: given both on and off; say it once'],
    'both: refused',
  )
  t.equal(parse(['--on', 'false'], { T_ON: 'true' }), false, '--on false (as the docs write it)')
  t.equal(parse(['--on', 'TRUE']), true, '--on true')
  for (const [word, on] of [
    ['true', true],
    ['false', false],
    ['yes', true],
    ['no', false],
    ['1', true],
    ['0', false],
    ['No', false],
  ] as const) {
    t.equal(parse([`--on=${word}`]), on, `--on=${word}`)
    t.equal(parse(['--on', word]), on, `--on ${word}`)
    t.equal(parse([], { T_ON: word }), on, `T_ON=${word}`)
  }
  t.same(
    problemsOf(() => parse(['--on=maybe'])),
    ['--on: expected true or false (or yes/no, 1/0) (got "maybe")'],
  )
  t.same(
    problemsOf(() => parse(['--on='])),
    ['--on: expected true or false (or yes/no, 1/0) (got "")'],
  )
  t.same(
    problemsOf(() => parse([], { T_ON: 'on' })),
    ['T_ON: expected true or false (or yes/no, 1/0) (got "on")'],
  )
  t.match(
    problemsOf(() => parse(['--no-on=true'])),
    [/^--no-on: takes no value/],
  )
  t.equal(parse(['--on', '--on=true']), true, 'the same value twice is no conflict')
  t.match(problemsOf(() => parse(['--on=yes', '--on', 'no'])).join(' '), /--on and --no-on/)

  // A switch never takes the option after it, nor a word that is no switch value.
  const both = parseCommand<Record<string, unknown>>(SPEC, ['--on', '--port', '7'], {}).config
  t.same([both.on, both.port], [true, 7], '--on --port 7: both read')
  const words = { ...SPEC, positionals: 'WORD...' }
  const p = parseCommand<Record<string, unknown>>(words, ['--on', 'x', 'y'], {})
  t.same([p.positionals, p.config.on], [['x', 'y'], true], 'a word that is no switch value is a positional')
  const q = parseCommand<Record<string, unknown>>(words, ['x', '--on', 'false', 'y'], {})
  t.same([q.positionals, q.config.on], [['x', 'y'], false], 'a switch value is not')
  t.same(parseCommand(words, ['--on', '--', 'yes'], {}).positionals, ['yes'], 'after --, a word is a word')

  const on = { ...SPEC, options: { ...SPEC.options, on: { ...SPEC.options.on!, default: true } } }
  t.match(helpText(on), /--on, --no-on/, 'the help names --no-flag for a switch that is on by default')
  t.notMatch(helpText(SPEC), /--no-on/, 'and not for one that is off')
})

t.test('a command without positional arguments refuses any, rather than dropping it', async (t) => {
  for (const argv of [['stray'], ['--on', 'maybe'], ['--port', '1', 'extra']])
    t.throws(
      () => parseCommand(SPEC, argv, {}),
      {
        code: 'CDN_ERR_CONFIG',
        message: `cdn test: unexpected argument "${argv.at(-1)}" (it takes options only; see cdn test --help)`,
      },
      argv.join(' '),
    )
  t.throws(
    () => parseCommand(DEMO_SPEC, ['stray'], {}),
    { message: /unexpected argument "stray"/ },
    'cdn demo stray',
  )
  t.throws(
    () => parseCommand(EDGE_SPEC, ['--upstream', 'http://127.0.0.1:9', 'extra'], {}),
    { message: /unexpected argument "extra"/ },
    'cdn edge --upstream URL extra',
  )
  const demo = (...argv: string[]) =>
    parseCommand<{ tls: boolean; check: boolean }>(DEMO_SPEC, argv, {}).config
  t.same(demo('--tls', 'no'), { ...demo(), tls: false }, 'cdn demo --tls no: TLS off')
  t.same([demo('--tls=false').tls, demo('--no-tls').tls, demo('--tls', 'false').tls], [false, false, false])
  t.same(
    [demo('--tls', '--check').tls, demo('--tls', '--check').check],
    [true, true],
    '--tls --check: both on',
  )
  t.same(parseCommand(ORIGIN_SPEC, ['retire', 'x', '--store', 'd'], {}).positionals, ['retire', 'x'])
})

t.test('a duration a timer cannot wait, or a size or count past exact integers, is refused', async (t) => {
  const edge = (...flags: string[]) =>
    problemsOf(() => parseCommand(EDGE_SPEC, ['--upstream', 'http://127.0.0.1:9', ...flags], {}))
  // Node turns a timer above 2^31-1 ms into 1 ms: a probe every millisecond, a wait that times out at once.
  for (const flag of ['--waiter-timeout', '--upstream-probe-interval', '--tls-ticket-rotation']) {
    const problems = edge(flag, '1000h')
    t.equal(problems.length, 1, flag)
    t.match(problems[0], `${flag}: must be at most 596h`, flag)
  }
  t.same(edge('--waiter-timeout', '500h'), [], 'below the limit: accepted')
  // A TTL or a half-life is no timer: it may be longer.
  t.same(edge('--heuristic-max', '720h', '--disk-demand-half-life', '2160h'), [])
  t.match(edge('--heuristic-max', '100000h')[0], /--heuristic-max: must be at most 87600h/)
  t.match(edge('--memory-size', `${'9'.repeat(400)}TB`)[0], /--memory-size: must be at most/)
  t.match(edge('--disk-fds', '9'.repeat(30))[0], /--disk-fds: (must be at most|expected an integer)/)
  t.match(
    problemsOf(() => parseCommand(SPEC, ['--port', '1', '--size', '1e30B'], {}))[0] ?? 'accepted',
    /--size/,
    'a size of 1e30 bytes is refused or unparsed',
  )
})

t.test(
  'edge: a config built in code with a number that is not finite, or out of bounds, is refused',
  async (t) => {
    // Such a config skips the flag parser (tests, the hit-ratio replay): a NaN half-life once made
    // the demand order find no victim, and the replay's disk grew past its size.
    const built = (over: Record<string, unknown>) =>
      problemsOf(() => edgeConfig({ upstream: ['http://127.0.0.1:9'], ...over }))
    t.same(built({ diskDemandHalfLife: Number.NaN }), [
      '--disk-demand-half-life: expected a finite number (got NaN)',
    ])
    t.match(built({ diskSize: Number.POSITIVE_INFINITY })[0], /--disk-size: expected a finite number/)
    t.same(built({ diskDemandHalfLife: 3_600_000 }), [], 'a finite one is accepted')
    t.same(
      built({ diskDemandHalfLife: 0 }),
      ['--disk-demand-half-life: must be at least 1000 (got 0)'],
      "held to the flag's bounds too",
    )
    // The replay passes the edge's flags through the edge's own parser.
    const r = parseOptionValue('--demand-half-life', EDGE_SPEC.options.diskDemandHalfLife!, '48h')
    t.same(r, { value: 48 * 3_600_000 })
    t.match(parseOptionValue('--demand-half-life', EDGE_SPEC.options.diskDemandHalfLife!, '48'), {
      error: /--demand-half-life: expected a duration with a unit/,
    })
  },
)

t.test('edge: a --public-url steering could not hand to players is refused at start', async (t) => {
  const registered = (publicUrl: string) => registeringEdge({ publicUrl })
  t.same(registered('https://edge-1.example/cdn'), [])
  const secret = registered('https://user:s3cret@edge-1.example')
  t.equal(secret.length, 1)
  t.match(secret[0], /--public-url: .*user name or password/)
  t.notMatch(secret.join(' '), /s3cret/, 'the secret is not repeated')
  t.match(registered('https://edge-1.example/a b')[0], /--public-url: .*whitespace/)
  t.match(registered('https://edge-1.example/?x=1')[0], /--public-url: .*query/)
})

t.test('edge: registering while listening on every address needs a --public-url', async (t) => {
  const registered = (host: string, publicUrl?: string) =>
    registeringEdge({ host, ...(publicUrl ? { publicUrl } : {}) })
  // http://0.0.0.0:PORT would be handed to players as the edge's address.
  for (const host of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0'])
    t.match(registered(host)[0], /--public-url: required with --registry-etcd when --host is/, host)
  t.same(registered('0.0.0.0', 'http://edge-1.example:8081'), [])
  t.same(registered('10.0.0.7'), [])
  t.same(registered('::1'), [])
})

/** The start-up problems of an edge that registers in etcd, with `over` on its options. */
function registeringEdge(over: Partial<Parameters<typeof edgeConfig>[0]>): string[] {
  return problemsOf(() =>
    edgeConfig({
      upstream: ['http://127.0.0.1:9'],
      registryEtcd: ['http://127.0.0.1:2379'],
      site: 'rome',
      lat: 41.9,
      lon: 12.5,
      capacity: 1e9,
      ...over,
    }),
  )
}

/** Every command `cdn` has, its table loaded as main.ts loads it. */
async function everyCommand(): Promise<CommandSpec[]> {
  return Promise.all(Object.values(COMMANDS).map(async (c) => (await c.load()).command.spec))
}

/** A value each type refuses, where the type has one (any text is a string or a list). */
function badValue(spec: OptionSpec): string | undefined {
  if (spec.type === 'string') return spec.choices ? 'not-one-of-them' : undefined
  return {
    int: 'abc',
    number: 'abc',
    size: '15',
    duration: 'abc',
    boolean: 'maybe',
    url: 'not a url',
    list: undefined,
  }[spec.type]
}

t.test('every option of every command has an environment variable, named in --help', async (t) => {
  const specs = await everyCommand()
  t.equal(specs.length, Object.keys(COMMANDS).length)
  let options = 0
  for (const spec of specs) {
    const help = helpText(spec)
    const seen = new Map<string, string>()
    for (const [key, o] of Object.entries(spec.options)) {
      options++
      const [name] = envNames(spec, key, o)
      if (!t.ok(name, `${spec.name} --${flagName(key)} has a variable`)) continue
      t.notOk(
        seen.has(name!),
        `${spec.name}: ${name} is --${flagName(key)}'s alone (${seen.get(name!) ?? ''})`,
      )
      seen.set(name!, key)
      const line = help.slice(
        help.indexOf(`\n  --${flagName(key)}`),
        help.indexOf('\n  -', help.indexOf(`\n  --${flagName(key)}`) + 3),
      )
      t.match(line, `env ${name}`, `${spec.name} --help names ${name}`)
    }
  }
  t.ok(options > 200, `${options} options`)
  t.equal(
    envNames(STEERING_SPEC, 'failAfter', STEERING_SPEC.options.failAfter!)[0],
    'CDN_STEERING_FAIL_AFTER',
  )
  t.equal(envNames(PREFILL_SPEC, 'dryRun', PREFILL_SPEC.options.dryRun!)[0], 'CDN_PREFILL_DRY_RUN')
})

t.test('a bad value in any variable is refused at start, naming the variable', async (t) => {
  let checked = 0
  for (const spec of await everyCommand()) {
    for (const [key, o] of Object.entries(spec.options)) {
      const bad = badValue(o)
      if (bad === undefined) continue
      for (const name of envNames(spec, key, o)) {
        const problems = problemsOf(() => parseCommand(spec, [], { [name]: bad }))
        t.ok(
          problems.some((p) => p.startsWith(`${name}: `)),
          `${spec.name}: ${name}=${bad} refused`,
        )
        checked++
      }
    }
  }
  t.ok(checked > 100, `${checked} variables checked`)
  t.same(
    problemsOf(() => parseCommand(STEERING_SPEC, ['--fleet', 'f.json'], { CDN_STEERING_FAIL_AFTER: 'abc' })),
    ['CDN_STEERING_FAIL_AFTER: expected an integer (got "abc")'],
  )
})

t.test('each role reads CDN_<ROLE>_LOG_LEVEL, and CDN_LOG_LEVEL when that is unset', async (t) => {
  const roles: [CommandSpec, string, string[]][] = [
    [EDGE_SPEC, 'CDN_EDGE_LOG_LEVEL', ['--upstream', 'http://127.0.0.1:9']],
    [ORIGIN_SPEC, 'CDN_ORIGIN_LOG_LEVEL', ['--store', 'store']],
    [STEERING_SPEC, 'CDN_STEERING_LOG_LEVEL', ['--fleet', 'fleet.json']],
  ]
  for (const [spec, own, argv] of roles) {
    const level = (env: Record<string, string>) =>
      parseCommand<{ logLevel: string }>(spec, argv, env).config.logLevel
    t.equal(level({ CDN_LOG_LEVEL: 'warn' }), 'warn', `${spec.name}: CDN_LOG_LEVEL`)
    t.equal(level({ [own]: 'error' }), 'error', `${spec.name}: ${own}`)
    t.equal(level({ CDN_LOG_LEVEL: 'warn', [own]: 'error' }), 'error', `${spec.name}: ${own} first`)
    t.match(helpText(spec), `env ${own} or CDN_LOG_LEVEL`)
  }
})
