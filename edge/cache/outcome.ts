/**
 * The closed list of what happened to a request. Each request gets exactly one outcome; it
 * feeds the X-Cache header, the access-log line and the metric label, so the three agree.
 */
export const OUTCOMES = [
  'hit-mem',
  'hit-disk',
  'miss',
  'coalesced',
  'stale',
  'revalidated',
  'bypass',
  'error',
] as const

export type Outcome = (typeof OUTCOMES)[number]

/** X-Cache header value of each outcome. */
export const X_CACHE: Readonly<Record<Outcome, string>> = {
  'hit-mem': 'HIT-MEM',
  'hit-disk': 'HIT-DISK',
  miss: 'MISS',
  coalesced: 'COALESCED',
  stale: 'STALE',
  revalidated: 'REVALIDATED',
  bypass: 'BYPASS',
  error: 'ERROR',
}

/** Which tier answered, for the per-tier hit ratio in /status. */
export function tierOf(o: Outcome): 'memory' | 'disk' | 'upstream' | 'none' {
  if (o === 'hit-mem') return 'memory'
  if (o === 'hit-disk') return 'disk'
  if (o === 'error') return 'none'
  if (o === 'stale' || o === 'revalidated') return 'memory'
  return 'upstream'
}

export function isHit(o: Outcome): boolean {
  return o === 'hit-mem' || o === 'hit-disk' || o === 'stale' || o === 'revalidated'
}
