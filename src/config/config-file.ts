/**
 * The optional JSON `--config` file of a command: its JSON Schema, made from the command's
 * option table (so the file takes exactly the options the flags take, with the same bounds),
 * and the reading that reports every problem with its JSON path. The values it returns are
 * still raw; src/config/options.ts coerces them as it does a flag's or a variable's text.
 */
import { readFileSync } from 'node:fs'
import type { SchemaObject } from 'ajv'
import type { CommandSpec, OptionSpec, OptionTable } from './options.js'
import { compileSchema, pointer, type Validator } from './schema.js'
import { DURATION_HINT, SIZE_HINT } from './units.js'

/** The JSON Schema of a command's --config file, made from its table. */
export function configFileSchema(options: OptionTable): SchemaObject {
  const properties: Record<string, SchemaObject> = { $comment: { type: 'string' } }
  for (const [key, spec] of Object.entries(options)) properties[key] = keySchema(spec)
  return { type: 'object', properties, additionalProperties: false }
}

function keySchema(spec: OptionSpec): SchemaObject {
  const bounds = {
    ...(spec.min !== undefined ? { minimum: spec.min } : {}),
    ...(spec.max !== undefined ? { maximum: spec.max } : {}),
  }
  switch (spec.type) {
    case 'string':
      return spec.choices ? { type: 'string', enum: [...spec.choices] } : { type: 'string' }
    case 'int':
      return { type: 'integer', ...bounds }
    case 'number':
      return { type: 'number', ...bounds }
    case 'size':
      return { type: 'string', format: 'size', hint: SIZE_HINT }
    case 'duration':
      return { type: 'string', format: 'duration', hint: DURATION_HINT }
    case 'boolean':
      return { type: 'boolean' }
    case 'url':
      return { type: 'string', minLength: 1 }
    case 'list':
      return {
        anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }],
        hint: 'a list of strings, or one comma-separated string',
      }
  }
}

const fileValidators = new WeakMap<OptionTable, Validator>()

export interface ConfigFile {
  readonly values: Readonly<Record<string, unknown>>
  /** Keys whose value had a problem: reported once, with its path, and not again later. */
  readonly refused: ReadonlySet<string>
}

/** Reads and checks a --config file against the table's schema; adds its problems, each with its path. */
export function readConfigFile(cmd: CommandSpec, path: string, problems: string[]): ConfigFile {
  const values: Record<string, unknown> = {}
  const refused = new Set<string>()
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    problems.push(`--config ${path}: ${(err as Error).message}`)
    return { values, refused }
  }
  let validate = fileValidators.get(cmd.options)
  if (!validate) {
    validate = compileSchema(configFileSchema(cmd.options))
    fileValidators.set(cmd.options, validate)
  }
  const found = validate(doc)
  for (const p of found) problems.push(`--config ${path}: ${p}`)
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { values, refused }
  for (const [key, v] of Object.entries(doc)) {
    if (!(key in cmd.options)) continue
    if (found.some((p) => p.startsWith(`${pointer('', key)}:`))) refused.add(key)
    else values[key] = v
  }
  return { values, refused }
}
