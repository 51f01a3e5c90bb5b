/**
 * Declarative options: one table per command says each key's type, default, environment
 * variable and help. The same table drives `--help`, flag parsing, env vars, the optional
 * JSON config file and validation, so the documentation cannot drift from the code.
 *
 * Precedence: flag > environment > config file > default. Every problem is collected and
 * reported at once, each naming where the value came from (`--waiter-timeout`,
 * `CDN_EDGE_WAITER_TIMEOUT`, or the file and its JSON path `/waiterTimeout`); unknown flags
 * and unknown file keys are refused. The file is checked against a JSON Schema made from the
 * table (src/config/config-file.ts). Sizes and durations carry their unit everywhere (units.ts):
 * `--help` prints `15s`, and `15s` is what a flag, a variable or the file says.
 *
 * Every option of a command with an `envPrefix` has an environment variable (envNames), named
 * in `--help`. A switch is `--flag`, `--no-flag`, `--flag=false` or `--flag false` (yes/no and
 * 1/0 too, there and in the environment); a command that takes no positional arguments
 * refuses any, so a misspelt value is not silently dropped.
 */
import { parseArgs } from 'node:util'
import { CdnError } from '../errors.js'
import { type ConfigFile, readConfigFile } from './config-file.js'
import { pointer } from './schema.js'
import { DURATION_HINT, formatDuration, formatSize, parseDuration, parseSize, SIZE_HINT } from './units.js'

export type OptionType = 'string' | 'int' | 'number' | 'size' | 'duration' | 'boolean' | 'url' | 'list'

export interface OptionSpec {
  readonly type: OptionType
  readonly help: string
  /** Default value, already in the parsed type (bytes for sizes, ms for durations). */
  readonly default?: unknown
  /**
   * Environment variable, e.g. CDN_EDGE_PORT; without it the command's `envPrefix` and the key
   * name it (envNames): every option of a command with a prefix has one.
   */
  readonly env?: string
  /** Older or shared names read when `env` is unset, in order (e.g. CDN_LOG_LEVEL for every role). */
  readonly envAliases?: readonly string[]
  readonly required?: boolean
  readonly short?: string
  /** For int/number/size/duration: inclusive bounds in the parsed unit. */
  readonly min?: number
  readonly max?: number
  /** For string: the allowed values. */
  readonly choices?: readonly string[]
  /** Placeholder shown in help, e.g. URL. */
  readonly arg?: string
}

export type OptionTable = Readonly<Record<string, OptionSpec>>

export interface CommandSpec {
  readonly name: string
  readonly summary: string
  readonly usage: string
  readonly options: OptionTable
  /**
   * Names of positional arguments, shown in help. A command without them refuses any: a stray
   * word (`cdn demo stray`, a switch's misspelt value) is an error, not silently dropped.
   */
  readonly positionals?: string
  /** Prefix of the environment variables of options with no `env` of their own, e.g. CDN_STEERING. */
  readonly envPrefix?: string
}

/** camelCase key → kebab-case flag. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

/**
 * The environment variables an option is read from, by precedence: its own `env`, else the
 * command's prefix and the key (`failAfter` of CDN_STEERING: CDN_STEERING_FAIL_AFTER), then its
 * aliases.
 */
export function envNames(cmd: Pick<CommandSpec, 'envPrefix'>, key: string, spec: OptionSpec): string[] {
  const own = spec.env ?? (cmd.envPrefix ? `${cmd.envPrefix}_${snakeName(key)}` : undefined)
  return [...(own ? [own] : []), ...(spec.envAliases ?? [])]
}

function snakeName(key: string): string {
  return flagName(key).replaceAll('-', '_').toUpperCase()
}

/**
 * The words a switch takes, on the command line (`--tls=false`, `--tls no`) and in the
 * environment (CDN_DEMO_TLS=0), case-insensitive; anything else is refused.
 */
const SWITCH_WORDS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  yes: true,
  no: false,
  '1': true,
  '0': false,
}
const SWITCH_HINT = 'expected true or false (or yes/no, 1/0)'

