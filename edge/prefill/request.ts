/**
 * Strict validation of POST /admin/prefill bodies. Every refusal is a 400 whose message and
 * `field` name the offending key (e.g. `popularity[2].weight`), so an operator can fix the
 * request without reading code. Unknown keys are refused, not ignored: a typo in
 * "maxBytesPerSec" must not silently mean "unlimited".
 */
import { parseSize } from '../../src/config/units.js'
import { CdnError } from '../../src/errors.js'
import { TITLE_RE } from '../../src/http/paths.js'
import type { JobSpec } from './model.js'
import type { RenditionFilter, TitleRequest } from './planner.js'
import { DEFAULT_VIEWING, type ViewingModel } from './viewing.js'
import { parseWindow } from './window.js'

export interface RequestLimits {
  readonly defaultConcurrency: number
  readonly maxConcurrency: number
  /** Default trickle rate outside the window (bytes/s, 0 = wait). */
  readonly trickleBytesPerSecond: number
  readonly maxTitles: number
  readonly timeZone?: string
}

export interface PrefillRequest {
  readonly spec: JobSpec
  readonly dryRun: boolean
}

const FIELDS = new Set([
  'titles',
  'popularity',
  'renditions',
  'maxBytesPerSecond',
  'concurrency',
  'window',
  'trickleBytesPerSecond',
  'dryRun',
  'viewing',
])
const VIEWING_FIELDS = new Set([
  'earlyStop',
  'earlyMeanSec',
  'minShare',
  'renditionShares',
  'startupShares',
  'weights',
])
const POPULARITY_FIELDS = new Set(['title', 'weight', 'score', 'requests'])
const RENDITION_FIELDS = new Set(['maxHeight', 'names'])

