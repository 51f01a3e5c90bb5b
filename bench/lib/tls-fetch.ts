/**
 * fetch for a server whose certificate a private CA signed (the benches' TLS servers): undici's
 * fetch through an agent that trusts `ca` (PEM text), so certificates are still verified.
 */
import { Agent, fetch as undiciFetch } from 'undici'

export type Fetch = typeof fetch

export function fetchTrusting(ca: string): Fetch {
  const dispatcher = new Agent({ connect: { ca } })
  return ((url: string, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher })) as unknown as Fetch
}