function switchWord(raw: string): boolean | undefined {
  return Object.hasOwn(SWITCH_WORDS, raw.toLowerCase()) ? SWITCH_WORDS[raw.toLowerCase()] : undefined
}

export function helpText(cmd: CommandSpec): string {
  const lines = [`Usage: ${cmd.usage}`, '', cmd.summary, '', 'Options:']
  const rows = Object.entries(cmd.options).map(([key, spec]) => {
    const arg = spec.type === 'boolean' ? '' : ` ${spec.arg ?? spec.type.toUpperCase()}`
    // A switch that is on by default is turned off with --no-FLAG.
    const off = spec.type === 'boolean' && spec.default === true ? `, --no-${flagName(key)}` : ''
    const left = `  ${spec.short ? `-${spec.short}, ` : ''}--${flagName(key)}${off}${arg}${spec.type === 'list' ? ' ...' : ''}`
    const extras: string[] = []
    if (spec.choices) extras.push(`one of: ${spec.choices.join(', ')}`)
    if (
      spec.default !== undefined &&
      spec.default !== '' &&
      !(Array.isArray(spec.default) && !spec.default.length)
    )
      extras.push(`default: ${showDefault(spec)}`)
    if (spec.required) extras.push('required')
    const env = envNames(cmd, key, spec)
    if (env.length) extras.push(`env ${env.join(' or ')}`)
    return [left, `${spec.help}${extras.length ? ` (${extras.join('; ')})` : ''}`] as const
  })
  rows.push(['  --config FILE', 'JSON file with any of the options above (camelCase keys)'])
  rows.push(['  -h, --help', 'show this help'])
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2)
  for (const [l, r] of rows)
    lines.push(l.length >= width ? `${l}\n${' '.repeat(width)}${r}` : l.padEnd(width) + r)
  return `${lines.join('\n')}\n`
}

function showDefault(spec: OptionSpec): string {
  const d = spec.default
  if (spec.type === 'duration' && typeof d === 'number') return formatDuration(d)
  if (spec.type === 'size' && typeof d === 'number') return formatSize(d)
  if (Array.isArray(d)) return d.join(',')
  return String(d)
}

/** A bound in the option's own unit, as the operator would write it. */
/**
 * Bounds every option of a type has unless its spec says otherwise: a duration is a timer's
 * delay somewhere, and node turns one above 2^31-1 ms (596.5 hours) into 1 ms (a probe every
 * millisecond, a wait that times out at once), so a longer one is an option's own `max`, given
 * only where nothing waits on it; a count or a size must be an exact integer (a size of 400
 * nines is Infinity).
 */
const IMPLICIT_MAX: Partial<Record<OptionType, number>> = {
  duration: 596 * 3_600_000, // 596h: the whole hours below 2^31 ms
  size: Number.MAX_SAFE_INTEGER,
  int: Number.MAX_SAFE_INTEGER,
}

/** The `max` of a duration nothing waits on (a TTL, a half-life, an age): ten years (87600h). */
export const LONG_DURATION_MAX = 87_600 * 3_600_000

function showBound(spec: OptionSpec, n: number): string {
  if (spec.type === 'duration') return formatDuration(n)
  if (spec.type === 'size') return formatSize(n)
  return String(n)
}

/** A base URL other commands append paths to: http(s), no query, fragment or credentials. */
export function checkBaseUrl(raw: string): string | undefined {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return 'expected an absolute URL such as http://127.0.0.1:8080'
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http(s) URL'
  if (u.search || u.hash || raw.includes('#')) return 'a base URL has no query or fragment'
  if (u.username || u.password) return 'a base URL carries no credentials (use the token option)'
  return undefined
}

