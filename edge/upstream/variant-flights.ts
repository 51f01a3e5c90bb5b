/**
 * Coalescing with variants (edge/cache/variants.ts): a request joins a running fetch only when
 * it selects the same variant. Before a fetch's headers come its answer's Vary is unknown, so
 * every request for the URL waits on it; when they come, the answer is keyed (stored under its
 * variant's key, listed under that key too) and the waiters whose fields select another variant
 * are moved to a fetch of their own. The single-flight (single-flight.ts) calls these two.
 */
import type { EntryMeta } from '../cache/entry.js'
import { keyedFields, variantKey } from '../cache/variants.js'
import type { Flight, FlightSink } from './flight.js'
import type { UpstreamRequest } from './forward.js'

/**
 * The running fetch a request for `key` would join, and the key it would start one under
 * otherwise. A request with the client's credentials joins none. A fetch whose answer varies
 * serves only the requests that select its variant; another variant has its own fetch, under
 * its own key.
 */
export function findFlight(
  current: (key: string) => Flight | undefined,
  key: string,
  upstream: UpstreamRequest | undefined,
): { flight: Flight | undefined; key: string } {
  if (upstream?.authorized) return { flight: undefined, key }
  const running = current(key)
  if (!running?.varyKey) return { flight: running, key }
  const own = variantKey(running.path, running.varyKey, upstream?.client ?? {})
  return own === running.storeKey ? { flight: running, key } : { flight: current(own), key: own }
}

/**
 * An answer whose Vary names request fields that reach the upstream is its request's variant:
 * `meta` is keyed by it, the flight is listed in `table` under the variant's key as well (a
 * private flight excepted), and each waiter of another variant leaves it for `move` (the first
 * request's fields are the ones this fetch sent). A fetch whose answer is its request's alone is
 * not listed (flight-run.ts keepToStarter).
 */
export function keyVariant(
  f: Flight,
  meta: EntryMeta,
  table: Map<string, Flight>,
  move: (sink: FlightSink, request: UpstreamRequest) => void,
): void {
  const fields = keyedFields(meta.headers.vary, f.request.forwards)
  const waiters = [...f.requests]
  f.requests.clear()
  if (fields === undefined) return
  f.varyKey = fields
  f.storeKey = variantKey(f.path, fields, f.request.client ?? {})
  meta.key = f.storeKey
  meta.varyKey = fields
  if (!f.request.authorized && !f.personal && f.storeKey !== f.slot && !table.has(f.storeKey)) {
    f.alias = f.storeKey
    table.set(f.storeKey, f)
  }
  for (const [sink, request] of waiters) {
    if (variantKey(f.path, fields, request.client ?? {}) === f.storeKey) continue
    f.leave(sink)
    move(sink, request)
  }
}
