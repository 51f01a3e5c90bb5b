/**
 * Declarative options: one table per command says each key's type, default, environment
 * variable and help. The same table drives `--help`, flag parsing, env vars, the optional
 * JSON config file and validation, so the documentation cannot drift from the code.
 *
 * Precedence: flag > environment > config file > default. Every problem is collected and
 * reported at once, each naming its key; unknown flags and unknown file keys are refused.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CdnError } from '../errors.js'
import { parseDuration, parseSize } from './units.js'

export type OptionType = 'string' | 'int' | 'number' | 'size' | 'duration' | 'boolean' | 'url' | 'list'

export interface OptionSpec {
  readonly type: OptionType
  readonly help: string
  /** Default value, already in the parsed type (bytes for sizes, ms for durations). */
  readonly default?: unknown
  /** Environment variable, e.g. CDN_EDGE_PORT. */
  readonly env?: string
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
  /** Names of positional arguments, shown in help. */
  readonly positionals?: string
}

/** camelCase key → kebab-case flag. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

export function helpText(cmd: CommandSpec): string {
  const lines = [`Usage: ${cmd.usage}`, '', cmd.summary, '', 'Options:']
  const rows = Object.entries(cmd.options).map(([key, spec]) => {
    const arg = spec.type === 'boolean' ? '' : ` ${spec.arg ?? spec.type.toUpperCase()}`
    const left = `  ${spec.short ? `-${spec.short}, ` : ''}--${flagName(key)}${arg}${spec.type === 'list' ? ' ...' : ''}`
    const extras: string[] = []
    if (spec.choices) extras.push(`one of: ${spec.choices.join(', ')}`)
    if (
      spec.default !== undefined &&
      spec.default !== '' &&
      !(Array.isArray(spec.default) && !spec.default.length)
    )
      extras.push(`default: ${showDefault(spec)}`)
    if (spec.required) extras.push('required')
    if (spec.env) extras.push(`env ${spec.env}`)
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
  if (spec.type === 'duration' && typeof d === 'number') return `${d}ms`
  if (Array.isArray(d)) return d.join(',')
  return String(d)
}

function coerce(key: string, spec: OptionSpec, raw: unknown, problems: string[]): unknown {
  const name = `--${flagName(key)}`
  const bad = (why: string) => {
    problems.push(`${name}: ${why} (got ${JSON.stringify(raw)})`)
    return undefined
  }
  const bounded = (n: number | undefined, what: string) => {
    if (n === undefined || Number.isNaN(n)) return bad(`expected ${what}`)
    if (spec.min !== undefined && n < spec.min) return bad(`must be at least ${spec.min}`)
    if (spec.max !== undefined && n > spec.max) return bad(`must be at most ${spec.max}`)
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
      return bounded(parseSize(raw as string), 'a size such as 512MB or 20GiB')
    case 'duration':
      return bounded(parseDuration(raw as string), 'a duration such as 4s or 500ms')
    case 'boolean':
      if (typeof raw === 'boolean') return raw
      if (raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      return bad('expected true or false')
    case 'url': {
      if (typeof raw !== 'string') return bad('expected a URL')
      try {
        const u = new URL(raw)
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad('expected an http(s) URL')
        return raw.replace(/\/+$/, '')
      } catch {
        return bad('expected an absolute URL such as http://127.0.0.1:8080')
      }
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw : String(raw).split(',')
      return items.map((s) => String(s).trim()).filter(Boolean)
    }
  }
}

export interface ParsedCommand<T> {
  readonly config: Readonly<T>
  readonly positionals: readonly string[]
  readonly help: boolean
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
    parseOptions[flagName(key)] = {
      type: spec.type === 'boolean' ? 'boolean' : 'string',
      ...(spec.type === 'list' ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    }
  }
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: true })
  } catch (err) {
    throw new CdnError('CDN_ERR_CONFIG', `${cmd.name}: ${(err as Error).message}`, { cause: err })
  }
  const values = parsed.values as Record<string, unknown>
  if (values.help) return { config: {} as T, positionals: parsed.positionals, help: true }

  const problems: string[] = []
  let file: Record<string, unknown> = {}
  if (typeof values.config === 'string') {
    try {
      file = JSON.parse(readFileSync(values.config, 'utf8')) as Record<string, unknown>
      if (typeof file !== 'object' || file === null || Array.isArray(file))
        throw new Error('not a JSON object')
    } catch (err) {
      problems.push(`--config ${values.config}: ${(err as Error).message}`)
      file = {}
    }
    for (const key of Object.keys(file))
      if (!(key in cmd.options)) problems.push(`--config: unknown key "${key}"`)
  }

  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(cmd.options)) {
    const flag = values[flagName(key)]
    const fromEnv = spec.env ? env[spec.env] : undefined
    let raw: unknown
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      raw = spec.type === 'list' ? (flag as string[]).flatMap((s) => s.split(',')) : flag
    } else if (fromEnv !== undefined && fromEnv !== '') raw = fromEnv
    else if (key in file) raw = file[key]
    if (raw === undefined) {
      if (spec.required)
        problems.push(`--${flagName(key)}: required${spec.env ? ` (or set ${spec.env})` : ''}`)
      out[key] = spec.default
      continue
    }
    const v = coerce(key, spec, raw, problems)
    if (v !== undefined) out[key] = v
  }
  if (problems.length) {
    throw new CdnError('CDN_ERR_CONFIG', `${cmd.name}: invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    })
  }
  return { config: Object.freeze(out) as Readonly<T>, positionals: parsed.positionals, help: false }
}
