/**
 * Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection and are never
 * forwarded or stored. The standard set, plus every `proxy-*` field, plus any field the
 * message's own Connection header names. Every relay and the cache's stored headers use this.
 */

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-authentication-info',
])

type RawHeaders = Readonly<Record<string, string | string[] | undefined>>

/**
 * `headers` without its hop-by-hop fields (names lower-cased; undefined values dropped). `also`
 * names further fields to drop (e.g. `host` where the client sets its own).
 */
export function withoutHopByHop(
  headers: RawHeaders,
  also: readonly string[] = [],
): Record<string, string | string[]> {
  const named = new Set(also)
  const entries = Object.entries(headers)
  for (const [k, v] of entries)
    if (v !== undefined && k.toLowerCase() === 'connection')
      for (const n of (Array.isArray(v) ? v.join(',') : v).split(',')) named.add(n.trim().toLowerCase())
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of entries) {
    if (v === undefined) continue
    const name = k.toLowerCase()
    if (HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named.has(name)) continue
    out[name] = v
  }
  return out
}
