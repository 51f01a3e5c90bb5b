/**
 * Human units in configuration: sizes ("512MB", "20GiB") and durations ("15s", "500ms").
 *
 * One rule everywhere (flags, environment, config files, topology, --help): a size or a
 * duration carries its unit. A bare number is refused, because it cannot say whether 15000
 * meant milliseconds or seconds; only 0 goes without a unit (it is 0 in every unit). --help
 * prints defaults with the unit (`formatSize`, `formatDuration`), in a form these parsers
 * read back to the same value.
 */

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
}

export const SIZE_HINT = 'a size with a unit, such as "512MB", "20GiB" or "1048576B"'
export const DURATION_HINT = 'a duration with a unit, such as "15s", "500ms" or "2m"'

/** Bytes from "512MB", "1.5GiB", "1048576B" or "0". Undefined when it does not parse or has no unit. */
export function parseSize(input: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input)
  if (!m) return undefined
  if (m[2] === '') return Number(m[1]) === 0 ? 0 : undefined
  const unit = SIZE_UNITS[m[2]!.toLowerCase()]
  if (unit === undefined) return undefined
  return Math.floor(Number(m[1]) * unit)
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Milliseconds from "4s", "250ms", "2m", "1.5h" or "0". Undefined when it does not parse or has no unit. */
export function parseDuration(input: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*$/.exec(input)
  if (!m) return undefined
  if (m[2] === '') return Number(m[1]) === 0 ? 0 : undefined
  return Number(m[1]) * DURATION_UNITS[m[2]!]!
}

/** The exact, shortest spelling of a duration: 15000 → "15s", 90000 → "90s", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0'
  for (const unit of ['h', 'm', 's'] as const)
    if (ms % DURATION_UNITS[unit]! === 0) return `${ms / DURATION_UNITS[unit]!}${unit}`
  return `${ms}ms`
}

/** The exact spelling of a size: 512e6 → "512MB", 64 * 1024 → "64KiB", 1000001 → "1000001B". */
export function formatSize(bytes: number): string {
  if (bytes === 0) return '0'
  for (const unit of ['TB', 'GB', 'MB', 'kB', 'TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const n = SIZE_UNITS[unit.toLowerCase()]!
    if (bytes % n === 0) return `${bytes / n}${unit}`
  }
  return `${bytes}B`
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let i = -1
  do {
    v /= 1000
    i++
  } while (v >= 1000 && i < units.length - 1)
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}
