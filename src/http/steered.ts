/**
 * Why steering sent a client to an edge other than its preferred one: the contract between
 * steering (which adds it to the redirect's Location) and the edge (which counts it, and
 * attributes a miss of that request to health: edge/miss/ledger.ts). The reason rides in a
 * query parameter of the master URL; the edge never keeps it in a cache key nor sends it
 * upstream (edge/cache/key.ts). The preferred edge is the one steering would have chosen were
 * every edge up and unloaded.
 */

/** The query parameter steering adds to the redirect. */
export const STEERED_PARAM = 'cdn-steered'

export const STEER_REASONS = ['down', 'overloaded'] as const
export type SteerReason = (typeof STEER_REASONS)[number]

/** `url` with the reason added to its query. */
export function withSteered(url: string, reason: SteerReason): string {
  return `${url}${url.includes('?') ? '&' : '?'}${STEERED_PARAM}=${reason}`
}

/** The reason a query parameter's value names, or undefined for anything else. */
export function steerReason(value: string | undefined): SteerReason | undefined {
  return value === 'down' || value === 'overloaded' ? value : undefined
}
