/**
 * One way for every bench entry point to read its flags. A typo such as `--round 3` must stop the
 * run rather than leave it on its defaults (a wrong figure is worse than none), and `--help` must
 * list every flag. `parseBenchArgs` is the pure part (tested); `benchArgs` and `numberArg` print
 * and exit, code 2 for any bad flag, never with a stack trace.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util'

/** What a bench declares: node's `parseArgs` options, and positionals only where one needs them. */
export type BenchArgsConfig = Pick<ParseArgsConfig, 'options' | 'allowPositionals'>

export type BenchValues<T extends BenchArgsConfig> = ReturnType<typeof parseArgs<T>>['values']

export type BenchArgsResult<T extends BenchArgsConfig> =
  { values: BenchValues<T>; positionals: string[] } | { help: true } | { error: string }

/**
 * Parses `argv` strictly against `config`, with `--help`/`-h` always accepted. The error is the
 * first sentence of node's own message, which names the flag (`Unknown option '--hourz'`). A
 * declared flag missing from `usage` is the bench's own bug, so it throws.
 */
export function parseBenchArgs<T extends BenchArgsConfig>(
  usage: string,
  config: T,
  argv: readonly string[],
): BenchArgsResult<T> {
  for (const name of Object.keys(config.options ?? {}))
    if (!usage.includes(`--${name}`)) throw new Error(`the usage text does not list --${name}`)
  const options = { ...config.options, help: { type: 'boolean', short: 'h' } } as const
  let parsed
  try {
    parsed = parseArgs({ ...config, options, args: [...argv], strict: true })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw err
    return { error: (err as Error).message.split(/\.\s/)[0]! }
  }
  if ((parsed.values as Record<string, unknown>).help === true) return { help: true }
  return { values: parsed.values as BenchValues<T>, positionals: parsed.positionals }
}

/**
 * The entry points' wrapper: usage on stdout and exit 0 for `--help`, the error and the usage on
 * stderr and exit 2 for a bad flag, otherwise the values.
 */
export function benchArgs<T extends BenchArgsConfig>(
  usage: string,
  config: T,
  argv: readonly string[] = process.argv.slice(2),
): BenchValues<T> {
  const result = parseBenchArgs(usage, config, argv)
  if ('help' in result) {
    process.stdout.write(`${usage.trimEnd()}\n`)
    process.exit(0)
  }
  if ('error' in result) fail(result.error, usage)
  return result.values
}

export interface NumberRule {
  /** Only whole numbers. */
  integer?: boolean
  /** The smallest value allowed. */
  min?: number
  /** The largest value allowed. */
  max?: number
}

/** A flag's value as a number, or the message saying why it is not one. Pure, for the tests. */
export function readNumber(
  value: string | undefined,
  flag: string,
  dflt: number,
  rule: NumberRule = {},
): { value: number } | { error: string } {
  if (value === undefined) return { value: dflt }
  const n = value.trim() === '' ? NaN : Number(value)
  const kind = rule.integer ? 'an integer' : 'a number'
  const { min = -Infinity, max = Infinity } = rule
  const bound = [min > -Infinity ? ` >= ${min}` : '', max < Infinity ? ` <= ${max}` : '']
    .filter(Boolean)
    .join(' and')
  if (!Number.isFinite(n) || (rule.integer && !Number.isInteger(n)) || n < min || n > max)
    return { error: `${flag} must be ${kind}${bound}, got '${value}'` }
  return { value: n }
}

/** `readNumber` for an entry point: exits 2 with the message when the value is not allowed. */
export function numberArg(
  value: string | undefined,
  flag: string,
  dflt: number,
  rule: NumberRule = {},
): number {
  const r = readNumber(value, flag, dflt, rule)
  if ('error' in r) argError(r.error)
  return r.value
}

/** A comma-separated list of numbers (`--connections 10,100`), each checked as `numberArg` does. */
export function numberListArg(value: string, flag: string, rule: NumberRule = {}): number[] {
  return value.split(',').map((part) => numberArg(part, flag, NaN, rule))
}

/** For a bench's own checks of a flag's value (a size, a list of names): exits 2 with `message`. */
export function argError(message: string): never {
  return fail(message)
}

function fail(message: string, usage?: string): never {
  process.stderr.write(`${message}\n${usage ? `${usage.trimEnd()}\n` : `(see --help)\n`}`)
  process.exit(2)
}
