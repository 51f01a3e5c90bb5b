/**
 * JSON Schema validation (ajv) for every configuration file: the topology, steering's fleet
 * and zones files, each command's --config file. One formatter turns ajv's errors into lines
 * an operator can act on, each starting with the JSON path it is about:
 *
 *   /edges/1/port: must be integer (got "8081")
 *   /edges/2/capacity: unknown key
 *   /waiterTimeout: a duration with a unit, such as "15s", "500ms" or "2m" (got 15000)
 *
 * A schema may carry `hint` (our keyword): the sentence to print instead of ajv's own when its
 * `type`, `format`, `pattern`, `anyOf` or `oneOf` check fails. Checks a schema cannot say
 * (references between entries, duplicates) stay in code, naming paths the same way.
 */
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv'
import { CdnError } from '../errors.js'
import { parseDuration, parseSize } from './units.js'

// strictRequired off: `anyOf: [{ required: [...] }]` names properties defined beside it.
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false })
ajv.addKeyword({ keyword: 'hint', schemaType: 'string' })
ajv.addFormat('size', { type: 'string', validate: (s: string) => parseSize(s) !== undefined })
ajv.addFormat('duration', { type: 'string', validate: (s: string) => parseDuration(s) !== undefined })

export type Validator = (doc: unknown) => string[]

/** Coordinates, as every file that places something on the map writes them. */
export const LATITUDE = { type: 'number', minimum: -90, maximum: 90 } as const
export const LONGITUDE = { type: 'number', minimum: -180, maximum: 180 } as const

/** Compiles a schema once; the validator returns the problems (empty when the document is valid). */
export function compileSchema(schema: SchemaObject): Validator {
  const validate = ajv.compile(schema)
  return (doc) => (validate(doc) ? [] : formatErrors(validate))
}

/** CDN_ERR_CONFIG for one file: its first 50 problems in the message, all of them in details. */
export function configError(source: string, problems: readonly string[]): CdnError {
  const more = problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''
  return new CdnError(
    'CDN_ERR_CONFIG',
    `${source}: ${problems.length} problem(s):\n  ${problems.slice(0, 50).join('\n  ')}${more}`,
    { details: { problems: [...problems] } },
  )
}

/** A JSON pointer to an object's property, escaped per RFC 6901. */
export function pointer(base: string, key: string | number): string {
  return `${base}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`
}

function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const HINTED = new Set(['type', 'format', 'pattern', 'anyOf', 'oneOf'])

function message(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>
  const hint = (e.parentSchema as { hint?: string } | undefined)?.hint
  if (hint && HINTED.has(e.keyword)) return `${hint} (got ${shown(e.data)})`
  switch (e.keyword) {
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map(shown).join(', ')} (got ${shown(e.data)})`
    case 'const':
      return `must be ${shown(p.allowedValue)} (got ${shown(e.data)})`
    case 'minItems':
      return `must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}`
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'pattern':
    case 'format':
    case 'minLength':
    case 'maxLength':
      return `${e.message ?? 'is invalid'} (got ${shown(e.data)})`
    default:
      return e.message ?? 'is invalid'
  }
}

/** One line per problem, `{json path}: {what is wrong}`, without ajv's follow-on noise. */
function formatErrors(validate: ValidateFunction): string[] {
  const errors = validate.errors ?? []
  // A failed anyOf/oneOf reports every branch's failure too; with a hint, the hint says it all.
  const hinted = errors
    .filter(
      (e) => (e.keyword === 'anyOf' || e.keyword === 'oneOf') && (e.parentSchema as { hint?: string }).hint,
    )
    .map((e) => `${e.schemaPath}/`)
  const out: string[] = []
  for (const e of errors) {
    if (hinted.some((prefix) => e.schemaPath.startsWith(prefix))) continue
    // propertyNames failures come twice: once for the name, once for the object.
    if (e.keyword === 'propertyNames') continue
    const p = e.params as Record<string, unknown>
    let line: string
    if (e.keyword === 'additionalProperties')
      line = `${pointer(e.instancePath, p.additionalProperty as string)}: unknown key`
    else if (e.keyword === 'required')
      line = `${pointer(e.instancePath, p.missingProperty as string)}: required`
    else if (e.keyword === 'dependencies')
      line = `${pointer(e.instancePath, p.missingProperty as string)}: required with ${String(p.property)}`
    else if (e.propertyName !== undefined)
      line = `${pointer(e.instancePath, e.propertyName)}: bad key, expected ${(e.parentSchema as { hint?: string }).hint ?? e.message}`
    else line = `${e.instancePath || '/'}: ${message(e)}`
    if (!out.includes(line)) out.push(line)
  }
  return out
}