export function badField(field: string, why: string): CdnError {
  return new CdnError('CDN_ERR_BAD_BODY', `${field}: ${why}`, { details: { field } })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function title(v: unknown, field: string): string {
  if (typeof v !== 'string' || !TITLE_RE.test(v))
    throw badField(field, `expected a title id matching ${TITLE_RE.source} (got ${JSON.stringify(v)})`)
  return v
}

/**
 * Bounds of the numbers a request may give: far above any real link, session or screen, so only
 * a typo meets them, and every figure the planner and the rate limiter compute from them stays
 * a finite number.
 */
export const REQUEST_BOUNDS = {
  /** Bytes per second (1 TB/s). */
  rate: 1e12,
  /** A popularity weight (a share, a request or a session count). */
  weight: 1e15,
  /** Pixels, the tallest rendition a filter may name. */
  height: 16_384,
  /** The early-stop mean, in seconds (a week). */
  earlyMeanSec: 604_800,
} as const

/**
 * A byte rate: a whole number of bytes per second or a size string ("50MB", floored to whole
 * bytes). A fraction is refused rather than rounded: 0.5 would round to 0, which for a rate
 * means "wait", not "slowly".
 */
function rate(v: unknown, field: string, allowZero: boolean): number {
  const min = allowZero ? 0 : 1
  const expected = `expected a whole number of bytes per second from ${min} to ${REQUEST_BOUNDS.rate}, or a size such as "50MB"`
  const n = typeof v === 'string' ? parseSize(v) : typeof v === 'number' ? v : undefined
  if (n === undefined || !Number.isInteger(n) || n < min || n > REQUEST_BOUNDS.rate)
    throw badField(field, `${expected} (got ${JSON.stringify(v)})`)
  // "0.5B" floors to 0: a rate of less than a byte a second is a mistake, not a pause.
  if (n === 0 && typeof v === 'string' && /[1-9]/.test(v))
    throw badField(
      field,
      `${JSON.stringify(v)} is less than one byte per second; give 0 to wait, or at least 1`,
    )
  return n
}

/** A number from `min` to `max`, whole when `integer` (JSON has no NaN; 1e999 parses as Infinity). */
function bounded(v: unknown, field: string, min: number, max: number, integer: boolean): number {
  if (typeof v !== 'number' || (integer ? !Number.isInteger(v) : !Number.isFinite(v)) || v < min || v > max)
    throw badField(
      field,
      `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)})`,
    )
  return v
}

function renditions(v: unknown): RenditionFilter {
  const names = (list: unknown, field: string): string[] => {
    if (!Array.isArray(list) || !list.length)
      throw badField(field, 'expected a non-empty array of rendition names')
    return list.map((n, i) => {
      if (typeof n !== 'string' || !/^[0-9]{2,4}p$/.test(n))
        throw badField(
          `${field}[${i}]`,
          `expected a rendition name such as "720p" (got ${JSON.stringify(n)})`,
        )
      return n
    })
  }
  if (Array.isArray(v)) return { names: names(v, 'renditions') }
  if (!isObject(v)) throw badField('renditions', 'expected {"maxHeight": 720} or ["720p", "480p"]')
  for (const k of Object.keys(v))
    if (!RENDITION_FIELDS.has(k)) throw badField(`renditions.${k}`, 'unknown field')
  const out: { maxHeight?: number; names?: string[] } = {}
  if (v.maxHeight !== undefined) {
    out.maxHeight = bounded(v.maxHeight, 'renditions.maxHeight', 1, REQUEST_BOUNDS.height, true)
  }
  if (v.names !== undefined) out.names = names(v.names, 'renditions.names')
  if (!Object.keys(out).length) throw badField('renditions', 'give maxHeight, names, or both')
  return out
}

function titleList(
  body: Record<string, unknown>,
  limits: RequestLimits,
): {
  titles: TitleRequest[]
  source: JobSpec['source']
} {
  const seen = new Set<string>()
  const unique = (t: string, field: string) => {
    if (seen.has(t)) throw badField(field, `title ${t} is listed twice`)
    seen.add(t)
  }
  if ((body.titles === undefined) === (body.popularity === undefined))
    throw badField(
      body.titles === undefined ? 'titles' : 'popularity',
      'give exactly one of "titles" or "popularity"',
    )
  const field = body.titles !== undefined ? 'titles' : 'popularity'
  const list = body[field]
  if (!Array.isArray(list) || !list.length) throw badField(field, 'expected a non-empty array')
  if (list.length > limits.maxTitles) throw badField(field, `at most ${limits.maxTitles} titles per job`)
  if (field === 'titles') {
    return {
      source: 'titles',
      titles: list.map((v, i) => {
        const t = title(v, `titles[${i}]`)
        unique(t, `titles[${i}]`)
        return { title: t, rank: i }
      }),
    }
  }
  const entries = list.map((e, i) => {
    const f = `popularity[${i}]`
    if (!isObject(e)) throw badField(f, 'expected {"title": "...", "weight": 0.3}')
    for (const k of Object.keys(e))
      if (!POPULARITY_FIELDS.has(k)) throw badField(`${f}.${k}`, 'unknown field')
    const t = title(e.title, `${f}.title`)
    unique(t, `${f}.title`)
    const w = bounded(e.weight, `${f}.weight`, 0, REQUEST_BOUNDS.weight, false)
    // Ignored, but a ranking posted back says what GET /admin/popularity said: never nonsense.
    if (e.score !== undefined) bounded(e.score, `${f}.score`, 0, REQUEST_BOUNDS.weight, false)
    if (e.requests !== undefined) bounded(e.requests, `${f}.requests`, 0, Number.MAX_SAFE_INTEGER, true)
    return { title: t, weight: w, i }
  })
  // Highest weight first; ties keep the order given.
  entries.sort((a, b) => b.weight - a.weight || a.i - b.i)
  return {
    source: 'popularity',
    titles: entries.map((e, rank) => ({ title: e.title, rank, weight: e.weight })),
  }
}

/** A share from 0 to 1. */
function share(v: unknown, field: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    throw badField(field, `expected a number from 0 to 1 (got ${JSON.stringify(v)})`)
  return v
}

/** At most this many first positions with shares of their own (`viewing.startupShares`). */
const MAX_STARTUP_POSITIONS = 16

/** `{"720p": 0.4, ...}`: a share per rendition name. */
function shares(r: unknown, field: string): Record<string, number> {
  if (!isObject(r)) throw badField(field, 'expected {"720p": 0.4, ...}')
  const out: Record<string, number> = {}
  for (const [name, s] of Object.entries(r)) out[name] = share(s, `${field}.${name}`)
  return out
}

/** `viewing`: true (the default model) or the model's fields, each optional. */
function viewing(v: unknown): ViewingModel {
  if (v === true) return DEFAULT_VIEWING
  if (!isObject(v)) throw badField('viewing', 'expected true or {"earlyStop": 0.5, "earlyMeanSec": 300, ...}')
  for (const k of Object.keys(v)) if (!VIEWING_FIELDS.has(k)) throw badField(`viewing.${k}`, 'unknown field')
  const out: { -readonly [K in keyof ViewingModel]: ViewingModel[K] } = { ...DEFAULT_VIEWING }
  if (v.earlyStop !== undefined) out.earlyStop = share(v.earlyStop, 'viewing.earlyStop')
  if (v.minShare !== undefined) out.minShare = share(v.minShare, 'viewing.minShare')
  if (v.earlyMeanSec !== undefined) {
    const s = v.earlyMeanSec
    if (typeof s !== 'number' || !(s > 0) || !(s <= REQUEST_BOUNDS.earlyMeanSec))
      throw badField(
        'viewing.earlyMeanSec',
        `expected seconds above 0, at most ${REQUEST_BOUNDS.earlyMeanSec} (got ${JSON.stringify(s)})`,
      )
    out.earlyMeanSec = s
  }
  if (v.renditionShares !== undefined)
    out.renditionShares = shares(v.renditionShares, 'viewing.renditionShares')
  if (v.startupShares !== undefined) {
    const r = v.startupShares
    if (!Array.isArray(r) || r.length > MAX_STARTUP_POSITIONS)
      throw badField(
        'viewing.startupShares',
        `expected an array of at most ${MAX_STARTUP_POSITIONS} {"480p": 0.8, ...}, one per first segment`,
      )
    out.startupShares = r.map((x, i) => shares(x, `viewing.startupShares.${i}`))
  }
  if (v.weights !== undefined) {
    if (v.weights !== 'requests' && v.weights !== 'sessions')
      throw badField(
        'viewing.weights',
        `expected "requests" or "sessions" (got ${JSON.stringify(v.weights)})`,
      )
    out.weights = v.weights
  }
  return out
}

export function parsePrefillRequest(body: unknown, limits: RequestLimits): PrefillRequest {
  if (!isObject(body)) throw badField('body', 'expected a JSON object')
  for (const k of Object.keys(body)) if (!FIELDS.has(k)) throw badField(k, 'unknown field')
  const { titles, source } = titleList(body, limits)
  let concurrency = limits.defaultConcurrency
  if (body.concurrency !== undefined) {
    concurrency = bounded(body.concurrency, 'concurrency', 1, limits.maxConcurrency, true)
  }
  if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean')
    throw badField('dryRun', `expected true or false (got ${JSON.stringify(body.dryRun)})`)
  if (body.window !== undefined && typeof body.window !== 'string')
    throw badField('window', 'expected "HH:MM-HH:MM"')
  if (typeof body.window === 'string') parseWindow(body.window, limits.timeZone, 'window')
  const trickle =
    body.trickleBytesPerSecond === undefined
      ? limits.trickleBytesPerSecond
      : rate(body.trickleBytesPerSecond, 'trickleBytesPerSecond', true)
  const spec: JobSpec = {
    titles,
    source,
    concurrency,
    ...(body.renditions === undefined ? {} : { renditions: renditions(body.renditions) }),
    ...(body.maxBytesPerSecond === undefined
      ? {}
      : { maxBytesPerSecond: rate(body.maxBytesPerSecond, 'maxBytesPerSecond', false) }),
    ...(typeof body.window === 'string' ? { window: body.window } : {}),
    ...(trickle ? { trickleBytesPerSecond: trickle } : {}),
    ...(body.viewing === undefined || body.viewing === false ? {} : { viewing: viewing(body.viewing) }),
  }
  return { spec, dryRun: body.dryRun === true }
}