/** Turns one raw value (a flag's or variable's text, or a file's JSON value) into the parsed type. */
function coerce(where: string, spec: OptionSpec, raw: unknown, problems: string[]): unknown {
  const bad = (why: string) => {
    problems.push(`${where}: ${why} (got ${JSON.stringify(raw)})`)
    return undefined
  }
  const bounded = (n: number | undefined, what: string) => {
    if (n === undefined || Number.isNaN(n)) return bad(`expected ${what}`)
    if (spec.min !== undefined && n < spec.min) return bad(`must be at least ${showBound(spec, spec.min)}`)
    const max = spec.max ?? IMPLICIT_MAX[spec.type]
    if (max !== undefined && n > max) return bad(`must be at most ${showBound(spec, max)}`)
    return n
  }
  switch (spec.type) {
    case 'string':
      if (typeof raw !== 'string') return bad('expected a string')
      if (spec.choices && !spec.choices.includes(raw))
        return bad(`expected one of ${spec.choices.join(', ')}`)
      return raw
    case 'int': {
      const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw)) ? Number(raw) : Number.NaN
      return bounded(Number.isInteger(n) ? n : undefined, 'an integer')
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : String(raw).trim() === '' ? Number.NaN : Number(raw)
      return bounded(Number.isFinite(n) ? n : undefined, 'a number')
    }
    case 'size':
      return bounded(typeof raw === 'string' ? parseSize(raw) : undefined, SIZE_HINT)
    case 'duration':
      return bounded(typeof raw === 'string' ? parseDuration(raw) : undefined, DURATION_HINT)
    case 'boolean': {
      const on = typeof raw === 'boolean' ? raw : typeof raw === 'string' ? switchWord(raw) : undefined
      return on ?? bad(SWITCH_HINT)
    }
    case 'url': {
      if (typeof raw !== 'string') return bad('expected a URL')
      const why = checkBaseUrl(raw)
      return why ? bad(why) : raw.replace(/\/+$/, '')
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw : String(raw).split(',')
      return items.map((s) => String(s).trim()).filter(Boolean)
    }
  }
}

/**
 * One raw value (a flag's text) as `spec` parses it: the value, or why it is refused, naming
 * `where`. For a tool that passes a node's option through (the hit-ratio replay's edge flags).
 */
export function parseOptionValue(
  where: string,
  spec: OptionSpec,
  raw: unknown,
): { value: unknown } | { error: string } {
  const problems: string[] = []
  const value = coerce(where, spec, raw, problems)
  return problems.length > 0 ? { error: problems[0]! } : { value }
}

export interface ParsedCommand<T> {
  readonly config: Readonly<T>
  readonly positionals: readonly string[]
  readonly help: boolean
}

/** What the command line said of one switch: its value as written and the flag it came from. */
interface SwitchUse {
  readonly raw: unknown
  readonly where: string
}

/** Where a key's value comes from, by precedence: flag, then environment, then the file. */
function pick(
  cmd: CommandSpec,
  key: string,
  spec: OptionSpec,
  flags: Record<string, unknown>,
  switches: ReadonlyMap<string, SwitchUse>,
  env: Readonly<Record<string, string | undefined>>,
  file: ConfigFile,
  configPath: string | undefined,
): { raw: unknown; where: string } | undefined {
  const used = switches.get(key)
  if (used) return used
  const flag = flags[flagName(key)]
  if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0))
    return {
      raw: spec.type === 'list' ? (flag as string[]).flatMap((s) => s.split(',')) : flag,
      where: `--${flagName(key)}`,
    }
  for (const name of envNames(cmd, key, spec)) {
    const fromEnv = env[name]
    if (fromEnv !== undefined && fromEnv !== '') return { raw: fromEnv, where: name }
  }
  if (key in file.values)
    return { raw: file.values[key], where: `--config ${configPath}: ${pointer('', key)}` }
  return undefined
}

/**
 * Takes the switches (boolean options) out of argv before node's parser sees it, which knows
 * only the bare `--flag`: `--flag`, `--no-flag`, `--flag=WORD` and `--flag WORD` (WORD one of
 * SWITCH_WORDS, as the docs write `--tls false`) all set it; another word after a switch is
 * left alone (a positional, such as a title), so is the `--option` after it. A switch given
 * twice with different values is reported, not settled by order.
 */
