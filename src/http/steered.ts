/**
 * Why steering sent a client to an edge other than its preferred one: the contract between
 * steering (which puts it in the redirect's Location) and the edge (which counts it, and
 * attributes a miss of that request to health: edge/miss/ledger.ts). The preferred edge is the
 * one steering would have chosen were every edge up and unloaded.
 *
 * The reason rides in a path prefix, `/steered/{reason}/vod/{title}/master.m3u8` (in front of a
 * signing token when there is one: `/steered/down/t/{token}/vod/...`), for the same reason the
 * token does: every URI in the playlists is relative, so the media playlists, init segments and
 * segments the player fetches after the master inherit it and are counted as well, with no
 * rewriting of a playlist the edge serves (its cached bytes, compressed forms and raw hits stay
 * as they are). A query parameter (`?cdn-steered=down`) would reach the master request only.
 * The edge still reads that parameter, as earlier steering instances sent it. Either way the
 * edge strips it: never in a cache key, never sent upstream (edge/cache/key.ts).
 */

/** The query parameter earlier steering instances added to the redirect (still read by the edge). */
export const STEERED_PARAM = 'cdn-steered'

/** The path segment that opens the reason's prefix. */
export const STEERED_SEGMENT = 'steered'

export const STEER_REASONS = ['down', 'overloaded'] as const
export type SteerReason = (typeof STEER_REASONS)[number]

/** The path prefix naming the reason, to put in front of the path (and of a token prefix). */
export function steeredPrefix(reason: SteerReason): string {
  return `/${STEERED_SEGMENT}/${reason}`
}

/** The reason a query parameter's value or a prefix's segment names, or undefined for anything else. */
export function steerReason(value: string | undefined): SteerReason | undefined {
  return value === 'down' || value === 'overloaded' ? value : undefined
}

const PREFIX_RE = /^\/steered\/(down|overloaded)(?=\/)/

/**
 * A path without its reason prefix, and the reason; a path without one (or with an unknown
 * reason, which the edge then serves as it serves any unknown path: 404) comes back as it is.
 */
export function splitSteered(path: string): { path: string; reason?: SteerReason } {
  const m = PREFIX_RE.exec(path)
  if (!m) return { path }
  return { path: path.slice(m[0].length), reason: m[1] as SteerReason }
}