function takeSwitches(
  cmd: CommandSpec,
  argv: readonly string[],
): { args: string[]; switches: Map<string, SwitchUse>; problems: string[] } {
  const byFlag = new Map<string, string>()
  for (const [key, spec] of Object.entries(cmd.options))
    if (spec.type === 'boolean') byFlag.set(flagName(key), key)
  const switches = new Map<string, SwitchUse>()
  const conflicts = new Set<string>()
  const set = (key: string, use: SwitchUse) => {
    const before = switches.get(key)
    if (before && switchValue(before.raw) !== switchValue(use.raw)) conflicts.add(key)
    switches.set(key, use)
  }
  const args: string[] = []
  const problems: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      args.push(...argv.slice(i))
      break
    }
    const m = /^--(no-)?([^=]+)(=(.*))?$/s.exec(a)
    const key = m ? byFlag.get(m[2]!) : undefined
    if (!m || key === undefined) {
      args.push(a)
      continue
    }
    const flag = `--${m[1] ?? ''}${m[2]}`
    if (m[1]) {
      if (m[3] === undefined) set(key, { raw: false, where: flag })
      else
        problems.push(`${flag}: takes no value (got ${JSON.stringify(m[4])}; --${m[2]}=false turns it off)`)
    } else if (m[3] !== undefined) set(key, { raw: m[4], where: flag })
    else if (argv[i + 1] !== undefined && switchWord(argv[i + 1]!) !== undefined)
      set(key, { raw: argv[++i], where: flag })
    else set(key, { raw: true, where: flag })
  }
  for (const key of conflicts) {
    switches.delete(key)
    problems.push(`--${flagName(key)} and --no-${flagName(key)}: given both on and off; say it once`)
  }
  return { args, switches, problems }
}

function switchValue(raw: unknown): unknown {
  return typeof raw === 'string' ? (switchWord(raw) ?? raw) : raw
}

/**
 * Parses argv (after the subcommand), env and an optional --config file against a table.
 * Throws CdnError(CDN_ERR_CONFIG) listing every problem.
 */
export function parseCommand<T = Record<string, unknown>>(
  cmd: CommandSpec,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedCommand<T> {
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string' },
  }
  for (const [key, spec] of Object.entries(cmd.options)) {
    if (spec.type === 'boolean') continue
    parseOptions[flagName(key)] = {
      type: 'string',
      ...(spec.type === 'list' ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    }
  }
  const { args, switches, problems } = takeSwitches(cmd, argv)
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args, options: parseOptions, allowPositionals: true, strict: true })
  } catch (err) {
    throw new CdnError('CDN_ERR_CONFIG', `${cmd.name}: ${(err as Error).message}`, { cause: err })
  }
  const values = parsed.values as Record<string, unknown>
  if (values.help) return { config: {} as T, positionals: parsed.positionals, help: true }
  if (parsed.positionals.length && !cmd.positionals)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `${cmd.name}: unexpected argument ${JSON.stringify(parsed.positionals[0])} (it takes options only; see ${cmd.name} --help)`,
    )

  const configPath = typeof values.config === 'string' ? values.config : undefined
  const file: ConfigFile = configPath
    ? readConfigFile(cmd, configPath, problems)
    : { values: {}, refused: new Set() }

  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(cmd.options)) {
    const source = pick(cmd, key, spec, values, switches, env, file, configPath)
    if (source) {
      const v = coerce(source.where, spec, source.raw, problems)
      if (v !== undefined) out[key] = v
      continue
    }
    const names = envNames(cmd, key, spec)
    if (spec.required && !file.refused.has(key))
      problems.push(`--${flagName(key)}: required${names.length ? ` (or set ${names.join(' or ')})` : ''}`)
    out[key] = spec.default
  }
  if (problems.length) {
    throw new CdnError('CDN_ERR_CONFIG', `${cmd.name}: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
  }
  return { config: Object.freeze(out) as Readonly<T>, positionals: parsed.positionals, help: false }
}
